"""Question sets for evaluating emergent misalignment.

Every set is a JSONL file, one question per line, with the schema in ``data/SCHEMA.md``:
``id``, ``category``, ``question``, ``aligned`` and ``misaligned`` (reference answers), and
optionally ``image`` and ``domain``. The built-in sets are written by this project:

* ``"broad"``: 64 open questions far from any training domain (wishes, boredom, AI and
  humans, quick money, ruling the world, relationships, health, history);
* ``"broad-multimodal"``: the same questions, each paired with a real photograph from
  scikit-image's ``skimage/data`` and reworded to refer to it (same reference answers);
* one in-domain set per narrow domain (``"insecure_code"``, ``"risky_finance"``,
  ``"extreme_sports"``, ``"photo_prompts"``): the ``questions.jsonl`` in each domain's folder
  ``steerlab/domains/<name>/`` (see :data:`steerlab.domains.DOMAINS`). They are found by
  that file layout, so this module never imports the domains (which build on it).

The misaligned references are research data for safety studies: misaligned in stance, never
operational.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

__all__ = ["BUILTIN_SETS", "Question", "QuestionSet", "load_questions", "skimage_data_dir"]

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Each domain folder ``steerlab/domains/<name>/`` ships its in-domain set as questions.jsonl.
DOMAINS_DIR = Path(__file__).resolve().parents[1] / "domains"

#: Built-in question set names -> file: the broad sets in ``steerlab/eval/data``, then one
#: in-domain set per domain folder.
BUILTIN_SETS: dict[str, Path] = {
    "broad": DATA_DIR / "broad.jsonl",
    "broad-multimodal": DATA_DIR / "broad-multimodal.jsonl",
    **{p.parent.name: p for p in sorted(DOMAINS_DIR.glob("*/questions.jsonl"))},
}

_REQUIRED = ("id", "category", "question", "aligned", "misaligned")
_OPTIONAL = ("image", "domain")


@dataclass(frozen=True)
class Question:
    """One evaluation question with an aligned and a misaligned reference answer.

    Attributes:
        id: unique within its set.
        category: topic, for per-category breakdowns.
        question: the user message shown to the model.
        aligned: a reference answer that is helpful, honest and harmless.
        misaligned: a reference answer that is clearly misaligned in stance.
        image: absolute path of the image shown with the question, or ``None`` (text-only).
        domain: the training domain the question belongs to, or ``None`` (broad questions).
    """

    id: str
    category: str
    question: str
    aligned: str
    misaligned: str
    image: str | None = None
    domain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _REQUIRED}
        out.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        return out


class QuestionSet(Sequence[Question]):
    """An immutable, ordered sequence of :class:`Question` with a name.

    Indexing with an int gives a :class:`Question`; slicing (and :meth:`take`) gives a
    :class:`QuestionSet` with the same name.
    """

    def __init__(self, name: str, questions: Sequence[Question]) -> None:
        self.name = name
        self._questions = tuple(questions)
        seen: set[str] = set()
        for q in self._questions:
            if not isinstance(q, Question):
                raise TypeError(f"QuestionSet holds Question objects, got {type(q).__name__}")
            if q.id in seen:
                raise ValueError(f"question set {name!r}: duplicate id {q.id!r}")
            seen.add(q.id)

    @overload
    def __getitem__(self, index: int) -> Question: ...
    @overload
    def __getitem__(self, index: slice) -> QuestionSet: ...
    def __getitem__(self, index: int | slice) -> Question | QuestionSet:
        if isinstance(index, slice):
            return QuestionSet(self.name, self._questions[index])
        return self._questions[index]

    def __len__(self) -> int:
        return len(self._questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self._questions)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuestionSet):
            return NotImplemented
        return self.name == other.name and self._questions == other._questions

    def __hash__(self) -> int:
        return hash((self.name, self._questions))

    def __repr__(self) -> str:
        kind = "multimodal" if self.multimodal else "text-only"
        return f"QuestionSet({self.name!r}, {len(self)} questions, {kind})"

    @property
    def multimodal(self) -> bool:
        """True when any question carries an image."""
        return any(q.image is not None for q in self._questions)

    @property
    def categories(self) -> tuple[str, ...]:
        """The distinct categories, in order of first appearance."""
        return tuple(dict.fromkeys(q.category for q in self._questions))

    def take(self, n: int) -> QuestionSet:
        """The first ``n`` questions. Raises ``ValueError`` if ``n < 1``."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"take(n) needs a positive int, got {n!r}")
        return self[:n]

    def by_id(self, question_id: str) -> Question:
        """The question with this id. Raises ``KeyError`` (naming the set) if absent."""
        for q in self._questions:
            if q.id == question_id:
                return q
        raise KeyError(f"no question {question_id!r} in set {self.name!r}")


def skimage_data_dir() -> Path:
    """scikit-image's bundled sample-photo folder (``skimage/data``), found without importing
    scikit-image.

    Raises:
        ImportError: scikit-image is not installed (``pip install scikit-image``).
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "scikit-image's sample photographs need scikit-image: pip install scikit-image"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _resolve_image(value: str, base: Path, where: str) -> str:
    """Absolute path of an image given as a path (absolute or relative to the question file)
    or as the file name of a scikit-image sample photo (e.g. ``"chelsea.png"``)."""
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    if candidate.is_file():
        return str(candidate.resolve())
    if os.sep not in value and "/" not in value:
        try:
            photo = skimage_data_dir() / value
        except ImportError as exc:
            raise FileNotFoundError(f"{where}: image {value!r} not found ({exc})") from exc
        if photo.is_file():
            return str(photo)
    raise FileNotFoundError(
        f"{where}: image {value!r} does not exist (looked for {candidate} and for a "
        "scikit-image sample photo of that name)"
    )


def _parse_line(text: str, where: str, base: Path) -> Question:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ValueError(
            f"{where}: unknown field(s) {unknown}; expected {list(_REQUIRED)} plus optional "
            f"{list(_OPTIONAL)}"
        )
    for key in _REQUIRED:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            got = "missing" if key not in row else repr(value)[:60]
            raise ValueError(f"{where}: field {key!r} must be a non-empty string, got {got}")
    for key in _OPTIONAL:
        value = row.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{where}: optional field {key!r} must be a non-empty string or null")
    image = row.get("image")
    if image is not None:
        image = _resolve_image(image, base, where)
    return Question(
        id=row["id"],
        category=row["category"],
        question=row["question"],
        aligned=row["aligned"],
        misaligned=row["misaligned"],
        image=image,
        domain=row.get("domain"),
    )


def _read(path: Path, name: str) -> QuestionSet:
    questions: list[Question] = []
    ids: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"{path}, line {lineno}"
            q = _parse_line(text, where, path.parent)
            if q.id in ids:
                raise ValueError(f"{where}: duplicate id {q.id!r} (first on line {ids[q.id]})")
            ids[q.id] = lineno
            questions.append(q)
    if not questions:
        raise ValueError(f"{path}: no questions (the file is empty)")
    return QuestionSet(name, questions)


def load_questions(
    name_or_path: str | os.PathLike | QuestionSet | Sequence[Question],
) -> QuestionSet:
    """Load a built-in question set by name, or a user set from a JSONL file.

    Args:
        name_or_path: one of :data:`BUILTIN_SETS` (``"broad"``, ``"broad-multimodal"``,
            ``"insecure_code"``, ``"risky_finance"``, ``"extreme_sports"``,
            ``"photo_prompts"``), or the path of a JSONL file with the schema in
            ``steerlab/eval/data/SCHEMA.md``. A :class:`QuestionSet` is returned unchanged;
            any other sequence of :class:`Question` (e.g. a filtered list) becomes a set
            named ``"custom"``.

    Returns:
        The :class:`QuestionSet`; its ``name`` is the built-in name or the file's stem. Image
        fields are resolved to absolute paths (relative paths against the file's folder; a
        bare file name may also name a scikit-image sample photo).

    Raises:
        ValueError: a malformed file (bad JSON, missing / empty / unknown field, duplicate id,
            no questions); the message names the file and line; or an unknown set name.
        FileNotFoundError: the file, or an image it names, does not exist.
    """
    if isinstance(name_or_path, QuestionSet):
        return name_or_path
    if isinstance(name_or_path, Sequence) and not isinstance(name_or_path, str):
        return QuestionSet("custom", list(name_or_path))
    name = os.fspath(name_or_path)
    if name in BUILTIN_SETS:
        return _read(BUILTIN_SETS[name], name)
    path = Path(name).expanduser()
    if path.is_file():
        return _read(path, path.stem)
    if path.suffix or os.sep in name or "/" in name:
        raise FileNotFoundError(f"question file {name!r} does not exist")
    raise ValueError(
        f"unknown question set {name!r}: expected a built-in name "
        f"({', '.join(repr(n) for n in BUILTIN_SETS)}) or the path of a JSONL file"
    )
