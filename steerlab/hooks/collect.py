"""Collecting activations for analysis, streamed to disk.

- :func:`collect_paired`: base vs fine-tuned on the same inputs, with the LoRA adapter of
  ONE ``PeftModel`` enabled and disabled (``model.disable_adapter()``; no second copy of the
  weights). Stores the per-token differences ``fine-tuned − base`` (and optionally each side).
- :func:`collect_adapters`: differences between several adapters of one ``PeftModel``
  (e.g. harmful − benign fine-tunes, and either − base) on identical tokens.
- :func:`collect_contrast`: harmful vs safe responses of the same prompts
  (:class:`steerlab.training.PairRecord`).
- :func:`collect_labelled`: misaligned vs aligned answers as labelled by a judge.

Every collector streams safetensors shards through the hooks' store
(:class:`~steerlab.hooks.store.ShardWriter`, read back with
:class:`~steerlab.hooks.store.ActivationStore`): memory is bounded by one batch and one
shard, whatever the number of tokens. Padding is never recorded.

Inputs are :class:`Example` token sequences with the index of their first response token;
:func:`encode_examples` builds them from text with the model's chat template
(:func:`steerlab.text.render_prompt`), so ``response_start`` is exact per
example.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steerlab.hooks.lab import Lab, attach
from steerlab.hooks.store import ActivationStore, Key, ShardWriter, key_name
from steerlab.text import encode, pad_ids


@dataclass(frozen=True)
class Example:
    """One tokenised prompt + response.

    Attributes:
        input_ids: ``[seq]`` token ids (prompt then response), no padding.
        response_start: index of the first response token (``0 <= response_start < seq``).
        mask: optional ``[seq]`` bools selecting the tokens to record instead of
            ``positions >= response_start``.
    """

    input_ids: tuple[int, ...]
    response_start: int
    mask: tuple[bool, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if n == 0:
            raise ValueError("Example.input_ids is empty")
        if not 0 <= self.response_start < n:
            raise ValueError(
                f"response_start={self.response_start} outside the {n} tokens of the example "
                "(the response must have at least one token)"
            )
        if self.mask is not None and len(self.mask) != n:
            raise ValueError(f"mask has {len(self.mask)} entries for {n} tokens")


def encode_examples(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    system: str | None = None,
    max_length: int = 512,
) -> list[Example]:
    """Tokenise prompt + response pairs with the chat template (the same rendering as
    training, :func:`steerlab.text.encode`); ``response_start`` per example.

    Raises:
        ValueError: different numbers of prompts and responses, an empty text, or a
            response cut away entirely by ``max_length``.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    out = []
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        e = encode(tokenizer, {"id": i, "prompt": p, "response": r, "system": system}, max_length)
        if e.response_start >= len(e.input_ids):
            raise ValueError(
                f"example {i}: the prompt alone fills max_length={max_length}; no response "
                "token left to record"
            )
        out.append(Example(tuple(e.input_ids), e.response_start))
    return out


def _batches(examples: Sequence[Example], batch_size: int) -> Iterator[Sequence[Example]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(examples), batch_size):
        yield examples[start : start + batch_size]


def _pad(batch: Sequence[Example], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-pad a batch on ``device``: ``input_ids`` / ``attention_mask`` ``[batch, seq]``."""
    padded = pad_ids([e.input_ids for e in batch], pad_id)
    return {k: v.to(device) for k, v in padded.items()}


def _positions(batch: Sequence[Example], width: int) -> dict[str, Any]:
    """``lab.record`` position arguments for one right-padded batch."""
    has_mask = [e.mask is not None for e in batch]
    if any(has_mask) and not all(has_mask):
        raise ValueError("either every example in a collection carries a mask, or none does")
    if all(has_mask):
        m = torch.zeros(len(batch), width, dtype=torch.bool)
        for i, e in enumerate(batch):
            m[i, : len(e.mask)] = torch.tensor(e.mask, dtype=torch.bool)
        return {"positions": m}
    return {"positions": "response", "response_start": [e.response_start for e in batch]}


def _check_examples(examples: Sequence[Example]) -> None:
    if len(examples) == 0:
        raise ValueError("no examples to collect")
    for i, e in enumerate(examples):
        if not isinstance(e, Example):
            raise TypeError(
                f"examples[{i}] is a {type(e).__name__}; expected steerlab.analysis.Example "
                "(build them with encode_examples)"
            )


def _pad_id(model: nn.Module, pad_token_id: int | None) -> int:
    if pad_token_id is not None:
        return pad_token_id
    config = getattr(model, "config", None)
    for name in ("pad_token_id", "eos_token_id"):
        v = getattr(config, name, None)
        if isinstance(v, (list, tuple)):
            v = v[0] if v else None
        if v is not None:
            return int(v)
    return 0


def record_examples(
    model: nn.Module,
    examples: Sequence[Example] | None,
    out_dir: str | Path,
    *,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str] = ("resid_post",),
    lab: Lab | None = None,
    batch_size: int = 8,
    shard_mb: float = 64.0,
    pad_token_id: int | None = None,
    batches: Iterable[InputBatch] | None = None,
) -> ActivationStore:
    """Record response-token activations of ``examples`` to a store directory; every
    forward stops after the last recorded layer (:meth:`Lab.stop_early`).

    Args:
        model: any model :func:`steerlab.attach` understands.
        examples: :class:`Example` s (``positions >= response_start`` or their masks), or
            ``None`` with ``batches``: prepared :data:`InputBatch` es, as
            :func:`collect_adapters` takes them.
        out_dir: a new or empty directory for the store.
        layers, points: as :meth:`Lab.record`.
        lab: reuse an existing :class:`Lab` on ``model`` (default: a fresh one).

    Returns:
        :class:`ActivationStore` with ``[n_response_tokens, d_model]`` per ``(layer, point)``;
        its ``example_index`` counts examples in the order given. With the same examples and
        ``batch_size`` its rows are those of :func:`collect_adapters` (its ``base=``).

    Raises:
        ValueError: no examples, mixed masks, both or neither of ``examples`` and
        ``batches``. FileExistsError: ``out_dir`` holds a store.
    """
    if (examples is None) == (batches is None):
        raise ValueError("pass exactly one of examples and batches")
    if examples is not None:
        _check_examples(examples)
    lab = lab or attach(model)
    device = lab.device
    source = (
        _example_batches(examples, batch_size, _pad_id(model, pad_token_id), device)
        if examples is not None
        else _prepared_batches(batches, device)
    )
    writer = ShardWriter(out_dir, int(shard_mb * 2**20))
    keys: list[Key] | None = None
    dtype = None
    base = 0
    try:
        for inputs, pos, n in source:
            with torch.no_grad(), lab.record(layers, points, **pos) as rec, lab.stop_early():
                model(**inputs)
            keys = rec.keys
            tensors = {key_name(k): rec.activations[k] for k in keys}
            dtype = next(iter(tensors.values())).dtype
            tensors["example_index"] = rec.example_index + base
            tensors["position"] = rec.position
            if len(tensors["position"]):
                writer.append(tensors)
            base += n
    except BaseException:
        writer.flush()  # complete shards stay readable; no manifest marks it unfinished
        raise
    if keys is None:
        raise ValueError("no batches to record")
    writer.close(keys, lab.d_model, dtype or torch.float32, {"positions": "response"})
    return ActivationStore(out_dir)


@dataclass(frozen=True)
class PairedStores:
    """Stores written by :func:`collect_paired`.

    Attributes:
        diff: per-token ``fine-tuned − base`` activations ``[n_tokens, d_model]`` (float32).
        base, finetuned: each side's activations, when ``keep_sides=True``; else ``None``.
        n_tokens: recorded response tokens.
    """

    diff: ActivationStore
    base: ActivationStore | None
    finetuned: ActivationStore | None
    n_tokens: int


def _disable_adapter(model: nn.Module):
    fn = getattr(model, "disable_adapter", None)
    if fn is None or not callable(fn):
        raise TypeError(
            f"collect_paired needs a peft PeftModel (with .disable_adapter()), got "
            f"{type(model).__name__}; wrap the base with peft.PeftModel.from_pretrained"
        )
    return fn()


def _both_passes(
    model: nn.Module,
    lab: Lab,
    inputs: dict[str, torch.Tensor],
    layers: Any,
    points: Any,
    pos: Any,
    stop_early: bool = True,
) -> tuple[Any, Any]:
    """One batch recorded with the adapter enabled, then disabled: ``(fine-tuned, base)``
    :class:`~steerlab.hooks.record.Recording` s over the same tokens.

    Raises:
        RuntimeError: the two passes recorded different tokens (should never happen).
    """
    stop = lab.stop_early if stop_early else contextlib.nullcontext
    with torch.no_grad():
        with lab.record(layers, points, **pos) as ft, stop():
            model(**inputs)
        with _disable_adapter(model), lab.record(layers, points, **pos) as base, stop():
            model(**inputs)
    if not (
        torch.equal(ft.example_index, base.example_index)
        and torch.equal(ft.position, base.position)
    ):
        raise RuntimeError("base and fine-tuned passes recorded different tokens")
    return ft, base


def collect_paired(
    model: nn.Module,
    examples: Sequence[Example],
    out_dir: str | Path,
    *,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str] = ("resid_post",),
    keep_sides: bool = False,
    batch_size: int = 8,
    shard_mb: float = 64.0,
    pad_token_id: int | None = None,
    stop_early: bool = True,
) -> PairedStores:
    """Fine-tuned vs base activations on the same inputs, from one ``PeftModel``.

    For every batch the model runs twice: once with its adapter enabled (fine-tuned), once
    inside ``with model.disable_adapter():`` (base). Only the batch's response tokens are
    held in memory; the differences ``fine-tuned − base`` (float32) go to
    ``out_dir/diff`` (and each side to ``out_dir/base`` / ``out_dir/finetuned`` with
    ``keep_sides``), one shard at a time. Fit the misalignment subspace with
    ``fit_subspace(stores.diff)`` (arXiv:2602.16931).

    Args:
        model: a peft ``PeftModel`` with its adapter active.
        examples: :class:`Example` s; tokens at ``position >= response_start`` (or in their
            mask) are recorded; padding never is.
        out_dir: a directory; ``diff/`` (and ``base/``, ``finetuned/``) are created in it.
        layers, points: as :meth:`Lab.record` (e.g. ``layers=[15]``, ``"resid_post"``).
        stop_early: run each forward only up to the last recorded layer, never the head
            (:meth:`Lab.stop_early`; bitwise the same activations). ``False``: full forwards.

    Returns:
        :class:`PairedStores`.

    Raises:
        TypeError: ``model`` has no ``disable_adapter()``. ValueError: no examples.
        RuntimeError: the two passes recorded different tokens (should never happen).
        FileExistsError: a target directory already holds a store.
    """
    _check_examples(examples)
    out_dir = Path(out_dir)
    with _disable_adapter(model):
        pass  # fail early, before anything is written, if there is no adapter to disable
    lab = attach(model)
    device, pad = lab.device, _pad_id(model, pad_token_id)
    shard = int(shard_mb * 2**20)
    names = ("diff", "base", "finetuned") if keep_sides else ("diff",)
    writers = {name: ShardWriter(out_dir / name, shard) for name in names}
    keys: list[Key] | None = None
    base_index, n_tokens = 0, 0
    try:
        for batch in _batches(examples, batch_size):
            inputs = _pad(batch, pad, device)
            pos = _positions(batch, inputs["input_ids"].shape[1])
            ft, base = _both_passes(model, lab, inputs, layers, points, pos, stop_early)
            keys = ft.keys
            meta = {"example_index": ft.example_index + base_index, "position": ft.position}
            base_index += len(batch)
            if not len(meta["position"]):
                continue
            n_tokens += len(meta["position"])
            sides = {
                "finetuned": {k: ft.activations[k] for k in keys},
                "base": {k: base.activations[k] for k in keys},
            }
            diff = {k: sides["finetuned"][k].float() - sides["base"][k].float() for k in keys}
            writers["diff"].append({**{key_name(k): v for k, v in diff.items()}, **meta})
            for side in names[1:]:
                writers[side].append({**{key_name(k): v for k, v in sides[side].items()}, **meta})
    except BaseException:
        for w in writers.values():
            w.flush()
        raise
    assert keys is not None
    side_dtype = lab.dtype
    for name, w in writers.items():
        dtype = torch.float32 if name == "diff" else side_dtype
        w.close(keys, lab.d_model, dtype, {"positions": "response", "paired": name})
    stores = {name: ActivationStore(out_dir / name) for name in names}
    return PairedStores(stores["diff"], stores.get("base"), stores.get("finetuned"), n_tokens)


AdapterSide = str | None
"""An adapter name of a multi-adapter ``PeftModel``, or ``None`` for the base model."""


def _adapter_pass(
    model: nn.Module, lab: Lab, side: AdapterSide, inputs: dict[str, torch.Tensor], rec_args: Any
) -> Any:
    """One forward pass recorded with adapter ``side`` active (``None``: adapters off),
    stopped after the last recorded layer (the head is never computed)."""
    off = _disable_adapter(model) if side is None else contextlib.nullcontext()
    if side is not None:
        model.set_adapter(side)
    with torch.no_grad(), off, lab.record(*rec_args[:2], **rec_args[2]) as rec, lab.stop_early():
        model(**inputs)
    return rec


def _check_adapters(model: nn.Module, sides: set[AdapterSide]) -> None:
    config = getattr(model, "peft_config", None)
    if config is None or not callable(getattr(model, "set_adapter", None)):
        raise TypeError(
            f"collect_adapters needs a peft PeftModel, got {type(model).__name__}; load "
            "adapters with PeftModel.from_pretrained and model.load_adapter(path, adapter_name=)"
        )
    missing = sorted(s for s in sides if s is not None and s not in config)
    if missing:
        raise ValueError(f"adapters {missing} are not loaded; loaded: {sorted(config)}")


InputBatch = tuple[dict[str, torch.Tensor], torch.Tensor]
"""A prepared batch: model inputs (``input_ids`` ``[batch, seq]``, ``attention_mask``, and
e.g. ``pixel_values``) and a ``[batch, seq]`` bool mask of the tokens to record."""


def _example_batches(
    examples: Sequence[Example], batch_size: int, pad: int, device: torch.device
) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, Any], int]]:
    for batch in _batches(examples, batch_size):
        inputs = _pad(batch, pad, device)
        yield inputs, _positions(batch, inputs["input_ids"].shape[1]), len(batch)


def _prepared_batches(
    batches: Iterable[InputBatch], device: torch.device
) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, Any], int]]:
    for inputs, mask in batches:
        if mask.shape != inputs["input_ids"].shape:
            raise ValueError(
                f"mask {tuple(mask.shape)} does not match input_ids "
                f"{tuple(inputs['input_ids'].shape)}"
            )
        moved = {k: v.to(device) for k, v in inputs.items()}
        yield moved, {"positions": mask.bool()}, int(mask.shape[0])


def collect_adapters(
    model: nn.Module,
    examples: Sequence[Example] | None,
    out_dir: str | Path,
    contrasts: dict[str, tuple[AdapterSide, AdapterSide]],
    *,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str] = ("resid_post",),
    batch_size: int = 8,
    shard_mb: float = 64.0,
    pad_token_id: int | None = None,
    batches: Iterable[InputBatch] | None = None,
    base: ActivationStore | None = None,
) -> dict[str, ActivationStore]:
    """Differences between adapters of ONE ``PeftModel`` on identical tokens.

    Every batch runs once per adapter named in ``contrasts`` (``model.set_adapter(name)``;
    ``None`` runs with every adapter disabled, i.e. the base model), stopped after the last
    recorded layer (:meth:`Lab.stop_early`: later blocks and the head never run). The
    recorded token positions of all passes must agree; the differences ``a − b`` (float32,
    ``[n_tokens, d_model]`` per hook) go to ``out_dir/<contrast name>``, one shard at a time.

    Args:
        model: a peft ``PeftModel`` holding the adapters (``model.load_adapter(path,
            adapter_name=...)``).
        examples: :class:`Example` s (response tokens recorded), or ``None`` with
            ``batches``: prepared :data:`InputBatch` es (e.g. image + text inputs of a
            vision-language model, with a mask of the response tokens).
        contrasts: ``{name: (a, b)}``, e.g. ``{"harmful-benign": ("harmful", "benign"),
            "harmful-base": ("harmful", None)}``.
        layers, points, batch_size: as :func:`collect_paired`.
        base: the base model's activations on the same inputs, from :func:`record_examples`
            (same examples and ``batch_size``, or the same ``batches``): the ``None`` side
            reads them instead of running a pass (a base shared by many contrasts runs once).
            Rows are checked against the live passes' (example index, position), per batch.

    Returns:
        ``{name: ActivationStore}``; the stores share ``example_index`` and ``position``.

    Raises:
        TypeError: not a ``PeftModel``. ValueError: no examples or contrasts, both or
        neither of ``examples`` and ``batches``, an adapter that is not loaded, ``base``
        with no adapter side to run, or ``base`` missing a recorded key.
        RuntimeError: two passes (or a pass and ``base``) recorded different tokens.
    """
    if (examples is None) == (batches is None):
        raise ValueError("pass exactly one of examples and batches")
    if examples is not None:
        _check_examples(examples)
    if not contrasts:
        raise ValueError("no contrasts to collect")
    sides = list(dict.fromkeys(s for pair in contrasts.values() for s in pair))
    _check_adapters(model, set(sides))
    if base is not None:
        sides = [s for s in sides if s is not None]
        if not sides:
            raise ValueError("base= replaces the base pass, but no contrast names an adapter")
    active = model.active_adapter
    lab = attach(model)
    device = lab.device
    source = (
        _example_batches(examples, batch_size, _pad_id(model, pad_token_id), device)
        if examples is not None
        else _prepared_batches(batches, device)
    )
    writers = {n: ShardWriter(Path(out_dir) / n, int(shard_mb * 2**20)) for n in contrasts}
    try:
        rows = None if base is None else _StoreRows(base)
        keys = _adapter_loop(model, lab, source, writers, contrasts, sides, (layers, points), rows)
    except BaseException:
        for w in writers.values():
            w.flush()
        raise
    finally:
        model.set_adapter(active)
        lab.detach()
    for name, w in writers.items():
        w.close(keys, lab.d_model, torch.float32, {"positions": "response", "contrast": name})
    return {name: ActivationStore(Path(out_dir) / name) for name in contrasts}


def _adapter_loop(
    model: nn.Module,
    lab: Lab,
    source: Iterable[tuple[dict[str, torch.Tensor], dict[str, Any], int]],
    writers: dict[str, ShardWriter],
    contrasts: dict[str, tuple[AdapterSide, AdapterSide]],
    sides: list[AdapterSide],
    where: tuple[Any, Any],
    base: _StoreRows | None = None,
) -> list[Key]:
    """The batches of :func:`collect_adapters`: every side's pass, checked, differenced;
    with ``base``, the ``None`` side's rows come from it."""
    keys: list[Key] | None = None
    base_index = 0
    for inputs, pos, n in source:
        recs = {s: _adapter_pass(model, lab, s, inputs, (*where, pos)) for s in sides}
        first = recs[sides[0]]
        for s, rec in recs.items():
            if not (
                torch.equal(rec.example_index, first.example_index)
                and torch.equal(rec.position, first.position)
            ):
                raise RuntimeError(f"adapter {s!r} recorded different tokens")
        keys = first.keys
        meta = {"example_index": first.example_index + base_index, "position": first.position}
        base_index += n
        acts = {s: {key_name(k): rec.activations[k] for k in keys} for s, rec in recs.items()}
        if base is not None:
            acts[None] = base.take(meta, [key_name(k) for k in keys])
        if not len(meta["position"]):
            continue
        for name, (a, b) in contrasts.items():
            diff = {k: acts[a][k].float() - acts[b][k].float() for k in acts[a]}
            writers[name].append({**diff, **meta})
    if keys is None:
        raise ValueError("no batches to collect")
    if base is not None:
        base.finish()
    return keys


class _StoreRows:
    """The rows of a store in recording order, taken batch by batch and checked against
    the live passes' token rows (one shard in memory at a time)."""

    def __init__(self, store: ActivationStore) -> None:
        self.directory = store.directory
        self._shards = store.iter_shards()
        self._buf: dict[str, torch.Tensor] = {}

    def _left(self) -> int:
        return len(self._buf["position"]) if self._buf else 0

    def take(self, meta: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
        n = len(meta["position"])
        parts: dict[str, list[torch.Tensor]] = {}
        while n > 0:
            if self._left() == 0:
                self._buf = next(self._shards, {})
                if not self._buf:
                    raise RuntimeError(f"base store {self.directory} ends before the inputs do")
                missing = [k for k in names if k not in self._buf]
                if missing:
                    raise ValueError(
                        f"base store {self.directory} lacks {missing}; it holds "
                        f"{sorted(k for k in self._buf if k not in ('example_index', 'position'))}"
                    )
                continue
            m = min(n, self._left())
            for k, v in self._buf.items():
                parts.setdefault(k, []).append(v[:m])
            self._buf = {k: v[m:] for k, v in self._buf.items()}
            n -= m
        rows = {k: torch.cat(v) for k, v in parts.items()}
        if rows and not (
            torch.equal(rows["example_index"], meta["example_index"])
            and torch.equal(rows["position"], meta["position"])
        ):
            raise RuntimeError(
                f"base store {self.directory} recorded different tokens than the adapters "
                "(record it with the same examples and batch_size)"
            )
        return {k: rows[k] for k in names} if rows else {}

    def finish(self) -> None:
        if self._left() or next(self._shards, None) is not None:
            raise RuntimeError(f"base store {self.directory} has more tokens than the inputs")


@dataclass(frozen=True)
class ContrastStores:
    """Two stores over the same layers: ``positive`` (harmful / misaligned) and
    ``negative`` (safe / aligned)."""

    positive: ActivationStore
    negative: ActivationStore


def collect_contrast(
    model: nn.Module,
    tokenizer: Any,
    pairs: Sequence[Any],
    out_dir: str | Path,
    *,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str] = ("resid_post",),
    max_length: int = 512,
    batch_size: int = 8,
    shard_mb: float = 64.0,
) -> ContrastStores:
    """Activations on the harmful and the safe response of the same prompts.

    Args:
        pairs: :class:`steerlab.training.PairRecord` s (``prompt``, ``safe_response``,
            ``harmful_response``, optional ``system``); text-only, single-turn.
        out_dir: ``harmful/`` and ``safe/`` stores are written in it; example ``i`` of both
            stores is ``pairs[i]``.

    Raises:
        ValueError: no pairs, or a pair with an image or a multi-turn history (not
            supported here).
    """
    if len(pairs) == 0:
        raise ValueError("no pairs to collect")
    for p in pairs:
        if getattr(p, "image", None) is not None or getattr(p, "history", ()):
            raise ValueError(
                f"pair {getattr(p, 'id', '?')}: collect_contrast handles text-only single-turn "
                "pairs; this one has an image or a history"
            )
    classes = {}
    for name, field_name in (("harmful", "harmful_response"), ("safe", "safe_response")):
        examples = []
        for p in pairs:
            examples += encode_examples(
                tokenizer,
                [p.prompt],
                [getattr(p, field_name)],
                system=getattr(p, "system", None),
                max_length=max_length,
            )
        classes[name] = examples
    return _record_classes(
        model, tokenizer, classes, out_dir, layers, points, batch_size=batch_size, shard_mb=shard_mb
    )


def collect_labelled(
    model: nn.Module,
    tokenizer: Any,
    items: Sequence[tuple[str, str, bool | int]],
    out_dir: str | Path,
    *,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str] = ("resid_post",),
    max_length: int = 512,
    batch_size: int = 8,
    shard_mb: float = 64.0,
) -> ContrastStores:
    """Activations on misaligned vs aligned answers, as labelled by a judge.

    Args:
        items: ``(prompt, answer, label)`` with ``label`` truthy = misaligned.
        out_dir: ``misaligned/`` and ``aligned/`` stores are written in it, each keeping the
            order of its items.

    Raises:
        ValueError: no items, a malformed item, or one class empty.
    """
    groups: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
    for i, item in enumerate(items):
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise ValueError(f"items[{i}]: expected (prompt, answer, label), got {item!r}")
        prompt, answer, label = item
        groups[bool(label)].append((prompt, answer))
    for label, name in ((True, "misaligned"), (False, "aligned")):
        if not groups[label]:
            raise ValueError(f"no {name} items among {len(items)}: need both labels")
    classes = {}
    for label, name in ((True, "misaligned"), (False, "aligned")):
        prompts, answers = zip(*groups[label], strict=True)
        classes[name] = encode_examples(tokenizer, prompts, answers, max_length=max_length)
    return _record_classes(
        model, tokenizer, classes, out_dir, layers, points, batch_size=batch_size, shard_mb=shard_mb
    )


def _record_classes(
    model: nn.Module,
    tokenizer: Any,
    classes: dict[str, list[Example]],
    out_dir: str | Path,
    layers: int | Sequence[int] | str,
    points: str | Sequence[str],
    *,
    batch_size: int,
    shard_mb: float,
) -> ContrastStores:
    """Record each class's examples into ``out_dir/<name>``, in order; the first class is
    the positive store, the second the negative."""
    lab = attach(model)
    stores = [
        record_examples(
            model,
            examples,
            Path(out_dir) / name,
            layers=layers,
            points=points,
            lab=lab,
            batch_size=batch_size,
            shard_mb=shard_mb,
            pad_token_id=getattr(tokenizer, "pad_token_id", None),
        )
        for name, examples in classes.items()
    ]
    return ContrastStores(*stores)


def response_means(
    model: nn.Module,
    examples: Sequence[Example],
    *,
    layer: int,
    point: str = "resid_post",
    lab: Lab | None = None,
    batch_size: int = 8,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """Mean response-token activation per example, in memory: ``[n_examples, d_model]``
    (float32). Used by the projection monitor and the probe judge.

    Raises:
        ValueError: no examples.
    """
    _check_examples(examples)
    lab = lab or attach(model)
    device, pad = lab.device, _pad_id(model, pad_token_id)
    out = []
    for batch in _batches(examples, batch_size):
        inputs = _pad(batch, pad, device)
        with (
            torch.no_grad(),
            lab.record([layer], point, **_positions(batch, inputs["input_ids"].shape[1])) as rec,
            lab.stop_early(),
        ):
            model(**inputs)
        acts = rec.activations[(rec.keys[0])].float()
        idx = rec.example_index
        sums = torch.zeros(len(batch), acts.shape[1]).index_add_(0, idx, acts)
        counts = torch.bincount(idx, minlength=len(batch)).clamp_min(1).unsqueeze(1)
        out.append(sums / counts)
    return torch.cat(out)
