"""The math applied inside hooks: steering (adding a vector) and directional ablation.

Each intervention is a callable ``(h, ctx) -> h`` on a hook point's activation
``h: [batch, seq, d_model]``; ``ctx`` is the call's :class:`CallContext` (or ``None`` when the
intervention acts on all positions and needs no bookkeeping).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from steerlab.hooks.positions import CallContext, PositionSpec


def _cast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if t.dtype != like.dtype or t.device != like.device:
        t = t.to(device=like.device, dtype=like.dtype)
    return t


class _Cached:
    """Caches a tensor per (dtype, device) so a hook casts it once, not once per call."""

    def __init__(self, t: torch.Tensor) -> None:
        self.source = t
        self._by: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
        self._last = t

    def like(self, h: torch.Tensor) -> torch.Tensor:
        last = self._last
        if last.dtype is h.dtype and last.device == h.device:
            return last  # the common case: one dtype, one device
        key = (h.dtype, h.device)
        t = self._by.get(key)
        if t is None:
            t = self._by[key] = _cast(self.source, h)
        self._last = t
        return t


def _select(
    h: torch.Tensor, ctx: CallContext | None, positions: PositionSpec
) -> torch.Tensor | None:
    """``[batch, seq, 1]`` mask for ``positions`` (``None`` means all positions)."""
    if isinstance(positions, str) and positions == "all":
        return None
    if ctx is None:
        raise RuntimeError(
            f"positions={positions!r} needs the model's root forward to run (call the model, "
            "not a block directly)"
        )
    if ctx.batch != h.shape[0] or ctx.seq != h.shape[1]:
        raise RuntimeError(
            f"hooked activation has shape {tuple(h.shape)} but the model was called with "
            f"[batch={ctx.batch}, seq={ctx.seq}] tokens"
        )
    # Once per call and device, shared by every layer: None when every position is selected
    # (each decoding step under "generated"), so the hook takes the plain path.
    key = (
        "intervene",
        id(positions) if isinstance(positions, torch.Tensor) else positions,
        h.device,
    )
    cache = ctx._cache
    if key not in cache:
        m = ctx.mask(positions, record=False)
        cache[key] = None if bool(m.all()) else m.to(h.device).unsqueeze(-1)
    return cache[key]


@dataclass(eq=False)
class Steer:
    """``h ← h + coefficient · direction`` at the selected positions (Turner et al. 2023)."""

    vector: torch.Tensor  # [d_model], already multiplied by the coefficient
    positions: PositionSpec = "all"

    def __post_init__(self) -> None:
        self._v = _Cached(self.vector)

    def __call__(self, h: torch.Tensor, ctx: CallContext | None) -> torch.Tensor:
        v = self._v.like(h)
        mask = _select(h, ctx, self.positions)
        if mask is None:
            return h + v
        return torch.where(mask, h + v, h)


@dataclass(eq=False)
class Ablate:
    """Directional ablation ``h ← h − (h − μ) Qᵀ Q`` (Arditi et al. 2024).

    ``basis`` is ``[k, d_model]`` with orthonormal rows. ``mean`` (``[d_model]``) gives mean
    ablation: the component in the subspace is replaced by the mean's; ``None`` zeroes it.
    """

    basis: torch.Tensor
    mean: torch.Tensor | None = None
    positions: PositionSpec = "all"

    def __post_init__(self) -> None:
        self._q = _Cached(self.basis)
        self._mu = None
        if self.mean is not None:
            # Keep only the mean's in-subspace part: (mu Q^T) Q, precomputed in float64.
            q = self.basis.double()
            self._mu = _Cached(((self.mean.double() @ q.T) @ q).to(self.basis.dtype))

    def __call__(self, h: torch.Tensor, ctx: CallContext | None) -> torch.Tensor:
        q = self._q.like(h)
        out = h - (h @ q.T) @ q
        if self._mu is not None:
            out = out + self._mu.like(h)
        mask = _select(h, ctx, self.positions)
        if mask is None:
            return out
        return torch.where(mask, out, h)
