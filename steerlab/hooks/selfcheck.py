"""The one-time self-check: do a model's hook points mean what their names say?

Run once per model (cached on the model) on a 1x4-token input, with temporary hooks, in
eval mode and without gradients. It checks, in this order:

1. every decoder block runs exactly once, and no block list lies inside another block;
2. every block's input and output is ``[batch, seq, d_model]`` (several residual streams per
   token, e.g. hyper-connections' ``[batch, seq, n_streams, d_model]``, are refused);
3. block ``i + 1`` receives exactly what block ``i`` returns, and the last block's output is
   what a module after the decoder (the final norm, or the output head) receives: the block
   list carries the residual stream from end to end;
4. the attention and MLP sub-layer modules run once per block with ``[batch, seq, d_model]``
   outputs, and the residual identity ``resid_post == resid_pre + attn_out + mlp_out`` holds
   to float precision in every block.

Failing 1-3 refuses every hook point; failing 4 refuses ``attn_out`` and ``mlp_out`` (a scaled
residual add, a norm after the add, a sub-module that adds the residual itself, or a parallel
branch the two hooks miss all break the identity). Weight orthogonalization further needs
each sub-layer's output to be its output projection's (through Gemma's post-norm), and the
first block's input to be a multiple of the embeddings' sum.

Cost: one forward pass on 4 tokens, plus a hook per module outside the blocks. On
SmolLM2-135M (CPU) it takes tens of milliseconds; on a 4B model it is one 4-token forward.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from steerlab.hooks.layers import ModelLayout

SUBLAYER_POINTS = ("attn_out", "mlp_out")
ALL_POINTS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[str, Verdict]] = weakref.WeakKeyDictionary()
_running = 0


def running() -> bool:
    """True while a self-check forward runs: steerlab's own hooks then pass through."""
    return _running > 0


@dataclass
class Verdict:
    """What the self-check found.

    Attributes:
        refused: hook point -> why it is refused (absent points are offered).
        orthogonalize: why :func:`orthogonalize_weights` is refused, or ``None``.
        post_norm: the sub-layer outputs pass through a norm after the output projection
            (Gemma 2/3); orthogonalization then is not identical to runtime ablation.
        seconds: wall time of the check.
    """

    refused: dict[str, str] = field(default_factory=dict)
    orthogonalize: str | None = None
    post_norm: bool = False
    seconds: float = 0.0


class _Probe:
    """Forward hooks that collect what each watched module received and returned."""

    def __init__(self) -> None:
        self.inputs: dict[str, list[Any]] = {}
        self.outputs: dict[str, list[Any]] = {}
        self.handles: list[Any] = []

    def watch_input(self, name: str, module: nn.Module) -> None:
        store = self.inputs.setdefault(name, [])

        def pre(mod: nn.Module, args: tuple, kwargs: dict) -> None:
            store.append(args[0] if args else kwargs.get("hidden_states"))

        self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))

    def watch_output(self, name: str, module: nn.Module) -> None:
        store = self.outputs.setdefault(name, [])

        def post(mod: nn.Module, args: tuple, output: Any) -> None:
            store.append(first_tensor(output))

        self.handles.append(module.register_forward_hook(post))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def verdict(layout: ModelLayout) -> Verdict:
    """The (cached) self-check verdict for ``layout``'s model."""
    per_model = _CACHE.setdefault(layout.root, {})
    key = layout.blocks_path
    if key not in per_model:
        start = time.perf_counter()
        result = _check(layout)
        result.seconds = time.perf_counter() - start
        per_model[key] = result
    return per_model[key]


def _refuse_all(reason: str) -> Verdict:
    return Verdict(refused=dict.fromkeys(ALL_POINTS, reason), orthogonalize=reason)


def _check(layout: ModelLayout) -> Verdict:
    nested = _nested_path(layout)
    if nested is not None:
        return _refuse_all(
            f"the block list {layout.blocks_path!r} lies inside the block list {nested!r}, so "
            "it is not the decoder's stack of residual blocks"
        )
    probe = _Probe()
    sites: dict[tuple[int, str], str | None] = {}
    try:
        _watch(layout, probe, sites)
        outputs = _run(layout)
    except Exception as exc:
        return _refuse_all(f"the self-check forward pass failed ({type(exc).__name__}: {exc})")
    finally:
        probe.remove()
    reason = _blocks_reason(layout, probe, outputs)
    if reason is not None:
        return _refuse_all(reason)
    result = Verdict()
    reason = _identity_reason(layout, probe, sites)
    if reason is not None:
        result.refused = dict.fromkeys(SUBLAYER_POINTS, reason)
        result.orthogonalize = f"attn_out and mlp_out are refused: {reason}"
        return result
    result.orthogonalize = _writer_reason(layout, probe)
    if result.orthogonalize is None:
        result.post_norm = any(layout.writer_path(0, p)[1] is not None for p in SUBLAYER_POINTS)
    return result


def _nested_path(layout: ModelLayout) -> str | None:
    parts = layout.blocks_path.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        module = layout.root.get_submodule(prefix)
        if isinstance(module, (nn.ModuleList, nn.Sequential)):
            return prefix
    return None


def _watch(layout: ModelLayout, probe: _Probe, sites: dict) -> None:
    inside = {id(m) for block in layout.blocks for m in block.modules()}
    ancestors = {id(layout.root)}
    parts = layout.blocks_path.split(".")
    for i in range(1, len(parts) + 1):
        ancestors.add(id(layout.root.get_submodule(".".join(parts[:i]))))
    for name, module in layout.root.named_modules():
        if id(module) not in inside and id(module) not in ancestors:
            probe.watch_input(f"after:{name}", module)
    for i, block in enumerate(layout.blocks):
        probe.watch_input(f"pre:{i}", block)
        probe.watch_output(f"post:{i}", block)
        for point in SUBLAYER_POINTS:
            try:
                site = layout.raw_site(i, point)
            except Exception as exc:
                sites[(i, point)] = str(exc)
                continue
            sites[(i, point)] = None
            probe.watch_output(f"{point}:{i}", site.module)
            try:
                linear, norm = layout.writer_path(i, point)
            except Exception:
                continue
            probe.watch_output(f"writer:{point}:{i}", linear)
            if norm is not None:
                probe.watch_input(f"norm:{point}:{i}", norm)
    for name, module in layout.embeddings():
        probe.watch_output(f"embed:{name}", module)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _run(layout: ModelLayout) -> Any:
    global _running
    root = layout.root
    vocab = _vocab(layout)
    param = next(root.parameters())
    ids = (torch.tensor([[5, 9, 3, 7]]) % vocab).to(param.device)
    mask = torch.ones_like(ids)
    _running += 1
    try:
        with torch.no_grad(), _eval_mode(root):
            try:
                return root(input_ids=ids, attention_mask=mask, use_cache=False)
            except TypeError:
                return root(input_ids=ids)
    finally:
        _running -= 1


def _vocab(layout: ModelLayout) -> int:
    embed = getattr(layout.embed, "base_layer", layout.embed)
    n = getattr(embed, "num_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else 16


def _flat(t: Any, seq: int = 4) -> torch.Tensor | None:
    if not isinstance(t, torch.Tensor):
        return None
    if t.ndim == 2 and t.shape[0] == seq:  # a sub-layer run on [batch * seq, d]
        t = t.unsqueeze(0)
    return t


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> tuple[bool, float]:
    a64, b64 = a.double(), b.double()
    scale = max(float(a64.abs().max()), float(b64.abs().max()), 1e-30)
    err = float((a64 - b64).abs().max()) / scale
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 1e-6
    return err <= 64 * eps, err


def _blocks_reason(layout: ModelLayout, probe: _Probe, outputs: Any) -> str | None:
    n, d = layout.num_layers, layout.d_model
    for i in range(n):
        pre, post = probe.inputs[f"pre:{i}"], probe.outputs[f"post:{i}"]
        if len(pre) != 1 or len(post) != 1:
            return (
                f"block {i} of {layout.blocks_path!r} ran {len(post)} times in one forward "
                "pass (expected once): the list is not a stack of residual blocks"
            )
        for what, t in (("input", pre[0]), ("output", post[0])):
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != (1, 4, d):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                return (
                    f"block {i}'s {what} is {shape}, not [batch, seq, d_model] = [1, 4, {d}] "
                    "(several residual streams per token, e.g. hyper-connections, or a "
                    "different stream layout)"
                )
        if i + 1 < n:
            nxt = probe.inputs[f"pre:{i + 1}"][0]
            if not _close(nxt, post[0], post[0].dtype)[0]:
                return (
                    f"block {i + 1} does not receive what block {i} returns: something "
                    f"between the blocks of {layout.blocks_path!r} changes the residual stream"
                )
    last = probe.outputs[f"post:{n - 1}"][0]
    received = [t for name, seen in probe.inputs.items() if name.startswith("after:") for t in seen]
    received.append(first_tensor(outputs) if not hasattr(outputs, "keys") else None)
    received.append(getattr(outputs, "last_hidden_state", None))  # a model without a head
    for t in received:
        same = isinstance(t, torch.Tensor) and t.shape == last.shape
        if same and (t is last or _close(t, last, last.dtype)[0]):
            return None
    return (
        f"the last block's output never reaches a module after {layout.blocks_path!r} (the "
        "final norm or the output head): the block list does not carry the residual stream "
        "to the end of the model"
    )


def _identity_reason(layout: ModelLayout, probe: _Probe, sites: dict) -> str | None:
    for i in range(layout.num_layers):
        pre = probe.inputs[f"pre:{i}"][0]
        post = probe.outputs[f"post:{i}"][0]
        total = pre.double()
        for point in SUBLAYER_POINTS:
            missing = sites.get((i, point))
            if missing is not None:
                return missing
            seen = probe.outputs.get(f"{point}:{i}", [])
            if len(seen) != 1:
                return (
                    f"the {point} module of block {i} ran {len(seen)} times in one forward "
                    "pass (expected once)"
                )
            out = _flat(seen[0])
            if out is None or tuple(out.shape) != tuple(pre.shape):
                shape = tuple(out.shape) if out is not None else type(seen[0]).__name__
                return (
                    f"the {point} module of block {i} returns {shape}, not [batch, seq, "
                    f"d_model] = {list(pre.shape)}"
                )
            total = total + out.double()
        ok, err = _close(post, total, post.dtype)
        if not ok:
            return (
                f"resid_post != resid_pre + attn_out + mlp_out in block {i} (relative error "
                f"{err:.2g}): the block scales its residual add, normalises after the add, "
                "has a sub-module that adds the residual itself, or has a branch that the "
                "attention and MLP hooks miss"
            )
    return None


def _writer_reason(layout: ModelLayout, probe: _Probe) -> str | None:
    for i in range(layout.num_layers):
        for point in SUBLAYER_POINTS:
            try:
                _, norm = layout.writer_path(i, point)
            except Exception as exc:
                return str(exc)
            written = probe.outputs.get(f"writer:{point}:{i}", [])
            out = _flat(probe.outputs[f"{point}:{i}"][0])
            if len(written) != 1:
                return f"the output projection of {point} in block {i} ran {len(written)} times"
            w = _flat(written[0])
            if norm is not None:  # Gemma 2/3: the projection feeds the post-norm
                out = _flat(probe.inputs[f"norm:{point}:{i}"][0])
            if w is None or w.shape != out.shape or not _close(w, out, out.dtype)[0]:
                return (
                    f"{point} of block {i} is not its output projection's output, so editing "
                    "that projection is not the same as ablating the sub-layer"
                )
    return _embedding_reason(layout, probe)


def _embedding_reason(layout: ModelLayout, probe: _Probe) -> str | None:
    first = probe.inputs["pre:0"][0].double().reshape(-1)
    parts = [_flat(t[0]) for name, t in probe.outputs.items() if name.startswith("embed:") and t]
    parts = [p.double().reshape(-1) for p in parts if p is not None and p.numel() == first.numel()]
    if not parts:
        return "no embedding of width d_model writes the first block's input"
    total = torch.stack(parts).sum(0)
    scale = float(first @ total) / max(float(total @ total), 1e-30)
    ok, err = _close(first, scale * total, probe.inputs["pre:0"][0].dtype)
    if not ok:
        return (
            "the first block's input is not a multiple of the embeddings' sum (relative error "
            f"{err:.2g}), so editing the embeddings does not remove the direction from it"
        )
    return None
