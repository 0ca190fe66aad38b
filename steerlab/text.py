"""Text in, token ids out: chat templating, encoding, padding and collation.

The one home for turning conversations into model inputs, shared by training, evaluation
and analysis (it imports nothing from those packages).

- :func:`render_prompt` / :func:`encode`: the model's chat template renders the
  conversation. For training, the loss covers the response tokens only (and the end-of-turn
  tokens the template appends after them); prompt, image tokens and padding carry the label
  ``-100`` (:data:`IGNORE`).
- :func:`pad_rows`: the one padding routine (left or right); :func:`pad_ids`,
  :func:`collate` (training batches of :class:`Encoded`) and :func:`collate_inputs`
  (per-example model-input dicts, e.g. prompts for generation) are built on it.
- :func:`pad_token_id`: the id that fills padding.

A tokenizer without a chat template (Gemma 3 270M is a base model) gets the documented plain
fallback::

    {system}\\n\\n            (only when a system prompt is given)
    User: {turn}\\nAssistant: {answer}{eos}\\n   (one line pair per earlier turn, if any)
    User: {image_token}\\n{prompt}\\n           ({image_token}\\n only with an image)
    Assistant: {response}{eos}

Records with an ``image`` (a path or a PIL image) go through the model's *processor*
(``transformers.AutoProcessor``; any ``ProcessorMixin`` with ``image_processor`` and
``tokenizer``): the processor expands the image placeholder into the model's image tokens and
returns the pixel tensors (``pixel_values`` and whatever else the model needs, e.g.
``token_type_ids`` on Gemma 3 or ``image_grid_thw`` on Qwen2-VL), which :func:`collate`
batches. Text-only records work with a processor too (its tokenizer is used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

IGNORE = -100
PLAIN_TEMPLATE = "User: {prompt}\nAssistant: "


@dataclass(frozen=True)
class Encoded:
    """One tokenised example.

    Fields:
        input_ids, labels: ``[seq]`` lists; labels are ``-100`` outside the response.
        response_start: index of the first response token.
        truncated_response: True when ``max_length`` cut into the response.
        extras: processor outputs besides ids and mask (VLM examples only), e.g.
            ``pixel_values`` ``[n_images, channels, height, width]``; not compared by ``==``.
        seq_keys: names in ``extras`` that are aligned with ``input_ids`` (``[seq]``, padded
            with 0 by :func:`collate`), e.g. ``token_type_ids``.
    """

    input_ids: list[int]
    labels: list[int]
    response_start: int
    truncated_response: bool
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict, compare=False)
    seq_keys: tuple[str, ...] = ()


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def is_processor(obj: Any) -> bool:
    """True for a multimodal processor (has both ``image_processor`` and ``tokenizer``)."""
    return (
        getattr(obj, "image_processor", None) is not None
        and getattr(obj, "tokenizer", None) is not None
    )


def text_tokenizer(tokenizer_or_processor: Any) -> Any:
    """The text tokenizer of a processor (its ``tokenizer``), or the argument itself when it
    is a tokenizer."""
    inner = getattr(tokenizer_or_processor, "tokenizer", None)
    return inner if inner is not None else tokenizer_or_processor


def _templater(tokenizer_or_processor: Any, image: bool = False) -> Any | None:
    """Whatever renders the chat template: the processor's own, else its tokenizer's. A
    prompt with an image needs a processor's template (a tokenizer's has no image part to
    place it); without one it gets the plain fallback with the image token."""
    candidates = [tokenizer_or_processor]
    if not image:
        candidates.append(text_tokenizer(tokenizer_or_processor))
    for obj in candidates:
        if getattr(obj, "chat_template", None):
            return obj
    return None


def _image_token(processor: Any) -> str:
    token = getattr(processor, "image_token", None) or getattr(
        processor.tokenizer, "image_token", None
    )
    if not token:
        raise ValueError(
            f"{type(processor).__name__} has no chat template and no image_token; cannot place "
            "the image in the plain fallback prompt"
        )
    return token


def _messages(
    prompt: str,
    system: str | None,
    history: Any,
    image: bool,
    parts: bool,
) -> list[dict[str, Any]]:
    def content(text: str, with_image: bool = False) -> Any:
        if not parts:
            return text
        items = [{"type": "image"}] if with_image else []
        return [*items, {"type": "text", "text": text}]

    msgs: list[dict[str, Any]] = []
    if system:
        msgs.append({"role": "system", "content": content(system)})
    msgs += [{"role": role, "content": content(text)} for role, text in history or ()]
    msgs.append({"role": "user", "content": content(prompt, image)})
    return msgs


def _render(
    tokenizer_or_processor: Any,
    prompt: str,
    response: str | None,
    system: str | None = None,
    history: Any = (),
    image: bool = False,
) -> str:
    """The prompt text (``response=None``) or the whole conversation."""
    templater = _templater(tokenizer_or_processor, image)
    if templater is not None:
        parts = is_processor(templater)  # processor templates expect typed content parts
        msgs = _messages(prompt, system, history, image, parts)
        if response is None:
            return templater.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        answer = [{"type": "text", "text": response}] if parts else response
        msgs.append({"role": "assistant", "content": answer})
        return templater.apply_chat_template(msgs, tokenize=False)
    eos = text_tokenizer(tokenizer_or_processor).eos_token or ""
    text = f"{system}\n\n" if system else ""
    for role, turn in history or ():
        text += f"User: {turn}\n" if role == "user" else f"Assistant: {turn}{eos}\n"
    if image:
        prompt = f"{_image_token(tokenizer_or_processor)}\n{prompt}"
    text += PLAIN_TEMPLATE.format(prompt=prompt)
    return text if response is None else text + response + eos


def render_prompt(
    tokenizer: Any,
    prompt: str,
    system: str | None = None,
    *,
    history: Any = (),
    image: bool = False,
) -> str:
    """The prompt text up to where the assistant's answer begins (chat template, or the plain
    fallback). ``history`` holds earlier ``(role, content)`` turns; ``image=True`` places one
    image before the prompt (``tokenizer`` must then be a processor).

    Raises:
        ValueError: ``image=True`` with a processor that has neither a chat template nor an
            image token.
    """
    return _render(tokenizer, prompt, None, system, history, image)


def _bos_prefix(tokenizer: Any, ids: list[int]) -> list[int]:
    """``[bos]`` when the tokenizer wants a BOS token and ``ids`` (tokenised without special
    tokens) do not start with one already (the chat template wrote it), else ``[]``."""
    bos = tokenizer.bos_token_id
    if bos is not None and getattr(tokenizer, "add_bos_token", False) and ids[:1] != [bos]:
        return [bos]
    return []


def text_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of rendered text (e.g. :func:`render_prompt`'s), with BOS prepended by the
    same rule as :func:`encode`."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [*_bos_prefix(tokenizer, ids), *ids]


def load_image(image: Any) -> Any:
    """An RGB PIL image from a path or a PIL image. Raises ``ValueError`` when unreadable."""
    from PIL import Image  # lazy: only image records need Pillow

    if hasattr(image, "convert"):
        return image.convert("RGB")
    try:
        with Image.open(image) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise ValueError(f"image {image!r} is unreadable: {err}") from None


def _response_start(prompt_ids: list[int], full_ids: list[int]) -> int:
    start = len(prompt_ids)
    if full_ids[:start] != prompt_ids:  # tokenisation merged across the boundary
        start = next(
            (i for i, (a, b) in enumerate(zip(prompt_ids, full_ids, strict=False)) if a != b),
            start,
        )
    return start


def encode(tokenizer: Any, record: Any, max_length: int) -> Encoded:
    """Tokenise one record (``prompt``, ``response``, optional ``system``, ``history`` and
    ``image``) for training.

    Args:
        tokenizer: the model's tokenizer, or its processor (required for records with an
            image).
        record: a mapping or object with those fields (e.g. a
            :class:`~steerlab.training.MixedRecord`).
        max_length: the example is cut to this many tokens (image tokens included).

    Raises:
        ValueError: an empty prompt or response; a record with an image given a text-only
            tokenizer; an unreadable image; a chat template that does not render the prompt
            as a prefix of the full conversation.
    """
    rid = _field(record, "id", "?")
    prompt, response = _field(record, "prompt"), _field(record, "response")
    system, history = _field(record, "system"), _field(record, "history", ())
    image = _field(record, "image")
    for name, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"record {rid}: empty or missing {name}")
    if image is not None and not is_processor(tokenizer):
        raise ValueError(
            f"record {rid} has an image, but {type(tokenizer).__name__} is a text-only "
            "tokenizer; pass the vision-language model's processor instead "
            "(transformers.AutoProcessor.from_pretrained(...))"
        )
    prompt_text = _render(tokenizer, prompt, None, system, history, image is not None)
    full_text = _render(tokenizer, prompt, response, system, history, image is not None)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the conversation; "
            "cannot locate the response tokens"
        )
    if image is not None:
        return _encode_with_image(tokenizer, prompt_text, full_text, image, max_length, rid)
    tok = text_tokenizer(tokenizer)
    prompt_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
    full_ids = tok(full_text, add_special_tokens=False)["input_ids"]
    bos = _bos_prefix(tok, full_ids)
    prompt_ids, full_ids = [*bos, *prompt_ids], [*bos, *full_ids]
    start = _response_start(prompt_ids, full_ids)
    ids = full_ids[:max_length]
    labels = [IGNORE] * min(start, len(ids)) + ids[start:]
    return Encoded(ids, labels, start, truncated_response=len(full_ids) > max_length)


def _encode_with_image(
    processor: Any, prompt_text: str, full_text: str, image: Any, max_length: int, rid: Any
) -> Encoded:
    img = load_image(image)
    kw = {"add_special_tokens": False, "return_tensors": "pt"}
    try:
        full = processor(text=[full_text], images=[[img]], **kw)
        prompt = processor(text=[prompt_text], images=[[img]], **kw)
    except (ValueError, TypeError) as err:
        raise ValueError(f"record {rid}: the processor rejected the example ({err})") from err
    full_ids = full["input_ids"][0].tolist()
    start = _response_start(prompt["input_ids"][0].tolist(), full_ids)
    n = len(full_ids)
    extras: dict[str, torch.Tensor] = {}
    seq_keys = []
    for key, value in full.items():
        if key in ("input_ids", "attention_mask") or not isinstance(value, torch.Tensor):
            continue
        if value.ndim == 2 and value.shape == (1, n):  # per-token, e.g. token_type_ids
            extras[key] = value[0, :max_length]
            seq_keys.append(key)
        else:
            extras[key] = value
    ids = full_ids[:max_length]
    labels = [IGNORE] * min(start, len(ids)) + ids[start:]
    return Encoded(ids, labels, start, len(full_ids) > max_length, extras, seq_keys=tuple(seq_keys))


# --------------------------------------------------------------------------- padding


def pad_token_id(tokenizer_or_processor: Any, *, eos_fallback: bool = True) -> int:
    """The id that fills padding: the tokenizer's pad token; without one, its EOS token when
    ``eos_fallback`` (generation and scoring), else 0 (LoRA training, where padding is
    masked out of attention and loss anyway)."""
    tok = text_tokenizer(tokenizer_or_processor)
    pad = tok.pad_token_id
    if pad is None and eos_fallback:
        pad = tok.eos_token_id
    return 0 if pad is None else int(pad)


def pad_rows(
    rows: Sequence[Sequence[int] | torch.Tensor],
    value: int,
    *,
    side: str = "right",
    width: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Stack 1-D rows of different lengths into ``[len(rows), width]``, filling with ``value``.

    Args:
        rows: token ids (lists or ``[seq_i]`` tensors); an empty row is all padding.
        value: the fill (a pad token id, :data:`IGNORE` for labels, 0 for masks).
        side: ``"right"`` (training, scoring: positions of real tokens unchanged) or
            ``"left"`` (generation: every prompt ends at the last column).
        width: the number of columns (default: the longest row).
        dtype: the result's dtype (default: the first row's if it is a tensor, else long).

    Raises:
        ValueError: no rows, an unknown ``side``, or a row longer than ``width``.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if len(rows) == 0:
        raise ValueError("no rows to pad")
    if dtype is None:
        dtype = rows[0].dtype if isinstance(rows[0], torch.Tensor) else torch.long
    tensors = [torch.as_tensor(r, dtype=dtype) for r in rows]
    longest = max(len(t) for t in tensors)
    width = longest if width is None else width
    if longest > width:
        raise ValueError(f"a row of {longest} tokens does not fit width={width}")
    out = torch.full((len(tensors), width), value, dtype=dtype)
    for i, t in enumerate(tensors):
        start = width - len(t) if side == "left" else 0
        out[i, start : start + len(t)] = t
    return out


def pad_ids(
    rows: Sequence[Sequence[int] | torch.Tensor], pad_id: int, *, side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad token-id rows into ``input_ids`` and ``attention_mask``, each ``[batch, seq]``
    (long; the mask is 1 on real tokens). ``side`` as in :func:`pad_rows`."""
    ids = pad_rows(rows, pad_id, side=side, dtype=torch.long)
    ones = [torch.ones(len(r), dtype=torch.long) for r in rows]
    return {"input_ids": ids, "attention_mask": pad_rows(ones, 0, side=side)}


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a training batch: ``input_ids``, ``attention_mask``, ``labels``, each
    ``[batch, seq]`` (labels padded with :data:`IGNORE`).

    VLM extras: per-token ones (``Encoded.seq_keys``) are padded with 0 to ``[batch, seq]``;
    the others (``pixel_values`` etc.) are concatenated along dim 0 over the examples that
    have them, in batch order, as the processor would for a batch.

    Raises:
        ValueError: the pixel tensors of two examples cannot be concatenated.
    """
    out = pad_ids([e.input_ids for e in batch], pad_id)
    width = out["input_ids"].shape[1]
    out["labels"] = pad_rows([e.labels for e in batch], IGNORE, width=width)
    seq_keys = {k for e in batch for k in e.seq_keys}
    for key in sorted(seq_keys):
        dtype = next(e.extras[key].dtype for e in batch if key in e.extras)
        rows = [e.extras.get(key, torch.zeros(0, dtype=dtype)) for e in batch]
        out[key] = pad_rows(rows, 0, width=width, dtype=dtype)
    other = sorted({k for e in batch for k in e.extras} - seq_keys)
    for key in other:
        out[key] = _concat(key, [e.extras[key] for e in batch if key in e.extras])
    return out


def _concat(key: str, parts: list[torch.Tensor]) -> torch.Tensor:
    try:
        return torch.cat(parts)
    except RuntimeError as err:
        shapes = [tuple(p.shape) for p in parts]
        raise ValueError(f"cannot batch {key} of shapes {shapes}: {err}") from None


#: Per-token keys of a model-input dict (padded by :func:`collate_inputs`).
SEQ_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


def collate_inputs(
    items: Sequence[Mapping[str, torch.Tensor]], pad_id: int, side: str
) -> dict[str, torch.Tensor]:
    """Batch per-example model inputs (each ``[1, seq_i]``, e.g. from
    :func:`steerlab.eval.sampling.encode_prompts`) into ``[batch, max_seq]``, padded on
    ``side`` (``"left"`` for generation, ``"right"`` for scoring).

    The keys are the first item's. Per-token keys (:data:`SEQ_KEYS`) are padded with
    ``pad_id`` for ``input_ids`` and 0 elsewhere; other tensors (pixels, grids) are
    concatenated along dim 0.
    """
    width = max(int(it["input_ids"].shape[1]) for it in items)
    out: dict[str, torch.Tensor] = {}
    for key in items[0]:
        tensors = [it[key] for it in items if key in it]
        if key in SEQ_KEYS:
            fill = pad_id if key == "input_ids" else 0
            out[key] = pad_rows([t[0] for t in tensors], fill, side=side, width=width)
        elif isinstance(tensors[0], torch.Tensor):
            out[key] = torch.cat(tensors, dim=0)
    return out


def append_response(
    enc: dict[str, torch.Tensor], response_ids: list[int]
) -> dict[str, torch.Tensor]:
    """An encoded prompt (``[1, seq]`` tensors) with ``response_ids`` appended: the response
    is attended to, and its token-type ids (where the model has them) are 0 (text).

    Returns:
        a new dict; ``input_ids`` etc. are ``[1, seq + len(response_ids)]``.
    """
    ids = torch.tensor([response_ids], dtype=torch.long)
    out = dict(enc)
    out["input_ids"] = torch.cat([enc["input_ids"], ids], dim=1)
    out["attention_mask"] = torch.cat([enc["attention_mask"], torch.ones_like(ids)], dim=1)
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in enc:
            out[key] = torch.cat([enc[key], torch.zeros_like(ids)], dim=1)
    return out
