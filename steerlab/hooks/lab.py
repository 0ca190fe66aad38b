"""``Lab``: the one object that puts hooks on a model, and takes every one of them off again."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from steerlab.hooks import selfcheck
from steerlab.hooks.interventions import Ablate, Steer
from steerlab.hooks.layers import HOOK_POINTS, HookSite, ModelLayout, find_layout
from steerlab.hooks.names import HookName, check_point
from steerlab.hooks.positions import PositionSpec, SequenceTracker, check_positions
from steerlab.hooks.record import Recording
from steerlab.linalg import as_rows, orthonormal_basis
from steerlab.vectors import SteeringVector, Subspace

Intervention = Callable[[torch.Tensor, Any], torch.Tensor]
LayerSpec = int | Sequence[int] | str | None


def _scalar(c: Any) -> float:
    if isinstance(c, torch.Tensor) and c.numel() == 1:
        return float(c)
    if isinstance(c, (int, float)) and not isinstance(c, bool):
        return float(c)
    raise TypeError(
        f"coefficient must be a number or {{layer: number}}, got {type(c).__name__} {c!r}"
    )


def _first(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find the hidden states in a {type(output).__name__} output")


def _replace_first(output: Any, h: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return h
    return type(output)((h, *output[1:])) if isinstance(output, tuple) else [h, *output[1:]]


class _Context:
    """What ``lab.record`` / ``lab.steer`` / ``lab.ablate`` return: a ``with``-block object
    that can be entered again after it exits (each entry installs its hooks afresh; a
    ``record`` yields a new :class:`Recording` each time)."""

    def __init__(self, name: str, open_: Callable[[], contextlib.AbstractContextManager]) -> None:
        self._name, self._open, self._active = name, open_, None

    def __enter__(self) -> Any:
        if self._active is not None:
            raise RuntimeError(
                f"this lab.{self._name}(...) block is already open; it can be entered again "
                f"after it exits, or call lab.{self._name}(...) again for a second one"
            )
        cm = self._open()
        value = cm.__enter__()
        self._active = cm
        return value

    def __exit__(self, *exc: Any) -> bool | None:
        cm, self._active = self._active, None
        return cm.__exit__(*exc)


def _reusable(fn: Callable[..., Iterator[Any]]) -> Callable[..., _Context]:
    """Like ``contextlib.contextmanager``, but the returned object can be re-entered."""
    make = contextlib.contextmanager(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _Context:
        return _Context(fn.__name__, lambda: make(*args, **kwargs))

    return wrapper


@dataclass(eq=False)
class _Slot:
    """Everything hooked at one hook point: interventions run first (in the order their
    contexts were entered), then recorders see the final activation."""

    key: HookName
    site: HookSite
    interventions: list[Intervention] = field(default_factory=list)
    recorders: list[Recording] = field(default_factory=list)
    handle: RemovableHandle | None = None

    def run(self, h: torch.Tensor, ctx: Any) -> torch.Tensor:
        flat = h.ndim == 2 and ctx is not None and h.shape[0] == ctx.batch * ctx.seq
        x = h.view(ctx.batch, ctx.seq, -1) if flat else h  # OPT's MLP runs on [b*s, d]
        for fn in self.interventions:
            x = fn(x, ctx)
        for rec in self.recorders:
            rec.capture(self.key, x, ctx)
        if flat:
            return h if x.data_ptr() == h.data_ptr() else x.reshape(h.shape)
        return x


class Lab:
    """Hooks on one model: recording, steering and ablation, each as a ``with`` block.

    Build it with :func:`steerlab.attach`. Every hook it adds is removed when its ``with``
    block exits (even on error) and by :meth:`detach`.

    Attributes:
        model: the model as given.
        layout: the decoder blocks and hook-point modules found (:class:`ModelLayout`).
    """

    def __init__(self, model: nn.Module, *, layers: str | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"attach expects a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layout: ModelLayout = find_layout(model, layers)
        self._slots: dict[HookName, _Slot] = {}
        self._tracker = SequenceTracker()
        self._ctx_users = 0
        self._root_handles: list[RemovableHandle] = []
        self._recordings: list[Recording] = []
        self._epoch = 0

    # -- description -------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Number of decoder blocks."""
        return self.layout.num_layers

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return self.layout.d_model

    @property
    def family(self) -> str:
        """The text model's ``model_type``, e.g. ``"llama"`` or ``"gemma3_text"``."""
        return self.layout.family

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def hook_points(self) -> tuple[str, ...]:
        """Hook points available on every block, named as in TransformerLens."""
        return self.layout.available_points(0)

    def hook_name(self, layer: int, point: str) -> str:
        """TransformerLens name of a hook point, e.g. ``blocks.3.hook_resid_post``.

        Raises:
            IndexError: layer out of range. ValueError / ArchitectureError: unknown point.
        """
        self.layout.site(layer, point)
        return str(HookName(self.layout.layer_index(layer), point))

    def __repr__(self) -> str:
        return (
            f"Lab({type(self.layout.root).__name__}, family={self.family!r}, "
            f"num_layers={self.num_layers}, d_model={self.d_model}, "
            f"decoder={self.layout.blocks_path!r})"
        )

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def detach(self) -> None:
        """Remove every hook this lab placed. The model is left exactly as it was."""
        for slot in self._slots.values():
            if slot.handle is not None:
                slot.handle.remove()
        self._slots.clear()
        for handle in self._root_handles:
            handle.remove()
        self._root_handles.clear()
        self._ctx_users = 0
        self._recordings.clear()
        self._epoch += 1  # contexts still open become no-ops on exit

    # -- slots and call tracking -------------------------------------------------------
    def _slot(self, layer: int, point: str) -> _Slot:
        key = HookName(layer, point)  # built when a context is entered, never per forward
        slot = self._slots.get(key)
        if slot is None:
            slot = _Slot(key, self.layout.site(layer, point))
            self._slots[key] = slot
        if slot.handle is None:
            slot.handle = self._register(slot)
        return slot

    def _register(self, slot: _Slot) -> RemovableHandle:
        lab = self
        if slot.site.mode == "output":

            def hook(module: nn.Module, args: Any, output: Any) -> Any:
                if selfcheck.running():
                    return None
                h = _first(output)
                new = slot.run(h, lab._tracker.current)
                return None if new is h else _replace_first(output, new)

            return slot.site.module.register_forward_hook(hook)

        def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> Any:
            if selfcheck.running():
                return None
            if args:
                new = slot.run(args[0], lab._tracker.current)
                return None if new is args[0] else ((new, *args[1:]), kwargs)
            h = kwargs["hidden_states"]
            new = slot.run(h, lab._tracker.current)
            return None if new is h else (args, {**kwargs, "hidden_states": new})

        return slot.site.module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def _release(self, slot: _Slot) -> None:
        if self._slots.get(slot.key) is not slot:
            return  # detached meanwhile
        if not slot.interventions and not slot.recorders and slot.handle is not None:
            slot.handle.remove()
            slot.handle = None
            self._slots.pop(slot.key, None)

    @contextlib.contextmanager
    def _tracking(self) -> Iterator[None]:
        if self._ctx_users == 0:
            tracker = self._tracker = SequenceTracker()
            root = self.layout.root

            def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
                if not selfcheck.running():
                    tracker.begin(args, kwargs)

            def post(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
                if selfcheck.running():
                    return
                for rec in self._recordings:
                    rec.commit(output is not None)
                tracker.end(output)

            self._root_handles = [
                root.register_forward_pre_hook(pre, with_kwargs=True),
                root.register_forward_hook(post, with_kwargs=True, always_call=True),
                _watch_generate(root, tracker),
            ]
        self._ctx_users += 1
        epoch = self._epoch
        try:
            yield
        finally:
            if epoch == self._epoch:
                self._ctx_users -= 1
            if epoch == self._epoch and self._ctx_users == 0:
                for handle in self._root_handles:
                    handle.remove()
                self._root_handles = []

    # -- argument handling ------------------------------------------------------------
    def _layers(self, layers: LayerSpec, default: Sequence[int] | None = None) -> list[int]:
        if layers is None:
            if default is None:
                raise ValueError("layers= is required here")
            layers = default
        if isinstance(layers, str):
            if layers != "all":
                raise ValueError(f"layers={layers!r}: expected an int, a list of ints or 'all'")
            return list(range(self.num_layers))
        if not isinstance(layers, (list, tuple, range, torch.Tensor)) and not hasattr(
            layers, "__iter__"
        ):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ValueError("layers is empty: give at least one layer, or 'all'")
        out = [self.layout.layer_index(layer) for layer in layers]
        if len(set(out)) != len(out):
            raise ValueError(f"layers {list(layers)} name the same layer twice")
        return out

    def _points(self, points: str | Sequence[str] | None, default: str) -> tuple[str, ...]:
        if points is None:
            points = default
        if isinstance(points, str):
            points = (points,)
        points = tuple(points)
        if not points:
            raise ValueError(f"no hook point given: expected one or more of {HOOK_POINTS}")
        return tuple(check_point(point) for point in points)

    def _check_d_model(self, d_model: int, what: str) -> None:
        if d_model != self.d_model:
            raise ValueError(
                f"{what} has d_model={d_model}, but the model's residual stream has "
                f"d_model={self.d_model} ({self.family}, {self.num_layers} layers)"
            )

    def _per_layer(
        self, tensors: dict[int, torch.Tensor], layers: LayerSpec, what: str
    ) -> dict[int, torch.Tensor]:
        """Map an object's per-layer tensors onto target layers (broadcasting a single one)."""
        given: dict[int, torch.Tensor] = {}
        for k, v in tensors.items():
            layer = self.layout.layer_index(k)
            if layer in given:
                raise ValueError(
                    f"{what} has two entries for layer {layer} (keys {sorted(tensors)} on a "
                    f"{self.num_layers}-layer model); combine them first"
                )
            given[layer] = v
        if layers is None:
            return given
        targets = self._layers(layers)
        if len(given) == 1:
            (only,) = given.values()
            return {layer: only for layer in targets}
        missing = [layer for layer in targets if layer not in given]
        if missing:
            raise ValueError(f"{what} has no entry for layers {missing}; it has {sorted(given)}")
        return {layer: given[layer] for layer in targets}

    @contextlib.contextmanager
    def _install(
        self, items: list[tuple[int, str, Intervention]], needs_ctx: bool
    ) -> Iterator[None]:
        with self._tracking() if needs_ctx else contextlib.nullcontext():
            slots = []
            try:
                for layer, point, fn in items:
                    slot = self._slot(layer, point)
                    slot.interventions.append(fn)
                    slots.append((slot, fn))
                yield
            finally:
                for slot, fn in slots:
                    if fn in slot.interventions:
                        slot.interventions.remove(fn)
                    self._release(slot)

    # -- public API -------------------------------------------------------------------
    @_reusable
    def record(
        self,
        layers: LayerSpec = "all",
        points: str | Sequence[str] = ("resid_post",),
        positions: PositionSpec = "all",
        *,
        response_start: Sequence[int] | torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = "cpu",
        to_disk: str | Path | None = None,
        shard_mb: float = 256.0,
    ) -> Iterator[Recording]:
        """Record activations over any number of forward / ``generate()`` calls.

        Args:
            layers: an int, a list of ints (negative counts from the end) or ``"all"``.
            points: hook points among ``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out``.
            positions: ``"all"``, ``"last"``, ``"prompt"``, ``"generated"``, ``"response"``
                (with ``response_start``), or a bool mask ``[batch, seq]``. Padding is
                never recorded; under ``generate()`` each token is recorded exactly once.
            response_start: for ``positions="response"``: per example (counted across the
                block's calls), the absolute position of the first response token.
            dtype: store dtype (default: the activation's).
            device: where recorded tensors go (default CPU; ``None`` keeps them in place).
            to_disk: a directory: stream safetensors shards of at most ``shard_mb`` MiB there;
                memory stays bounded whatever the number of tokens.

        Yields:
            :class:`Recording`; ``rec.activations[(layer, point)]`` (or ``[layer]``, or
            ``["blocks.6.hook_resid_post"]``) is ``[n_tokens, d_model]``.

        Raises:
            IndexError: a layer out of range. ValueError: an unknown point or position spec.
            ArchitectureError: a point refused for this architecture (with the reason).
            RuntimeError: a forward pass ran but a recorded hook point did not fire in it
                (a recording is never silently empty).
        """
        check_positions(positions)
        layer_list = self._layers(layers)
        point_list = self._points(points, "resid_post")
        for point in point_list:
            self.layout.site(layer_list[0], point)  # fail now if the point does not exist
        starts = _response_starts(positions, response_start)
        keys = [HookName(layer, point) for layer in layer_list for point in point_list]
        rec = Recording(
            keys,
            point_list,
            positions,
            d_model=self.d_model,
            layout_index=self.layout.layer_index,
            dtype=dtype,
            device=device,
            response_start=starts,
            to_disk=to_disk,
            shard_bytes=int(shard_mb * 2**20),
        )
        with self._tracking():
            slots = []
            self._recordings.append(rec)
            rec.example_base = self._tracker.examples_seen
            ok = False
            try:
                for key in keys:
                    slot = self._slot(*key)
                    slot.recorders.append(rec)
                    slots.append(slot)
                yield rec
                ok = True
            finally:
                if rec in self._recordings:
                    self._recordings.remove(rec)
                for slot in slots:
                    if rec in slot.recorders:
                        slot.recorders.remove(rec)
                    self._release(slot)
                rec.close(ok)

    @_reusable
    def steer(
        self,
        vector: SteeringVector,
        coefficient: float | dict[int, float] = 1.0,
        positions: PositionSpec = "all",
        *,
        layers: LayerSpec = None,
        point: str | None = None,
    ) -> Iterator[None]:
        """Add ``coefficient × direction`` at the vector's layers (activation addition).

        Correct under the KV cache: ``generate(use_cache=True)`` and ``use_cache=False``
        produce the same tokens, each position gets the vector exactly once, and
        ``positions="generated"`` starts at the last prompt token, whose output predicts the
        first new token, so every generated token is steered.

        Args:
            vector: a :class:`SteeringVector` (``[d_model]`` per layer).
            coefficient: a scalar, or ``{layer: scalar}``; 0 leaves a layer untouched.
            positions: ``"all"``, ``"prompt"``, ``"generated"``, or a bool mask ``[batch, seq]``.
            layers: restrict to these layers; a single-layer vector is broadcast to them.
            point: hook point (default: the vector's :attr:`~SteeringVector.hook_point`,
                ``resid_post`` unless it says otherwise).

        Raises:
            ValueError: ``d_model`` mismatch, unknown point/positions, missing coefficient.
            IndexError: a layer out of range.
        """
        if not isinstance(vector, SteeringVector):
            raise TypeError(f"steer expects a SteeringVector, got {type(vector).__name__}")
        check_positions(positions, allowed=("all", "prompt", "generated"))
        self._check_d_model(vector.d_model, "steering vector")
        if point is not None and not isinstance(point, str):
            raise TypeError(f"point must be one hook point name, got {point!r}")
        (pt,) = self._points(point, vector.hook_point)
        directions = self._per_layer(vector.directions, layers, "steering vector")
        items = []
        for layer, direction in directions.items():
            if isinstance(coefficient, dict):
                norm = {self.layout.layer_index(k): v for k, v in coefficient.items()}
                if layer not in norm:
                    raise ValueError(f"coefficient has no entry for layer {layer}")
                c = _scalar(norm[layer])
            else:
                c = _scalar(coefficient)
            if c == 0.0:
                continue  # a bitwise no-op, not h + 0·v
            items.append((layer, pt, Steer(direction.detach() * c, positions)))
        with self._install(items, needs_ctx=positions != "all"):
            yield

    @_reusable
    def ablate(
        self,
        subspace_or_vector: Subspace | SteeringVector,
        k: int | None = None,
        layers: LayerSpec = None,
        positions: PositionSpec = "all",
        *,
        points: str | Sequence[str] | None = None,
        mean: bool | torch.Tensor | dict[int, torch.Tensor] | None = None,
    ) -> Iterator[None]:
        """Directional ablation: project activations onto the orthogonal complement of a
        subspace, ``h ← h − (h Qᵀ) Q`` (Arditi et al. 2024), or mean ablation.

        Args:
            subspace_or_vector: a :class:`Subspace` (``[k, d_model]`` per layer) or a
                :class:`SteeringVector` (each direction is a 1-dim subspace; non-unit is fine).
                The basis is orthonormalised internally; the caller's tensors are untouched.
            k: use the top-``k`` basis rows (``k >= 1``); default all.
            layers: restrict to these layers (``"all"`` broadcasts a single-layer basis to every
                layer, as Arditi et al. do).
            positions: ``"all"``, ``"prompt"``, ``"generated"``, or a bool mask ``[batch, seq]``.
            points: hook point(s); default the object's ``hook_point`` (``resid_post`` unless
                it says otherwise). Use ``("resid_pre", "attn_out", "mlp_out")`` to ablate every
                write into the residual stream.
            mean: mean ablation: ``True`` uses the subspace's stored mean; a ``[d_model]``
                tensor or ``{layer: tensor}`` gives the reference mean. The in-subspace
                component is set to the mean's instead of zero.

        Raises:
            ValueError: ``k < 1`` or larger than a basis, ``d_model`` mismatch, missing mean.
            IndexError: a layer out of range.
        """
        check_positions(positions, allowed=("all", "prompt", "generated"))
        obj = subspace_or_vector
        if isinstance(obj, SteeringVector):
            if k not in (None, 1):
                raise ValueError(f"k={k} but a SteeringVector spans 1 direction per layer")
            bases = {layer: as_rows(v) for layer, v in obj.directions.items()}
            stored_mean: dict[int, torch.Tensor] = {}
        elif isinstance(obj, Subspace):
            if k is not None:
                obj = obj.top(k)
            bases, stored_mean = obj.bases, obj.mean
        else:
            raise TypeError(
                f"ablate expects a Subspace or SteeringVector, got {type(obj).__name__}"
            )
        self._check_d_model(obj.d_model, type(obj).__name__)
        pts = self._points(points, obj.hook_point)
        bases = self._per_layer(bases, layers, type(obj).__name__)
        means = self._means(mean, stored_mean, bases)
        items = []
        for layer, basis in bases.items():
            q = orthonormal_basis(basis.detach().float())
            for pt in pts:
                items.append((layer, pt, Ablate(q, means.get(layer), positions)))
        with self._install(items, needs_ctx=positions != "all"):
            yield

    def _means(self, mean, stored, bases) -> dict[int, torch.Tensor]:
        if mean is None or mean is False:
            return {}
        if mean is True:
            source = {self.layout.layer_index(k): v for k, v in stored.items()}
            if len(source) == 1 and len(bases) > 1:
                source = dict.fromkeys(bases, next(iter(source.values())))
        elif isinstance(mean, torch.Tensor):
            source = dict.fromkeys(bases, mean)
        else:
            source = {self.layout.layer_index(k): v for k, v in mean.items()}
        missing = [layer for layer in bases if layer not in source]
        if missing:
            raise ValueError(f"mean ablation needs a mean for layers {missing}")
        for layer, m in source.items():
            if m.shape != (self.d_model,):
                raise ValueError(
                    f"mean for layer {layer} must be [{self.d_model}], got {tuple(m.shape)}"
                )
        return {layer: source[layer].detach().float() for layer in bases}


class _GenerateWatch:
    """Wraps ``root.generate`` (an instance attribute, removed when the last watcher goes)
    so trackers know where each ``generate()`` call starts and ends."""

    def __init__(self, root: nn.Module, tracker: SequenceTracker) -> None:
        self.root, self.tracker = root, tracker

    def remove(self) -> None:
        watchers = getattr(self.root, "_steerlab_generate_watchers", None)
        if watchers is None or self.tracker not in watchers:
            return
        watchers.remove(self.tracker)
        if not watchers:
            del self.root._steerlab_generate_watchers
            if "generate" in self.root.__dict__:
                del self.root.__dict__["generate"]


def _watch_generate(root: nn.Module, tracker: SequenceTracker) -> _GenerateWatch:
    watchers = root.__dict__.get("_steerlab_generate_watchers")
    original = getattr(root, "generate", None)
    if watchers is None and callable(original):
        watchers = []
        root.__dict__["_steerlab_generate_watchers"] = watchers

        @functools.wraps(original)
        def generate(*args: Any, **kwargs: Any) -> Any:
            active = list(watchers)
            for t in active:
                t.generate_started(args, kwargs)
            try:
                return original(*args, **kwargs)
            finally:
                for t in active:
                    t.generate_ended()

        root.__dict__["generate"] = generate
    if watchers is not None:
        watchers.append(tracker)
    return _GenerateWatch(root, tracker)


def attach(model: nn.Module, *, layers: str | None = None) -> Lab:
    """Attach steerlab to a model: find its language decoder and return a :class:`Lab`.

    Works without per-model patches on HF causal LMs (Llama, Gemma 2/3, Qwen2/3, Mistral,
    Phi-3, GPT-2, GPT-NeoX, OPT, ...), HF vision-language models (the text decoder, never the
    vision tower), peft ``PeftModel`` (adapter active, disabled or merged) and TransformerLens
    models (through their own hook points). Nothing is hooked until a ``with`` block asks.

    Args:
        model: the model.
        layers: explicit dotted path to the decoder's block list, for anything else.

    The first ``with`` block (or :attr:`Lab.hook_points`) runs a one-time self-check on a
    4-token input, cached per model (:mod:`steerlab.hooks.selfcheck`): a hook point is
    offered only where it means what its name says.

    Raises:
        ArchitectureError: no decoder found; the message lists the candidate module lists.
            Later, at first use: a hook point refused for this architecture, with the reason.

    Example:
        >>> with steerlab.attach(model) as lab, lab.record(layers=[6, -1]) as rec:
        ...     model(**batch)
        >>> rec.activations[6].shape  # [n_tokens, d_model]
    """
    return Lab(model, layers=layers)


def _response_starts(
    positions: PositionSpec, response_start: Sequence[int] | torch.Tensor | None
) -> torch.Tensor | None:
    """``response_start`` checked against ``positions``: a ``[n_examples]`` long tensor for
    ``positions="response"``, else ``None``.

    Raises:
        ValueError: ``"response"`` without starts, starts that are not non-negative ints in
            one dimension, or starts given with any other position spec.
    """
    if not (isinstance(positions, str) and positions == "response"):
        if response_start is not None:
            raise ValueError(
                f'response_start is only used with positions="response", got positions='
                f"{positions!r}"
            )
        return None
    if response_start is None:
        raise ValueError('positions="response" needs response_start= (one per example)')
    raw = torch.as_tensor(response_start)
    if raw.is_floating_point() or raw.dtype == torch.bool or raw.ndim != 1:
        raise ValueError(
            "response_start must be a 1-D sequence of ints (one absolute position per "
            f"example), got {raw.dtype} of shape {tuple(raw.shape)}"
        )
    starts = raw.long()
    if (starts < 0).any():
        raise ValueError(f"response_start must be >= 0, got {starts.tolist()}")
    return starts
