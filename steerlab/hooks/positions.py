"""Which token positions a hook acts on, tracked correctly across ``generate()`` and the KV cache.

A forward call under the KV cache sees only its new tokens (``[batch, 1, d_model]`` per
decoding step), so "the prompt", "the generated tokens" or "the last token" cannot be read off
one call's tensor. :class:`SequenceTracker` watches the calls into the model's root module and
gives each call a :class:`CallContext`: for every token of the call, its example index, its
index in the padded sequence, its absolute position (count of real tokens before it in its
example), and whether it is padding, prompt, or generated.

Generation state is never inferred from keyword names of internal layers or from token
content: ``generate()`` is wrapped while tracking so its boundaries are known, the past
length is read from whatever ``transformers.Cache`` object the call carries (found by type),
and padding comes from the 2-D attention mask (inside ``generate()``, the mask it was given,
extended by the generated tokens, so static caches and 4-D masks need no special case).

Position specs (``positions=``):

- ``"all"``: every token (recording skips padding);
- ``"prompt"``: tokens of the input the sequence started with;
- ``"generated"``: for steering, the last prompt token and everything after it (the last
  prompt token's output predicts the first new token, so starting there steers every new
  token, the first included); for recording, the generated tokens themselves;
- ``"last"``: the last non-padding token of each prompt (left or right padding);
- ``"response"``: tokens at absolute position ``>= response_start[example]``;
- a boolean mask ``[batch, seq]`` over the padded prompt; tokens past its end are excluded.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

PositionSpec = str | torch.Tensor
_NAMED = ("all", "prompt", "generated", "last", "response")


def check_positions(positions: PositionSpec, *, allowed: Sequence[str] = _NAMED) -> None:
    """Validate a position spec.

    Raises:
        ValueError: unknown name or a mask that is not 2-D.
        TypeError: neither a string nor a tensor.
    """
    if isinstance(positions, str):
        if positions not in allowed:
            raise ValueError(f"positions={positions!r}: expected one of {tuple(allowed)} or a mask")
    elif isinstance(positions, torch.Tensor):
        if positions.ndim != 2 or positions.dtype != torch.bool:
            raise ValueError(
                "positions mask must be a bool tensor [batch, seq], "
                f"got {positions.dtype} of shape {tuple(positions.shape)}"
            )
    else:
        raise TypeError(f"positions must be a str or a bool tensor, got {type(positions).__name__}")


@dataclass
class CallContext:
    """Token bookkeeping for one forward call into the model root.

    All tensors are ``[batch, seq]`` for the tokens *of this call*.

    Attributes:
        batch, seq: shape of this call's tokens.
        offset: padded index of this call's first token (the KV-cache past length).
        prompt_len: padded length of the prompt this sequence started with.
        example_index: ``[batch]`` global example index (runs across calls of one record block).
        real: non-padding tokens.
        position: absolute position of each token within its example (padding excluded).
        last_prompt: padded index ``[batch]`` of each example's last real prompt token.
        fresh: tokens no earlier call of this sequence has seen (False only for the
            recomputed prefix of a ``use_cache=False`` generation step).
    """

    batch: int
    seq: int
    offset: int
    prompt_len: int
    example_index: torch.Tensor
    real: torch.Tensor
    position: torch.Tensor
    last_prompt: torch.Tensor
    fresh: torch.Tensor
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def padded_index(self) -> torch.Tensor:
        """``[seq]`` padded index of each token of this call."""
        key = "padded_index"
        if key not in self._cache:
            self._cache[key] = torch.arange(self.offset, self.offset + self.seq)
        return self._cache[key]

    def mask(
        self,
        positions: PositionSpec,
        *,
        record: bool,
        response_start: torch.Tensor | None = None,
        example_base: int = 0,
    ) -> torch.Tensor:
        """Boolean ``[batch, seq]`` selection for a position spec (cached per call).

        ``record=True`` also drops padding and tokens already recorded in this sequence.
        """
        key = (
            id(positions) if isinstance(positions, torch.Tensor) else positions,
            record,
            id(response_start),
            example_base,
        )
        if key in self._cache:
            return self._cache[key]
        idx = self.padded_index.unsqueeze(0)  # [1, seq]
        if isinstance(positions, torch.Tensor):
            m = torch.zeros(self.batch, self.seq, dtype=torch.bool)
            if positions.shape[0] != self.batch:
                raise ValueError(
                    f"positions mask has batch {positions.shape[0]}, but the model was called "
                    f"with batch {self.batch}"
                )
            inside = idx[0] < positions.shape[1]
            m[:, inside] = positions[:, idx[0][inside]].cpu()
        elif positions == "all":
            m = torch.ones(self.batch, self.seq, dtype=torch.bool)
        elif positions == "prompt":
            m = (idx < self.prompt_len).expand(self.batch, -1)
        elif positions == "generated":
            if record:
                m = (idx >= self.prompt_len).expand(self.batch, -1)
            else:
                m = (idx >= self.prompt_len) | (idx == self.last_prompt.unsqueeze(1))
        elif positions == "last":
            m = idx == self.last_prompt.unsqueeze(1)
        elif positions == "response":
            if response_start is None:
                raise ValueError('positions="response" needs response_start= (one per example)')
            n = len(response_start)
            examples = self.example_index - example_base
            if int(examples.max()) >= n:
                raise ValueError(
                    f"response_start has {n} entries but example {int(examples.max())} was "
                    "seen; give one start per example"
                )
            starts = response_start[examples].unsqueeze(1)
            m = self.position >= starts
        else:  # pragma: no cover - validated by check_positions
            raise ValueError(f"unknown positions {positions!r}")
        if record:
            m = m & self.real & self.fresh
        m = m.contiguous()
        self._cache[key] = m
        return m


def _find_cache(args: tuple, kwargs: dict) -> Any | None:
    """The KV cache a call carries, found by type (``transformers.Cache``), never by name."""
    try:
        # lazy: `import steerlab` does not load transformers (slow)
        from transformers.cache_utils import Cache
    except ImportError:  # pragma: no cover
        return None
    for value in list(kwargs.values()) + list(args):
        if isinstance(value, Cache):
            return value
    return None


def _past_length(cache: Any) -> int:
    if cache is None:
        return 0
    try:
        return int(cache.get_seq_length())
    except Exception:  # an empty cache of some kinds raises before its first update
        return 0


def _cache_in_output(output: Any) -> Any | None:
    if isinstance(output, dict):  # ModelOutput is a dict
        values = list(output.values())
    elif isinstance(output, (tuple, list)):
        values = list(output)
    else:
        return None
    return _find_cache(tuple(values), {})


class SequenceTracker:
    """Follows the sequences that flow through the root module, call by call.

    A call starts a new sequence unless it is a decoding step of a running ``generate()``
    (the lab wraps ``generate`` while tracking, so its boundaries are known), or it carries
    the very KV-cache object the previous call returned or used, holding exactly the
    tokens seen so far (a hand-written decoding loop). Token content is never used to guess.
    """

    def __init__(self) -> None:
        self.examples_seen = 0
        self.current: CallContext | None = None
        self.in_generate = 0
        self._expect_prompt = True
        self._gen_mask: torch.Tensor | None = None
        self._batch = 0
        self._total = 0
        self._cache_ref: weakref.ref | None = None
        self._seq_start_example = 0
        self._prompt_len = 0
        self._last_prompt: torch.Tensor | None = None
        self._mask_so_far: torch.Tensor | None = None

    # -- generate() boundaries -----------------------------------------------------------
    def generate_started(self, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        ok = isinstance(mask, torch.Tensor) and mask.ndim == 2
        self._gen_mask = mask.detach().to("cpu", torch.bool) if ok else None
        self.in_generate += 1
        self._expect_prompt = True

    def generate_ended(self) -> None:
        self.in_generate = max(0, self.in_generate - 1)
        self._expect_prompt = True
        self._cache_ref = None

    # -- forward calls --------------------------------------------------------------------
    def _padding(self, kwargs: dict, batch: int, total: int, continuing: bool) -> torch.Tensor:
        """``[batch, total]`` real-token mask of the sequence so far."""
        attn = kwargs.get("attention_mask")
        if (
            isinstance(attn, torch.Tensor)
            and attn.ndim == 2
            and tuple(attn.shape) == (batch, total)
        ):
            return attn.detach().to("cpu", torch.bool)
        base = None
        if self.in_generate and self._gen_mask is not None:
            base = self._gen_mask
        elif continuing and self._mask_so_far is not None:
            base = self._mask_so_far
        if base is not None and batch % base.shape[0] == 0 and base.shape[1] <= total:
            base = base.repeat_interleave(batch // base.shape[0], dim=0)
            extra = torch.ones(batch, total - base.shape[1], dtype=torch.bool)
            return torch.cat([base, extra], dim=1)
        return torch.ones(batch, total, dtype=torch.bool)

    def begin(self, args: tuple, kwargs: dict) -> CallContext | None:
        """Build the context of a root forward call from its inputs."""
        input_ids = kwargs.get("input_ids")
        if input_ids is None:  # positional, or TransformerLens's ``input``
            first = args[0] if args else kwargs.get("input")
            input_ids = first if isinstance(first, torch.Tensor) else None
        embeds = kwargs.get("inputs_embeds")
        ref = input_ids if isinstance(input_ids, torch.Tensor) else embeds
        if not isinstance(ref, torch.Tensor) or ref.ndim < 2:
            self.current = None
            return None
        batch, seq = int(ref.shape[0]), int(ref.shape[1])
        cache = _find_cache(args, kwargs)
        past = _past_length(cache)

        fresh_from = 0
        same_cache = (
            cache is not None and self._cache_ref is not None and self._cache_ref() is cache
        )
        if self.in_generate and not self._expect_prompt and batch == self._batch:
            continuing = True  # a decoding step of the running generate()
            if past == 0 and seq > self._total:
                offset, fresh_from = 0, self._total  # use_cache=False: full recompute
            else:
                offset = past if past else self._total  # HF cache, or a model's own cache
        elif same_cache and past == self._total and past > 0 and batch == self._batch:
            continuing, offset = True, past  # hand-written decoding loop on one cache
        else:
            continuing, offset = False, past  # new sequence (maybe on a prefilled cache)
        self._expect_prompt = False
        total = offset + seq
        full_mask = self._padding(kwargs, batch, total, continuing)

        if not continuing:
            self._seq_start_example = self.examples_seen
            self.examples_seen += batch
            self._batch = batch
            self._prompt_len = total
            idx = torch.arange(total)
            self._last_prompt = torch.where(
                full_mask.any(1),
                (full_mask.long() * idx).argmax(1),
                torch.full((batch,), total - 1),
            )
        self._total = total
        self._mask_so_far = full_mask
        self._cache_ref = weakref.ref(cache) if cache is not None else None

        position_full = full_mask.long().cumsum(1) - 1
        sl = slice(offset, total)
        fresh = torch.ones(batch, seq, dtype=torch.bool)
        if fresh_from:
            fresh[:, : max(0, fresh_from - offset)] = False
        ctx = CallContext(
            batch=batch,
            seq=seq,
            offset=offset,
            prompt_len=self._prompt_len,
            example_index=torch.arange(batch) + self._seq_start_example,
            real=full_mask[:, sl].contiguous(),
            position=position_full[:, sl].clamp_min(0),
            last_prompt=self._last_prompt,
            fresh=fresh,
        )
        self.current = ctx
        return ctx

    def end(self, output: Any = None) -> None:
        """End of a root call: remember the cache it returned, for hand-written loops."""
        cache = _cache_in_output(output)
        if cache is not None:
            self._cache_ref = weakref.ref(cache)
        self.current = None
