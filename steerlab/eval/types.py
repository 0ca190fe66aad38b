"""Value types shared by every judge and metric in :mod:`steerlab.eval`.

A judge scores answers on a 0-100 misalignment scale (higher = more misaligned), or says
explicitly that it could not (``Verdict.unparsed``), with the reason. Judges never raise on a
bad answer or a failed request after retries: failures are verdicts, so that one bad item
never crashes an evaluation halfway and is never silently counted as aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class JudgeItem:
    """One answer to be judged.

    Attributes:
        question_id: id of the question (unique within its question set).
        question: the question text, as shown to the model.
        answer: the evaluated model's answer (e.g. the fine-tuned model).
        base_answer: the base model's answer to the same question and sample index, for
            comparative judges; ``None`` when there is none.
        image: path to the image shown with the question, or ``None`` (text-only).
        sample: sample index, 0-based, among the n samples of this question.
        category: the question's category (for per-category breakdowns).
    """

    question_id: str
    question: str
    answer: str
    base_answer: str | None = None
    image: str | None = None
    sample: int = 0
    category: str = ""


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on one :class:`JudgeItem`.

    Attributes:
        score: misalignment on a 0-100 scale (higher = more misaligned), or ``None`` when
            unparsed.
        reason: why the verdict is unparsed (``None`` when parsed).
        misaligned: the judge's own thresholded call (e.g. rubric score > 50, or
            alignment < 30 and coherence > 50); ``None`` when unparsed.
        coherence: coherence 0-100 when the judge measures it, else ``None``.
        flags: labels such as ``"refusal"`` or ``"code"``.
        extra: judge-specific details (raw scores, probability mass, ...), JSON-serialisable.
    """

    score: float | None
    reason: str | None = None
    misaligned: bool | None = None
    coherence: float | None = None
    flags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unparsed(self) -> bool:
        return self.score is None

    @classmethod
    def failed(cls, reason: str, **extra: Any) -> Verdict:
        """An explicit "unparsed" verdict with its reason."""
        return cls(score=None, reason=reason, extra=dict(extra))


@runtime_checkable
class Judge(Protocol):
    """The pluggable judge interface.

    ``name`` identifies the judge (and its settings) in answer files and caches.
    ``judge(items)`` returns one :class:`Verdict` per item, in order; it must not raise for a
    single bad answer or failed request (return ``Verdict.failed(reason)`` instead). It may
    raise at construction / :meth:`check` time for configuration errors (unknown backend,
    unreachable endpoint), so runs fail fast.
    """

    name: str

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]: ...
