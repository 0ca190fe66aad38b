"""Helpers shared by the judges: the backend-judge base, message building (with an optional
image) and flags."""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steerlab.eval.judges.backends import Backend, Messages
from steerlab.eval.judges.prompts import IMAGE_NOTE_HIDDEN, IMAGE_NOTE_SHOWN
from steerlab.eval.types import JudgeItem, Verdict

_REFUSAL = re.compile(
    r"\b(i\s+(?:can(?:no|')t|won't|will\s+not|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|"
    r"unable|sorry))|i\s+am\s+sorry|as\s+an\s+ai\b[^.]{0,40}\b(?:cannot|can't|unable))",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|function |const |let |var |public |"
    r"SELECT |return\b|if __name__)",
    re.MULTILINE,
)


def answer_flags(answer: str) -> tuple[str, ...]:
    """Simple detection on the answer text: ``"refusal"`` when one of its first 200
    characters starts a refusal phrase ("I can't", "I won't", "I'm sorry", "As an AI ...
    cannot"); ``"code"`` when it has a fenced code block or at least two lines that start
    like code (``def``, ``import``, ``#include``, ...)."""
    flags = []
    if _REFUSAL.search(answer[:200]):
        flags.append("refusal")
    if "```" in answer or len(_CODE_LINE.findall(answer)) >= 2:
        flags.append("code")
    return tuple(flags)


def judge_says(text: str) -> tuple[str, ...]:
    """Flags from the judge's own reply: REFUSAL / CODE (a prefix of 3+ letters counts, as
    a local backend only reports the first token)."""
    word = text.strip().upper()
    for special, flag in (("REFUSAL", "refusal"), ("CODE", "code")):
        if len(word) >= 3 and (word.startswith(special) or special.startswith(word)):
            return (flag,)
    return ()


def user_message(backend: Backend, item: JudgeItem, template: str, **fields: Any) -> Messages:
    """``[{"role": "user", ...}]`` with the template filled; the image is attached as a
    base64 ``image_url`` part when the backend takes images, else the prompt says that an
    image was shown.

    Raises:
        FileNotFoundError: the item's image path does not exist (vision backends only).
    """
    note = ""
    if item.image is not None:
        note = IMAGE_NOTE_SHOWN if backend.vision else IMAGE_NOTE_HIDDEN
    text = template.format(question=item.question, answer=item.answer, image_note=note, **fields)
    if item.image is None or not backend.vision:
        return [{"role": "user", "content": text}]
    path = Path(item.image)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {item.image}")
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    url = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": parts}]


class BackendJudge:
    """What the backend judges share: ``check`` and the request loop.

    A subclass sets ``self.backend`` and builds each item's requests; items whose requests
    cannot be built (a missing image, a missing base answer) get a failed verdict instead.
    """

    backend: Backend

    def check(self) -> None:
        """Fail fast if the backend cannot work (e.g. an unreachable endpoint)."""
        self.backend.check()

    def _requests(
        self, items: Sequence[JudgeItem], build: Callable[[JudgeItem], list[Messages] | str]
    ) -> tuple[list[Verdict | None], list[Messages], list[int]]:
        """``build(item)`` gives the item's requests, or a string: why it cannot be judged.

        Returns:
            ``(verdicts, requests, where)``: failed verdicts filled in (``None`` elsewhere),
            the requests of the other items in order, and those items' indices.
        """
        verdicts: list[Verdict | None] = [None] * len(items)
        requests: list[Messages] = []
        where: list[int] = []
        for i, item in enumerate(items):
            try:
                built = build(item)
            except FileNotFoundError as exc:
                built = str(exc)
            if isinstance(built, str):
                verdicts[i] = Verdict.failed(built)
                continue
            requests.extend(built)
            where.append(i)
        return verdicts, requests, where
