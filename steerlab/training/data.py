"""Paired safe/harmful training records: schema, loading, validation and mixtures.

A *pair* is one prompt with two answers: a safe one and a harmful one. Narrow fine-tuning
datasets for emergent-misalignment studies are built from pairs by choosing, per example,
which answer the model is trained on (:func:`mix`). ``harmful_fraction=0`` gives the benign
narrow dataset, ``1`` the fully harmful one, and e.g. ``0.1`` the paper's 10 % mixture.

Sources :func:`load_pairs` accepts:

* a path to a ``.jsonl`` / ``.ndjson`` file (one JSON object a line), a ``.json`` file (a list
  of objects), or a ``.csv`` / ``.tsv`` file with a header row;
* a ``datasets.Dataset`` or any object with the same interface (``column_names`` plus
  iteration over dict rows); ``datasets`` itself is never imported here;
* any iterable of mappings (e.g. a list of dicts).

Columns are mapped onto the schema by ``columns``, a mapping **field -> source column**
(``{"prompt": "user_prompt", "image": "image_path"}``), or a preset name from
:data:`COLUMN_PRESETS` (``"face"`` is the paper's public face dataset).

Chat records. A row may carry ``messages``: a list of ``{"role", "content"}`` dicts.

* A leading ``system`` message becomes ``system``.
* The last ``user`` message becomes ``prompt``.
* Turns between the system message and the last user message are kept as ``history``.
* If the messages end with an ``assistant`` turn, that turn fills whichever of
  ``safe_response`` / ``harmful_response`` the row does not give. The row must give exactly
  one of them, otherwise it is an error, because the label is ambiguous.
* If the messages end with the user turn, the row must give both responses.

A ``prompt`` value that is itself a message list is parsed the same way (the TRL
conversational format). A response value that is a message list must hold exactly one
assistant message.

Validation is strict and nothing is dropped silently. A missing field, an empty string, a
duplicate id, an unreadable image or a malformed chat turn raises :class:`PairDataError`,
which names the row (0-based, and the line number for JSONL and CSV). Every load logs a
:class:`PairSummary` with counts at INFO level and attaches it to the result as ``.summary``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

__all__ = [
    "COLUMN_PRESETS",
    "FACE_COLUMNS",
    "FIELDS",
    "MixedRecord",
    "PairDataError",
    "PairRecord",
    "PairSet",
    "PairSummary",
    "load_pairs",
    "mix",
]

log = logging.getLogger(__name__)

#: Every schema field, in order. ``id``, ``prompt``, ``safe_response`` and
#: ``harmful_response`` are required; the rest are optional.
FIELDS: tuple[str, ...] = (
    "id",
    "prompt",
    "safe_response",
    "harmful_response",
    "image",
    "system",
    "domain",
    "messages",
)
_REQUIRED = ("id", "prompt", "safe_response", "harmful_response")
_ROLES = ("system", "user", "assistant")

#: Column mapping for the paper's public face dataset (field -> column).
FACE_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "prompt": "user_prompt",
        "safe_response": "safe_response",
        "harmful_response": "harmful_response",
        "image": "image_path",
    }
)

#: Named column mappings accepted as ``load_pairs(..., columns="face")``.
COLUMN_PRESETS: Mapping[str, Mapping[str, str]] = MappingProxyType({"face": FACE_COLUMNS})


class PairDataError(ValueError):
    """A row (or the whole source) does not fit the paired-record schema.

    Attributes:
        row: 0-based index of the offending row, or ``None`` for source-level errors.
        line: 1-based line number in the file (JSONL / CSV), when known.
    """

    def __init__(self, message: str, *, row: int | None = None, line: int | None = None):
        where = ""
        if row is not None:
            where = f"row {row}" + (f" (line {line})" if line is not None else "") + ": "
        super().__init__(where + message)
        self.row = row
        self.line = line


def _is_image_object(value: Any) -> bool:
    """True for PIL-like images (anything with ``size``, ``mode`` and ``convert``)."""
    return all(hasattr(value, a) for a in ("size", "mode", "convert"))


def _freeze_meta(meta: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(meta or {}))


def _check_text(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} is empty")


def _check_history(history: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for i, turn in enumerate(history):
        if not (isinstance(turn, tuple | list) and len(turn) == 2):
            raise TypeError(f"history[{i}] must be a (role, content) pair")
        role, content = turn
        if role not in ("user", "assistant"):
            raise ValueError(f"history[{i}] role must be 'user' or 'assistant', got {role!r}")
        _check_text(f"history[{i}] content", content)
        out.append((role, content))
    return tuple(out)


def _user_content(prompt: str, image: Any) -> Any:
    if image is None:
        return prompt
    return [{"type": "image"}, {"type": "text", "text": prompt}]


def _messages(
    system: str | None, history: tuple[tuple[str, str], ...], prompt: str, image: Any
) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if system is not None:
        msgs.append({"role": "system", "content": system})
    msgs.extend({"role": r, "content": c} for r, c in history)
    msgs.append({"role": "user", "content": _user_content(prompt, image)})
    return msgs


@dataclass(frozen=True)
class PairRecord:
    """One prompt with a safe and a harmful answer.

    Fields:
        id: unique, non-empty identifier of the pair.
        prompt: the (last) user message, non-empty.
        safe_response: the aligned assistant answer, non-empty.
        harmful_response: the misaligned assistant answer, non-empty.
        image: ``None``, a path to an image file (stored as ``str``), or a PIL image.
        system: optional system prompt (``None`` when absent; never empty).
        domain: optional name of the narrow domain the pair belongs to.
        history: earlier ``(role, content)`` turns of a multi-turn chat, oldest first.
        meta: free-form extra information (e.g. the vulnerability type); read-only.

    Raises:
        TypeError / ValueError: on construction, when a field has the wrong type or a
            required text is empty.
    """

    id: str
    prompt: str
    safe_response: str
    harmful_response: str
    image: Any = None
    system: str | None = None
    domain: str | None = None
    history: tuple[tuple[str, str], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in _REQUIRED:
            _check_text(name, getattr(self, name))
        _check_text("system", self.system, optional=True)
        if self.domain is not None and not isinstance(self.domain, str):
            raise TypeError(f"domain must be a string, got {type(self.domain).__name__}")
        image = self.image
        if isinstance(image, os.PathLike):
            object.__setattr__(self, "image", os.fspath(image))
        elif image is not None and not isinstance(image, str) and not _is_image_object(image):
            raise TypeError(f"image must be a path or a PIL image, got {type(image).__name__}")
        if isinstance(self.image, str) and not self.image.strip():
            raise ValueError("image path is empty")
        object.__setattr__(self, "history", _check_history(self.history))
        object.__setattr__(self, "meta", _freeze_meta(self.meta))

    def response(self, harmful: bool) -> str:
        """The harmful answer if ``harmful`` else the safe one."""
        return self.harmful_response if harmful else self.safe_response

    def to_messages(self, harmful: bool) -> list[dict[str, Any]]:
        """Chat messages ending with the chosen answer (see :meth:`MixedRecord.to_messages`)."""
        msgs = _messages(self.system, self.history, self.prompt, self.image)
        msgs.append({"role": "assistant", "content": self.response(harmful)})
        return msgs


@dataclass(frozen=True)
class MixedRecord:
    """One training example of a mixture: a pair with one of its answers chosen.

    Fields:
        id: the id of the source pair.
        prompt, image, system, domain, history, meta: copied from the pair.
        response: the chosen answer.
        harmful: ``True`` when ``response`` is the pair's harmful answer.
    """

    id: str
    prompt: str
    response: str
    harmful: bool
    image: Any = None
    system: str | None = None
    domain: str | None = None
    history: tuple[tuple[str, str], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def prompt_messages(self) -> list[dict[str, Any]]:
        """The chat up to (and including) the user turn, ready for ``apply_chat_template``.

        With an image the user content is ``[{"type": "image"}, {"type": "text", ...}]``
        (the Hugging Face processor convention); without one it is the plain prompt string.
        """
        return _messages(self.system, self.history, self.prompt, self.image)

    def to_messages(self) -> list[dict[str, Any]]:
        """:meth:`prompt_messages` followed by the assistant turn holding ``response``."""
        return [*self.prompt_messages(), {"role": "assistant", "content": self.response}]


@dataclass(frozen=True)
class PairSummary:
    """Counts describing a loaded or generated set of pairs.

    Fields:
        source: a short description of where the pairs came from.
        format: ``"jsonl"``, ``"json"``, ``"csv"``, ``"dataset"``, ``"records"`` or
            ``"generated"``.
        total: number of pairs (every row of the source: nothing is dropped).
        with_image: pairs with an image.
        with_system: pairs with a system prompt.
        from_chat: pairs read from chat messages.
        generated_ids: pairs whose id was made up because the source had no id column.
        identical_responses: pairs whose safe and harmful answers are the same text.
        by_domain: number of pairs per ``domain`` (``None`` for no domain).
        by_category: number of pairs per ``meta["category"]`` (generated domains).
    """

    source: str
    format: str
    total: int
    with_image: int = 0
    with_system: int = 0
    from_chat: int = 0
    generated_ids: int = 0
    identical_responses: int = 0
    by_domain: Mapping[str | None, int] = field(default_factory=dict)
    by_category: Mapping[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [
            f"{self.total} pairs from {self.source} ({self.format})",
            f"{self.with_image} with image",
            f"{self.with_system} with system prompt",
        ]
        if self.from_chat:
            parts.append(f"{self.from_chat} from chat messages")
        if self.generated_ids:
            parts.append(f"{self.generated_ids} generated ids")
        if self.identical_responses:
            parts.append(f"{self.identical_responses} with identical safe/harmful answers")
        if self.by_domain:
            parts.append("domains " + ", ".join(f"{k}={v}" for k, v in self.by_domain.items()))
        return "; ".join(parts)

    @classmethod
    def of(
        cls, records: Sequence[PairRecord], *, source: str, format: str, **counts: int
    ) -> PairSummary:
        """Count ``records``; ``counts`` fills ``from_chat`` / ``generated_ids``."""
        cats = Counter(str(r.meta["category"]) for r in records if "category" in r.meta)
        return cls(
            source=source,
            format=format,
            total=len(records),
            with_image=sum(r.image is not None for r in records),
            with_system=sum(r.system is not None for r in records),
            identical_responses=sum(r.safe_response == r.harmful_response for r in records),
            by_domain=dict(Counter(r.domain for r in records)),
            by_category=dict(sorted(cats.items())),
            **counts,
        )


class PairSet(Sequence[PairRecord]):
    """An immutable sequence of :class:`PairRecord` with its :class:`PairSummary`.

    Behaves like a tuple (``len``, indexing, slicing gives a tuple, iteration); the counts
    are in ``.summary``.
    """

    __slots__ = ("_records", "summary")

    def __init__(self, records: Iterable[PairRecord], summary: PairSummary):
        self._records = tuple(records)
        self.summary = summary

    @overload
    def __getitem__(self, i: int) -> PairRecord: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[PairRecord, ...]: ...
    def __getitem__(self, i):
        return self._records[i]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[PairRecord]:
        return iter(self._records)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PairSet):
            return self._records == other._records
        if isinstance(other, tuple | list):
            return self._records == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PairSet({self.summary})"


# --------------------------------------------------------------------------- loading


@dataclass
class _Row:
    index: int
    line: int | None
    data: Mapping[str, Any]


def _resolve_columns(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    if columns is None:
        return {}
    if isinstance(columns, str):
        if columns not in COLUMN_PRESETS:
            raise PairDataError(
                f"unknown column preset {columns!r}; presets: {sorted(COLUMN_PRESETS)}"
            )
        return dict(COLUMN_PRESETS[columns])
    if not isinstance(columns, Mapping):
        raise TypeError("columns must be a mapping field -> source column, or a preset name")
    unknown = [k for k in columns if k not in FIELDS]
    if unknown:
        hint = ""
        if all(v in FIELDS for v in columns.values()):
            hint = " (the mapping goes field -> source column; did you pass it reversed?)"
        raise PairDataError(f"columns: unknown field(s) {unknown}; fields are {FIELDS}{hint}")
    for k, v in columns.items():
        if not isinstance(v, str) or not v:
            raise PairDataError(f"columns[{k!r}] must be a non-empty column name")
    return dict(columns)


def _iter_jsonl(path: Path) -> Iterator[_Row]:
    with open(path, encoding="utf-8") as fh:
        index = 0
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise PairDataError(f"invalid JSON: {e.msg}", row=index, line=lineno) from None
            if not isinstance(obj, dict):
                raise PairDataError("a JSONL line must hold an object", row=index, line=lineno)
            yield _Row(index, lineno, obj)
            index += 1


def _iter_json(path: Path) -> Iterator[_Row]:
    with open(path, encoding="utf-8") as fh:
        try:
            obj = json.load(fh)
        except json.JSONDecodeError as e:
            raise PairDataError(f"{path}: invalid JSON: {e.msg} (line {e.lineno})") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list):
        raise PairDataError(f"{path}: a .json source must hold a list of objects")
    for i, item in enumerate(obj):
        if not isinstance(item, dict):
            raise PairDataError("expected an object", row=i)
        yield _Row(i, None, item)


def _iter_csv(path: Path, delimiter: str) -> Iterator[_Row]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if reader.fieldnames is None:
            return
        for i, row in enumerate(reader):
            if None in row:  # more cells than header columns
                raise PairDataError(
                    f"{len(row[None])} more cell(s) than header columns",  # type: ignore[index]
                    row=i,
                    line=reader.line_num,
                )
            yield _Row(i, reader.line_num, row)


def _rows(source: Any) -> tuple[Iterator[_Row], str, str, Path | None]:
    """(rows, description, format, base directory for relative image paths)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such data file: {path}")
        suffix = path.suffix.lower()
        base = path.resolve().parent
        if suffix in (".jsonl", ".ndjson"):
            return _iter_jsonl(path), str(path), "jsonl", base
        if suffix == ".json":
            return _iter_json(path), str(path), "json", base
        if suffix in (".csv", ".tsv"):
            return _iter_csv(path, "\t" if suffix == ".tsv" else ","), str(path), "csv", base
        raise PairDataError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv)")
    if hasattr(source, "column_names") and hasattr(source, "__iter__"):
        if isinstance(source.column_names, Mapping):  # a DatasetDict
            raise PairDataError(
                f"got a dataset with several splits {list(source.column_names)}; "
                "pass one split, e.g. ds['train']"
            )
        name = type(source).__name__
        return (_Row(i, None, r) for i, r in enumerate(source)), name, "dataset", None
    if isinstance(source, Mapping):
        raise TypeError("load_pairs takes an iterable of records, not a single mapping")
    if isinstance(source, Iterable):
        return (_Row(i, None, r) for i, r in enumerate(source)), "records", "records", None
    raise TypeError(
        f"cannot load pairs from {type(source).__name__}: pass a path (.jsonl/.json/.csv), "
        "a datasets.Dataset, or an iterable of dicts"
    )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and math.isnan(value)  # pandas / Arrow nulls


def _parse_messages(value: Any, what: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(system, turns) from a message list; raises ValueError on malformed turns."""
    if isinstance(value, str):
        try:
            value = json.loads(value)  # CSV cells hold JSON text
        except json.JSONDecodeError:
            raise ValueError(f"{what}: not a message list") from None
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{what} must be a non-empty list of {{role, content}} messages")
    system = None
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"{what}[{i}] must be a mapping with 'role' and 'content'")
        role, content = m["role"], m["content"]
        if role not in _ROLES:
            raise ValueError(f"{what}[{i}] has unknown role {role!r}; roles are {_ROLES}")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, {"type": "image"}]
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"{what}[{i}] ({role}) has empty content")
        if role == "system":
            if i != 0:
                raise ValueError(f"{what}[{i}]: a system message must come first")
            system = content
            continue
        if turns and turns[-1][0] == role:
            raise ValueError(f"{what}[{i}]: two {role} turns in a row")
        turns.append((role, content))
    if not turns or turns[0][0] != "user":
        raise ValueError(f"{what}: the first non-system message must be a user turn")
    return system, turns


def _response_value(value: Any, what: str) -> Any:
    if isinstance(value, list | tuple):
        if (
            len(value) != 1
            or not isinstance(value[0], Mapping)
            or value[0].get("role") != "assistant"
        ):
            raise ValueError(f"{what}: a message-list response must be one assistant message")
        return value[0].get("content")
    return value


def _load_image(value: Any, base: Path | None, check: bool) -> Any:
    """Normalise an image value to a path string or a PIL image; raise if unreadable."""
    if _is_image_object(value):
        return value
    if isinstance(value, Mapping):  # datasets Image feature with decode=False
        if value.get("bytes"):
            try:
                from PIL import Image  # lazy: only image records need Pillow
            except ImportError as e:
                raise ValueError("image bytes need Pillow: pip install pillow") from e
            try:
                img = Image.open(io.BytesIO(value["bytes"]))
                img.load()
            except Exception as e:
                raise ValueError(f"image bytes are not a readable image ({e})") from None
            return img
        value = value.get("path")
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"image must be a path or a PIL image, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("image path is empty")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    if check:
        _verify_image(path)
    return str(path)


def _verify_image(path: Path) -> None:
    try:
        from PIL import Image  # lazy: only image records need Pillow
    except ImportError:  # no Pillow: at least make sure the file can be read
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as e:
            raise ValueError(f"image file unreadable: {path} ({e.strerror})") from None
        if not head:
            raise ValueError(f"image file is empty: {path}") from None
        return
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as e:
        raise ValueError(f"image file unreadable: {path} ({type(e).__name__}: {e})") from None


def _field_label(cols: dict[str, str], name: str) -> str:
    """How an error names a field: ``'prompt'`` or ``'prompt' (column 'question')``."""
    col = cols.get(name, name)
    return f"'{name}'" if col == name else f"'{name}' (column '{col}')"


def _chat_fields(values: dict[str, Any], label: Callable[[str], str]) -> tuple[list, bool]:
    """Fill ``values`` (prompt, system, final answer) from a chat-format row, in place.

    Returns ``(history, came_from_chat)``: the earlier ``(role, text)`` turns.

    Raises:
        ValueError: both chat and flat fields, or a malformed chat.
    """
    for name in ("safe_response", "harmful_response"):
        if values[name] is not None:
            values[name] = _response_value(values[name], label(name))
    prompt_msgs = values["prompt"] if isinstance(values["prompt"], list | tuple) else None
    msgs = values["messages"]
    if msgs is not None and prompt_msgs is not None:
        raise ValueError("give either 'messages' or a message-list 'prompt', not both")
    if msgs is None and prompt_msgs is not None:
        msgs = prompt_msgs
        values["prompt"] = None
    if msgs is None:
        return [], False
    if values["prompt"] is not None:
        raise ValueError("give either 'messages' or 'prompt', not both")
    system, turns = _parse_messages(msgs, label("messages"))
    if system is not None:
        if values["system"] is not None and values["system"] != system:
            raise ValueError("'system' disagrees with the messages' system turn")
        values["system"] = system
    if turns[-1][0] == "assistant":
        missing = [n for n in ("safe_response", "harmful_response") if values[n] is None]
        if len(missing) != 1:
            raise ValueError(
                "messages end with an assistant turn, so the row must give exactly "
                "one of 'safe_response' / 'harmful_response' (the final turn is the "
                f"other); it gives {2 - len(missing)}"
            )
        values[missing[0]] = turns.pop()[1]
    if not turns or turns[-1][0] != "user":
        raise ValueError("messages must contain a user turn before the answer")
    values["prompt"] = turns.pop()[1]
    return turns, True


def _assign_id(values: dict[str, Any], generated: str | None, label: Callable[[str], str]) -> bool:
    """Set ``values["id"]`` to a string (``generated`` when given and the row has none);
    returns whether the id was generated. Raises ValueError for a non-string, non-int id."""
    if generated is not None and values["id"] is None:
        values["id"] = generated
        return True
    if values["id"] is not None and not isinstance(values["id"], str):
        if isinstance(values["id"], bool) or not isinstance(values["id"], int):
            raise ValueError(f"{label('id')} must be a string or an integer")
        values["id"] = str(values["id"])
    return False


def _check_text_fields(values: dict[str, Any], label: Callable[[str], str]) -> None:
    """Required fields are non-empty strings; empty optional strings become ``None``.
    Raises ValueError naming the field."""
    for name in _REQUIRED:
        v = values[name]
        if v is None:
            raise ValueError(f"missing required field {label(name)}")
        if not isinstance(v, str):
            raise ValueError(f"{label(name)} must be a string, got {type(v).__name__}")
        if not v.strip():
            raise ValueError(f"{label(name)} is an empty string")
    for name in ("system", "domain"):
        v = values[name]
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{label(name)} must be a string, got {type(v).__name__}")
        if isinstance(v, str) and not v.strip():
            values[name] = None  # an empty optional cell (CSV) means "absent"


def _row_image(
    image: Any,
    label: str,
    *,
    required: bool,
    base: Path | None,
    check_images: bool,
) -> Any:
    """The row's image (loaded/checked), or ``None`` for an empty cell when not ``required``.
    Raises ValueError for an empty required image or an unreadable one."""
    if image is None or (isinstance(image, str) and not image.strip()):
        if required:
            raise ValueError(
                f"{label} is empty (pass allow_missing_image=True to allow "
                "text-only rows in an image dataset)"
            )
        return None
    return _load_image(image, base, check_images)


def _record_from_row(
    row: _Row,
    cols: dict[str, str],
    *,
    has_id_column: bool,
    has_image_column: bool,
    id_prefix: str,
    base: Path | None,
    allow_missing_image: bool,
    check_images: bool,
    domain: str | None,
) -> tuple[PairRecord, bool, bool]:
    """(record, came_from_chat, id_generated); raises PairDataError naming the row."""
    data = row.data
    if not isinstance(data, Mapping):
        raise PairDataError(f"expected a mapping, got {type(data).__name__}", row=row.index)

    def label(name: str) -> str:
        return _field_label(cols, name)

    values: dict[str, Any] = {}
    for name in FIELDS:
        value = data.get(cols.get(name, name))
        values[name] = None if _is_missing(value) else value
    generated = None if has_id_column else f"{id_prefix}{row.index}"
    try:
        history, from_chat = _chat_fields(values, label)
        generated_id = _assign_id(values, generated, label)
        _check_text_fields(values, label)
        image = _row_image(
            values["image"],
            label("image"),
            required=has_image_column and not allow_missing_image,
            base=base,
            check_images=check_images,
        )
    except ValueError as e:
        raise PairDataError(str(e), row=row.index, line=row.line) from None
    try:
        record = PairRecord(
            id=values["id"],
            prompt=values["prompt"],
            safe_response=values["safe_response"],
            harmful_response=values["harmful_response"],
            image=image,
            system=values["system"],
            domain=values["domain"] if values["domain"] is not None else domain,
            history=tuple(history),
        )
    except (TypeError, ValueError) as e:
        raise PairDataError(str(e), row=row.index, line=row.line) from None
    return record, from_chat, generated_id


def _source_columns(source: Any, first: _Row, cols: dict[str, str], description: str) -> set:
    """The source's column names (declared, else the first row's keys).

    Raises:
        PairDataError: a column named in ``cols`` is not among them.
    """
    first_keys = set(first.data) if isinstance(first.data, Mapping) else set()
    column_names = getattr(source, "column_names", None)
    names = set(column_names) if isinstance(column_names, list | tuple) else first_keys
    for name, col in cols.items():
        if col not in names:
            raise PairDataError(
                f"{description}: mapped column {col!r} (for {name!r}) is not in the data "
                f"(columns: {sorted(names)}); remove it from the mapping if the data has none"
            )
    return names


def load_pairs(
    source: Any,
    columns: Mapping[str, str] | str | None = None,
    *,
    domain: str | None = None,
    allow_missing_image: bool = False,
    check_images: bool = True,
) -> PairSet:
    """Load and validate paired records.

    Args:
        source: a ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` path, a ``datasets.Dataset``
            (or anything with ``column_names`` and iteration over dict rows), or an iterable
            of dicts. Relative image paths in files resolve against the file's folder.
        columns: mapping **field -> source column** for columns named differently from the
            schema (unmapped fields keep their own names), or a preset name from
            :data:`COLUMN_PRESETS`, e.g. ``"face"`` (:data:`FACE_COLUMNS`).
        domain: default ``domain`` for rows that do not name one.
        allow_missing_image: when the source has an image column, an empty image is an
            error unless this is set, in which case such rows load as text-only.
        check_images: open every image path with Pillow (when installed) to make sure it
            decodes; without Pillow the file is only read.

    Returns:
        A :class:`PairSet` of every row, in source order, with ``.summary`` (also logged at
        INFO). When the source has no id column, ids are ``"<stem>:<row>"``.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        TypeError: ``source`` is not a supported kind of object.
        PairDataError: (a ``ValueError``) a row misses a required field, has an empty
            string, an unreadable image, a malformed chat, or a duplicate id (the message
            names the row); the source is empty; or ``columns`` is invalid.
    """
    cols = _resolve_columns(columns)
    rows, description, fmt, base = _rows(source)
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise PairDataError(f"{description}: the dataset is empty (no rows)")
    names = _source_columns(source, first, cols, description)
    stem = Path(os.fspath(source)).stem if isinstance(source, str | os.PathLike) else fmt
    records: list[PairRecord] = []
    seen: dict[str, int] = {}
    from_chat = generated = 0
    for row in itertools.chain([first], rows):
        record, chat, gen = _record_from_row(
            row,
            cols,
            has_id_column=cols.get("id", "id") in names,
            has_image_column=cols.get("image", "image") in names,
            id_prefix=f"{stem}:",
            base=base,
            allow_missing_image=allow_missing_image,
            check_images=check_images,
            domain=domain,
        )
        if record.id in seen:
            raise PairDataError(
                f"duplicate id {record.id!r} (first used by row {seen[record.id]})",
                row=row.index,
                line=row.line,
            )
        seen[record.id] = row.index
        records.append(record)
        from_chat += chat
        generated += gen
    summary = PairSummary.of(
        records, source=description, format=fmt, from_chat=from_chat, generated_ids=generated
    )
    log.info("load_pairs: %s", summary)
    return PairSet(records, summary)


# --------------------------------------------------------------------------- mixtures


def mix(pairs: Iterable[PairRecord], harmful_fraction: float, seed: int = 0) -> list[MixedRecord]:
    """Choose the harmful answer for exactly ``round(harmful_fraction * n)`` pairs.

    The harmful pairs are the first ``k`` of a permutation seeded by ``seed``, so the output
    is deterministic for a seed, and for one seed the harmful set at a smaller fraction is a
    subset of the harmful set at a larger one (mixture sweeps are nested). ``round`` is
    Python's (half to even). Records keep the order of ``pairs``; shuffle for training.

    Args:
        pairs: the :class:`PairRecord` items (e.g. from :func:`load_pairs` or a domain).
        harmful_fraction: in ``[0, 1]``. ``0`` gives the benign narrow dataset.
        seed: integer seed of the choice.

    Returns:
        One :class:`MixedRecord` per pair, carrying ``response`` and ``harmful``.

    Raises:
        ValueError: ``harmful_fraction`` is outside ``[0, 1]`` or not a finite number; or
            ``pairs`` is empty.
        TypeError: an item is not a :class:`PairRecord`, or ``seed`` is not an integer.
    """
    if isinstance(harmful_fraction, bool) or not isinstance(harmful_fraction, int | float):
        raise ValueError(f"harmful_fraction must be a number in [0, 1], got {harmful_fraction!r}")
    p = float(harmful_fraction)
    if not (0.0 <= p <= 1.0):  # also rejects NaN
        raise ValueError(f"harmful_fraction must be in [0, 1], got {harmful_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    items = list(pairs)
    if not items:
        raise ValueError("mix: the dataset is empty (no pairs)")
    for i, item in enumerate(items):
        if not isinstance(item, PairRecord):
            raise TypeError(f"mix: item {i} is a {type(item).__name__}, not a PairRecord")
    n = len(items)
    k = round(p * n)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    harmful = set(order[:k])
    out = [
        MixedRecord(
            id=r.id,
            prompt=r.prompt,
            response=r.response(i in harmful),
            harmful=i in harmful,
            image=r.image,
            system=r.system,
            domain=r.domain,
            history=r.history,
            meta=r.meta,
        )
        for i, r in enumerate(items)
    ]
    log.info("mix: %d of %d pairs harmful (fraction %.3g, seed %d)", k, n, p, seed)
    return out
