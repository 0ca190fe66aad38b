"""Recording activations at hook points: in memory, or streamed to disk in shards."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from steerlab.hooks.names import HookName, check_layer
from steerlab.hooks.positions import CallContext, PositionSpec
from steerlab.hooks.store import ActivationStore, ShardWriter


def _is_layer(key: object) -> bool:
    try:
        check_layer(key)
    except TypeError:
        return False
    return True


class Activations(Mapping):
    """``rec.activations[key]`` → ``[n_tokens, d_model]``.

    ``key`` is a :class:`HookName` or anything :meth:`HookName.parse` reads: a
    ``(layer, point)`` tuple, ``"blocks.6.hook_resid_post"``, or a bare layer (when one hook
    point was recorded). Negative layers count from the end. Iterating yields ``HookName``s.
    """

    def __init__(self, rec: Recording) -> None:
        self._rec = rec

    def _key(self, key: HookName | tuple[int, str] | int | str) -> HookName:
        rec = self._rec
        bare = not isinstance(key, (str, tuple, list))
        if bare and len(rec.points) != 1 and _is_layer(key):
            layer = rec._layout_index(key)
            raise KeyError(
                f"recorded points {rec.points}: index with (layer, point), e.g. ({layer}, "
                f"{rec.points[0]!r})"
            )
        try:
            name = HookName.parse(key, point=rec.points[0])
        except (TypeError, ValueError) as err:
            raise KeyError(
                "index activations with a layer int or a (layer, point) tuple, or a hook name "
                f"such as {str(rec.keys[0])!r}, got {key!r} ({err}); recorded: {rec._shown()}"
            ) from None
        name = HookName(rec._layout_index(name.layer), name.point)
        if name not in rec._chunks:
            raise KeyError(f"{name} was not recorded; recorded: {rec._shown()}")
        return name

    def __getitem__(self, key: HookName | tuple[int, str] | int | str) -> torch.Tensor:
        key = self._key(key)
        rec = self._rec
        if rec.store_dir is not None:
            return ActivationStore(rec.store_dir).load(key)
        chunks = rec._chunks[key]
        if len(chunks) != 1:
            merged = torch.cat(chunks) if chunks else torch.empty(0, rec.d_model, dtype=rec.dtype)
            rec._chunks[key] = [merged]
        return rec._chunks[key][0]

    def __iter__(self) -> Iterator[HookName]:
        return iter(self._rec.keys)

    def __len__(self) -> int:
        return len(self._rec.keys)


class Recording:
    """What ``lab.record(...)`` yields. Collects activations at :class:`HookName` keys.

    Attributes:
        keys: the recorded :class:`HookName`s (layers resolved to non-negative indices).
        activations: mapping :class:`HookName` → ``[n_tokens, d_model]``; indexing also
            takes ``(layer, point)``, ``"blocks.6.hook_resid_post"`` or a bare layer.
        example_index: ``[n_tokens]`` index of each token's example, counted across every
            forward / ``generate`` call in the block.
        position: ``[n_tokens]`` absolute position of each token in its example (padding
            excluded, so identical under left or right padding).
        store: an :class:`ActivationStore` when streaming to disk (after the block exits).
    """

    def __init__(
        self,
        keys: list[HookName],
        points: tuple[str, ...],
        positions: PositionSpec,
        *,
        d_model: int,
        layout_index,
        dtype: torch.dtype | None,
        device: str | torch.device | None,
        response_start: torch.Tensor | None,
        to_disk: str | Path | None,
        shard_bytes: int,
    ) -> None:
        self.keys = keys
        self.points = points
        self.positions = positions
        self.d_model = d_model
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None
        self.response_start = response_start
        self._layout_index = layout_index
        self._chunks: dict[HookName, list[torch.Tensor]] = {k: [] for k in keys}
        self._tensor_names = {k: str(k) for k in keys}  # once, not per forward call
        self._meta: dict[str, list[torch.Tensor]] = {"example_index": [], "position": []}
        self._pending: dict[HookName, torch.Tensor] = {}
        self._pending_meta: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending_ctx: CallContext | None = None
        self.store_dir = Path(to_disk) if to_disk is not None else None
        self._writer = ShardWriter(self.store_dir, shard_bytes) if to_disk is not None else None
        self.activations = Activations(self)
        self.n_tokens = 0
        self.example_base = 0
        self._stored_dtype: torch.dtype | None = None

    def _shown(self) -> list[str]:
        return list(self._tensor_names.values())

    # -- called from hooks -------------------------------------------------------------
    def capture(self, key: HookName, h: torch.Tensor, ctx: CallContext | None) -> None:
        if ctx is None:
            raise RuntimeError("recording needs the model's root forward to run")
        if ctx.batch != h.shape[0] or ctx.seq != h.shape[1]:
            raise RuntimeError(
                f"hooked activation {key} has shape {tuple(h.shape)} but the model was called "
                f"with [batch={ctx.batch}, seq={ctx.seq}] tokens"
            )
        if self._pending_ctx is not ctx:
            self._pending.clear()
            self._pending_ctx = ctx
            mask = ctx.mask(
                self.positions,
                record=True,
                response_start=self.response_start,
                example_base=self.example_base,
            )
            flat = mask.reshape(-1).nonzero().squeeze(1)
            self._flat = flat
            self._flat_dev = {}
            self._pending_meta = (
                (ctx.example_index - self.example_base)
                .unsqueeze(1)
                .expand(-1, ctx.seq)
                .reshape(-1)[flat],
                ctx.position.reshape(-1)[flat],
            )
        idx = self._flat_dev.get(h.device)
        if idx is None:
            idx = self._flat_dev[h.device] = self._flat.to(h.device)
        sel = h.detach().reshape(-1, h.shape[-1]).index_select(0, idx)
        if self.device is not None or self.dtype is not None:
            sel = sel.to(device=self.device, dtype=self.dtype)
        self._pending[key] = sel

    def commit(self, ok: bool) -> None:
        """End of a root forward call: keep the call's tokens.

        Raises:
            RuntimeError: the call finished but a recorded hook point never fired in it
                (never a silently empty recording).
        """
        pending, meta = dict(self._pending), self._pending_meta
        self._pending.clear()
        self._pending_ctx = None
        self._pending_meta = None
        if not ok:
            return
        if meta is None or len(pending) != len(self.keys):
            missing = ", ".join(str(k) for k in self.keys if k not in pending)
            raise RuntimeError(
                f"hook points [{missing}] did not fire during a forward pass of the model, so "
                "nothing could be recorded there: the hooked module was never called"
            )
        n = int(meta[0].shape[0])
        if n == 0:
            return
        self.n_tokens += n
        self._stored_dtype = next(iter(pending.values())).dtype
        if self._writer is not None:
            tensors = {self._tensor_names[k]: v.cpu() for k, v in pending.items()}
            tensors["example_index"], tensors["position"] = meta
            self._writer.append(tensors)
            return
        for k, v in pending.items():
            self._chunks[k].append(v)
        self._meta["example_index"].append(meta[0])
        self._meta["position"].append(meta[1])

    def close(self, ok: bool = True) -> None:
        """Flush the last shard and write the manifest; after an error, write nothing more
        (the complete shards already on disk stay readable, the store reads as incomplete)."""
        if self._writer is not None and ok:
            dtype = self._stored_dtype or self.dtype or torch.float32
            self._writer.close(self.keys, self.d_model, dtype, {"positions": str(self.positions)})

    # -- results ------------------------------------------------------------------------
    def _meta_tensor(self, name: str) -> torch.Tensor:
        if self.store_dir is not None:
            return ActivationStore(self.store_dir).load(name)
        parts = self._meta[name]
        if len(parts) != 1:
            self._meta[name] = [torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)]
        return self._meta[name][0]

    @property
    def example_index(self) -> torch.Tensor:
        return self._meta_tensor("example_index")

    @property
    def position(self) -> torch.Tensor:
        return self._meta_tensor("position")

    @property
    def store(self) -> ActivationStore:
        if self.store_dir is None:
            raise ValueError("this recording was kept in memory; pass to_disk= to stream")
        return ActivationStore(self.store_dir)
