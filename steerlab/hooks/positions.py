"""Which token positions a hook acts on, tracked correctly across ``generate()`` and the KV cache.

A forward call under the KV cache sees only its new tokens (``[batch, 1, d_model]`` per
decoding step), so "the prompt", "the generated tokens" or "the last token" cannot be read off
one call's tensor. :class:`SequenceTracker` watches the calls into the model's root module and
gives each call a :class:`CallContext`: for every token of the call, its example index, its
index in the padded sequence, its absolute position (count of real tokens before it in its
example), and whether it is padding, prompt, or generated.

Generation state is never inferred from keyword names of internal layers: the past length is
read from whatever ``transformers.Cache`` object the call carries (found by type), and a call
without a cache that extends the previous call's ``input_ids`` (``generate(use_cache=False)``)
is recognised by content.

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


class SequenceTracker:
    """Follows the sequences that flow through the root module, call by call."""

    def __init__(self) -> None:
        self.examples_seen = 0
        self.current: CallContext | None = None
        self._seq_ids: torch.Tensor | None = None
        self._seq_start_example = 0
        self._prompt_len = 0
        self._last_prompt: torch.Tensor | None = None
        self._batch = 0

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
        past = _past_length(_find_cache(args, kwargs))
        attn = kwargs.get("attention_mask")
        if isinstance(attn, torch.Tensor) and attn.ndim == 2 and attn.shape[0] == batch:
            full_mask = attn.detach().to("cpu", torch.bool)
            if full_mask.shape[1] != past + seq:
                # A mask covering only this call's tokens (some callers pass that).
                if full_mask.shape[1] == seq and past == 0:
                    pass
                else:
                    full_mask = torch.ones(batch, past + seq, dtype=torch.bool)
        else:
            full_mask = torch.ones(batch, past + seq, dtype=torch.bool)
        ids_cpu = input_ids.detach().cpu() if isinstance(input_ids, torch.Tensor) else None

        fresh_from = 0
        continuing = past > 0 and batch == self._batch and self._last_prompt is not None
        if (
            not continuing
            and past == 0
            and ids_cpu is not None
            and self._seq_ids is not None
            and batch == self._batch
            and seq > self._seq_ids.shape[1]
            and torch.equal(ids_cpu[:, : self._seq_ids.shape[1]], self._seq_ids)
        ):
            continuing = True  # generate(use_cache=False): same prefix, longer sequence
            fresh_from = self._seq_ids.shape[1]
        if not continuing:
            self._seq_start_example = self.examples_seen
            self.examples_seen += batch
            self._batch = batch
            self._prompt_len = past + seq
            prompt_real = full_mask[:, : past + seq]
            last = torch.where(
                prompt_real.any(1),
                (prompt_real.long() * torch.arange(past + seq)).argmax(1),
                torch.full((batch,), past + seq - 1),
            )
            self._last_prompt = last
            self._seq_ids = ids_cpu
        elif ids_cpu is not None and past > 0 and self._seq_ids is not None:
            self._seq_ids = torch.cat([self._seq_ids, ids_cpu], dim=1)
        elif ids_cpu is not None and fresh_from:
            self._seq_ids = ids_cpu
        else:
            self._seq_ids = None

        position_full = full_mask.long().cumsum(1) - 1
        sl = slice(past, past + seq)
        fresh = torch.ones(batch, seq, dtype=torch.bool)
        if fresh_from:
            fresh[:, : max(0, fresh_from - past)] = False
        ctx = CallContext(
            batch=batch,
            seq=seq,
            offset=past,
            prompt_len=self._prompt_len,
            example_index=torch.arange(batch) + self._seq_start_example,
            real=full_mask[:, sl].contiguous(),
            position=position_full[:, sl].clamp_min(0),
            last_prompt=self._last_prompt,
            fresh=fresh,
        )
        self.current = ctx
        return ctx

    def end(self) -> None:
        self.current = None
