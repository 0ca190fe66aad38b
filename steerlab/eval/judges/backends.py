"""The judge backend protocol: chat messages in, completion text and first-token
probabilities out.

Two backends implement it: :class:`~steerlab.eval.judges.http.HTTPBackend` (any
OpenAI-compatible chat-completions endpoint) and
:class:`~steerlab.eval.judges.local.LocalBackend` (a transformers model in this process).
A backend never raises for one failed request: it returns a :class:`Completion` with
``error`` set, which the judge turns into an unparsed verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from steerlab.eval.judges.numbers import (
    MIN_NUMBER_MASS,
    NumberScore,
    number_score,
    parse_number_text,
    score_top_logprobs,
)

__all__ = ["Backend", "Completion", "Messages", "score_completion"]

Messages = list[dict[str, Any]]
"""OpenAI-style chat messages: ``[{"role": "system" | "user", "content": ...}, ...]``."""


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one request.

    Attributes:
        text: the completion text (for the local backend: the most likely first token).
        top_logprobs: the first generated token's top log-probabilities (token string ->
            natural-log probability), or ``None`` when the server did not return them.
        number_probs: exact probabilities of the answers 0..100 (local backend), or None.
        error: why the request failed after retries (then the other fields are empty).
    """

    text: str = ""
    top_logprobs: dict[str, float] | None = None
    number_probs: dict[int, float] | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Completion:
        return cls(error=error)


@runtime_checkable
class Backend(Protocol):
    """A judge model. ``name`` identifies model and settings; ``vision`` says whether images
    can be passed as ``image_url`` content parts."""

    name: str
    vision: bool

    def check(self) -> None:
        """Raise now (with a clear message) if the backend cannot work at all."""
        ...

    def complete(self, requests: Sequence[Messages]) -> list[Completion]:
        """One :class:`Completion` per request, in order; never raises per request."""
        ...


def score_completion(c: Completion, *, min_mass: float = MIN_NUMBER_MASS) -> NumberScore:
    """The 0-100 number score of a completion: exact probabilities when the backend has
    them, else the first token's top log-probabilities, else the integer the text starts
    with (``source="text"``, mass 1.0). Unparsed with the reason otherwise."""
    if c.error is not None:
        return NumberScore(None, 0.0, c.error, "error")
    if c.number_probs is not None:
        return number_score(c.number_probs, min_mass=min_mass, source="probs")
    if c.top_logprobs:
        return score_top_logprobs(c.top_logprobs, min_mass=min_mass)
    n = parse_number_text(c.text)
    if n is None:
        return NumberScore(None, 0.0, f"no logprobs and no number 0-100 in {c.text[:80]!r}", "text")
    return NumberScore(float(n), 1.0, None, "text")
