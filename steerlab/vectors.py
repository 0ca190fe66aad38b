"""Steering vectors and subspaces: values with metadata, arithmetic, and safetensors I/O.

- :class:`SteeringVector`: one direction per layer, ``{layer: Tensor[d_model]}``, e.g. a
  difference in means (Turner et al. 2025; Arditi et al. 2024).
- :class:`Subspace`: an orthonormal basis per layer, ``{layer: Tensor[k, d_model]}``, with
  explained variance ratios and the mean it was fitted around (PCA of activations).

Both save to safetensors with metadata (:meth:`save`) and load back with validation
(:func:`load`); a pickle is never read. :meth:`SteeringVector.to_gguf` writes a llama.cpp
control vector.

Both live at one hook point, ``hook_point`` (``resid_post`` unless given), so the tensor at
``layer`` belongs at :class:`~steerlab.hooks.names.HookName` ``(layer, hook_point)``
(:attr:`SteeringVector.hook_names`). Their dicts may be keyed by hook names instead of
layers: ``SteeringVector({"blocks.6.hook_mlp_out": t})`` is ``SteeringVector({6: t},
hook_point="mlp_out")``. The ``hook_point`` safetensors metadata key is unchanged, so files
saved before it was typed load as they did.
"""

from __future__ import annotations

import json
import math
import operator
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from steerlab.files import atomic_path, refuse_pickle
from steerlab.hooks.names import DEFAULT_POINT, EXAMPLE, HookName, check_point
from steerlab.linalg import as_rows, orthonormal_basis, span_basis
from steerlab.version import __version__

FORMAT = "steerlab/1"


def _version() -> str:
    return __version__


def _check_tensor(name: str, t: Any, ndim: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != ndim:
        shape = "[d_model]" if ndim == 1 else "[k, d_model]"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {t.dtype}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return t


def _layer_key(k: Any, what: str, points: set[str]) -> int:
    """The layer of a key: an int, or a hook name (whose point is added to ``points``)."""
    expected = f"{what} keys must be int layer indices or hook names such as {EXAMPLE!r}"
    if isinstance(k, (str, tuple)):
        try:
            name = HookName.parse(k)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{expected}, got {k!r}: {err}") from None
        points.add(name.point)
        return name.layer
    if isinstance(k, bool):
        raise TypeError(f"{expected}, got {k!r}")
    try:
        return operator.index(k)  # int, numpy integers, 0-d integer tensors
    except TypeError:
        raise TypeError(f"{expected}, got {k!r}") from None


def _check_layers(d: dict, what: str, points: set[str]) -> dict[int, torch.Tensor]:
    if not isinstance(d, dict) or not d:
        raise ValueError(f"{what} must be a non-empty dict {{layer: tensor}}, got {d!r}")
    return dict(sorted((_layer_key(k, what, points), v) for k, v in d.items()))


def _with_point(metadata: dict[str, Any], points: set[str]) -> dict[str, Any]:
    """``metadata`` with a checked ``hook_point``: the one its hook-name keys name, if any.

    Raises:
        ValueError: an unknown point, keys naming several points, or keys that disagree with
            ``hook_point=``.
    """
    given = metadata.get("hook_point")
    if given not in (None, ""):
        check_point(given)
    if not points:
        return metadata
    if len(points) > 1:
        raise ValueError(f"keys name several hook points {sorted(points)}; expected one")
    (point,) = points
    if given not in (None, "", point):
        raise ValueError(f"keys name hook point {point!r} but hook_point={given!r}")
    return {**metadata, "hook_point": point}


class _AtHookPoint:
    """The hook point of a vector or subspace, typed."""

    metadata: dict[str, Any]
    layers: list[int]

    @property
    def hook_point(self) -> str:
        """Where the tensors belong: ``metadata["hook_point"]``, else ``resid_post``."""
        return self.metadata.get("hook_point") or DEFAULT_POINT

    @property
    def hook_names(self) -> list[HookName]:
        """One :class:`HookName` per layer, e.g. ``[HookName(6, "resid_post")]``; negative
        layers stay negative until a model resolves them."""
        return [HookName(layer, self.hook_point) for layer in self.layers]


# Stale after arithmetic: describe one specific saved/normalised object.
_NOT_INHERITED = ("created", "steerlab_version", "normalization")


def _inherit(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in _NOT_INHERITED}


@dataclass
class SteeringVector(_AtHookPoint):
    """A direction per layer: ``directions[layer]`` is ``Tensor[d_model]``.

    Args:
        directions: ``{layer: Tensor[d_model]}``; all of the same ``d_model``, finite. Keys
            may be hook names (``"blocks.6.hook_resid_post"``, ``(6, "resid_post")``), all
            at one point, which then sets ``hook_point``.
        **metadata: free-form, JSON-serialisable metadata (model, hook_point, method, ...);
            ``hook_point`` must be one of ``HOOK_POINTS``.

    Raises:
        ValueError: empty dict, wrong shape, mismatched ``d_model``, NaN/inf values, or an
            unknown or conflicting hook point.
        TypeError: keys that are neither layers nor hook names, or non-tensor values.

    Example:
        >>> v = SteeringVector({6: torch.randn(576)}, hook_point="resid_post")
        >>> (2 * v - v).normalize().directions[6].norm()
        tensor(1.0000)
    """

    directions: dict[int, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(self, directions: dict[int, torch.Tensor], **metadata: Any) -> None:
        points: set[str] = set()
        directions = _check_layers(directions, "directions", points)
        dims = set()
        for layer, t in directions.items():
            _check_tensor(f"direction for layer {layer}", t, 1)
            dims.add(int(t.shape[0]))
        if len(dims) != 1:
            raise ValueError(f"directions have different d_model across layers: {sorted(dims)}")
        self.directions = directions
        self.metadata = _with_point(dict(metadata), points)

    def __repr__(self) -> str:
        meta = ", ".join(f"{k}={v!r}" for k, v in self.metadata.items() if k in STANDARD_METADATA)
        norms = ", ".join(f"{k}: {float(v.norm()):.3g}" for k, v in self.directions.items())
        extra = f", {meta}" if meta else ""
        return f"SteeringVector(d_model={self.d_model}, norms={{{norms}}}{extra})"

    @property
    def layers(self) -> list[int]:
        return list(self.directions)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).shape[0])

    def _combine(self, other: SteeringVector, sign: float) -> SteeringVector:
        if not isinstance(other, SteeringVector):
            return NotImplemented
        if other.d_model != self.d_model:
            raise ValueError(f"d_model mismatch: {self.d_model} vs {other.d_model}")
        out = {k: v.clone() for k, v in self.directions.items()}
        for layer, v in other.directions.items():
            v = v.to(out[layer].dtype) if layer in out else v
            out[layer] = out[layer] + sign * v if layer in out else sign * v.clone()
        return SteeringVector(out, **_inherit(self.metadata))

    def __add__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, 1.0)

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, -1.0)

    def __mul__(self, scalar: float) -> SteeringVector:
        if not isinstance(scalar, (int, float)) or isinstance(scalar, bool):
            return NotImplemented
        return SteeringVector(
            {k: v * scalar for k, v in self.directions.items()}, **_inherit(self.metadata)
        )

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def normalize(self) -> SteeringVector:
        """Unit-norm direction at every layer. Raises ``ValueError`` on a zero direction."""
        out = {}
        for layer, v in self.directions.items():
            n = v.norm()
            if n == 0:
                raise ValueError(f"cannot normalize the zero direction at layer {layer}")
            out[layer] = v / n
        return SteeringVector(out, **{**self.metadata, "normalization": "unit"})

    def to(self, *args: Any, **kwargs: Any) -> SteeringVector:
        """Cast / move every direction, like ``Tensor.to``."""
        return SteeringVector(
            {k: v.to(*args, **kwargs) for k, v in self.directions.items()}, **self.metadata
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write safetensors (``direction.{layer}`` tensors) with metadata, atomically."""
        tensors = {
            f"direction.{k}": v.detach().contiguous().cpu() for k, v in self.directions.items()
        }
        return _save(path, tensors, "steering_vector", self.metadata, self.layers, self.d_model)

    def to_gguf(self, path: str | os.PathLike, *, model_hint: str | None = None) -> Path:
        """Export as a llama.cpp control vector (GGUF, arch ``controlvector``).

        Tensor ``direction.{layer}`` holds the float32 direction added to the output of block
        ``layer`` (llama.cpp's 0-based layer index; index 0 is not steerable there, so a
        direction at layer 0 raises ``ValueError``).
        """
        import gguf  # lazy: optional dependency, only for llama.cpp export

        if 0 in self.directions:
            raise ValueError("llama.cpp control vectors cannot steer layer 0; drop that layer")
        if any(layer < 0 for layer in self.directions):
            raise ValueError(
                f"GGUF control vectors need non-negative layer indices, got {self.layers}; "
                "resolve negative layers against the model first"
            )
        path = Path(path)
        with atomic_path(path) as tmp:
            writer = gguf.GGUFWriter(str(tmp), "controlvector")
            hint = model_hint or str(self.metadata.get("family", "llama"))
            writer.add_string("controlvector.model_hint", hint)
            writer.add_uint32("controlvector.layer_count", len(self.directions))
            for layer, v in self.directions.items():
                writer.add_tensor(f"direction.{layer}", v.detach().float().cpu().numpy())
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
        return path


@dataclass
class Subspace(_AtHookPoint):
    """An orthonormal basis per layer: ``bases[layer]`` is ``Tensor[k, d_model]``.

    Rows are sorted by decreasing explained variance when they come from PCA; ``[:k]``
    is the top-k subspace.

    Args:
        bases: ``{layer: Tensor[k, d_model]}``. Rows must be orthonormal (within 1e-4);
            use :meth:`from_vectors` to orthonormalise arbitrary rows. Keys may be hook
            names, as for :class:`SteeringVector`.
        explained_variance_ratio: ``{layer: Tensor[k]}``, optional.
        mean: ``{layer: Tensor[d_model]}``, optional: the mean the PCA was centred on.
        **metadata: free-form, JSON-serialisable metadata.

    Raises:
        ValueError: wrong shapes, NaN/inf, non-orthonormal rows, or an unknown or
            conflicting hook point.
    """

    bases: dict[int, torch.Tensor]
    explained_variance_ratio: dict[int, torch.Tensor] = field(default_factory=dict)
    mean: dict[int, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        bases: dict[int, torch.Tensor],
        explained_variance_ratio: dict[int, torch.Tensor] | None = None,
        mean: dict[int, torch.Tensor] | None = None,
        **metadata: Any,
    ) -> None:
        points: set[str] = set()
        bases = _check_layers(bases, "bases", points)
        dims = set()
        for layer, b in bases.items():
            _check_tensor(f"basis for layer {layer}", b, 2)
            if b.shape[0] > b.shape[1]:
                raise ValueError(
                    f"basis for layer {layer} has {b.shape[0]} rows > d_model={b.shape[1]}"
                )
            gram = b.double() @ b.double().T
            # Low-precision casts drift: tolerate a few ulps of the stored dtype.
            atol = max(1e-4, 8 * torch.finfo(b.dtype).eps)
            if not torch.allclose(gram, torch.eye(len(b), dtype=torch.float64), atol=atol):
                raise ValueError(
                    f"basis for layer {layer} is not orthonormal; use Subspace.from_vectors"
                )
            dims.add(int(b.shape[1]))
        if len(dims) != 1:
            raise ValueError(f"bases have different d_model across layers: {sorted(dims)}")
        self.bases = bases
        d_model = dims.pop()
        self.explained_variance_ratio = {}
        for k, v in (explained_variance_ratio or {}).items():
            k = _layer_key(k, "explained_variance_ratio", points)
            _check_tensor(f"explained_variance_ratio[{k}]", v, 1)
            if k not in bases or len(v) != len(bases[k]):
                raise ValueError(
                    f"explained_variance_ratio[{k}] must match a basis of the same layer with "
                    f"one entry per row; bases have layers {sorted(bases)}"
                )
            self.explained_variance_ratio[k] = v
        self.mean = {}
        for k, v in (mean or {}).items():
            k = _layer_key(k, "mean", points)
            _check_tensor(f"mean[{k}]", v, 1)
            if v.shape[0] != d_model:
                raise ValueError(f"mean[{k}] must be [{d_model}], got {tuple(v.shape)}")
            self.mean[k] = v
        self.metadata = _with_point(dict(metadata), points)

    @classmethod
    def from_vectors(
        cls, vectors: dict[int, torch.Tensor] | SteeringVector, **metadata
    ) -> Subspace:
        """Orthonormalise arbitrary rows ``{layer: Tensor[k, d_model] or [d_model]}``."""
        if isinstance(vectors, SteeringVector):
            metadata = {**vectors.metadata, **metadata}
            vectors = vectors.directions
        points: set[str] = set()
        vectors = _check_layers(vectors, "vectors", points)
        metadata = _with_point(metadata, points)
        bases = {}
        for k, v in vectors.items():
            v = as_rows(v) if isinstance(v, torch.Tensor) else v
            _check_tensor(f"vectors for layer {k}", v, 2)
            if v.shape[0] > v.shape[1]:
                raise ValueError(
                    f"layer {k}: {v.shape[0]} vectors cannot be independent in d_model={v.shape[1]}"
                )
            bases[k] = orthonormal_basis(v)
        return cls(bases, **metadata)

    def __repr__(self) -> str:
        meta = ", ".join(f"{k}={v!r}" for k, v in self.metadata.items() if k in STANDARD_METADATA)
        return f"Subspace(d_model={self.d_model}, k={self.k}{', ' + meta if meta else ''})"

    @property
    def layers(self) -> list[int]:
        return list(self.bases)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.bases.values())).shape[1])

    @property
    def k(self) -> dict[int, int]:
        return {layer: int(b.shape[0]) for layer, b in self.bases.items()}

    def k_for(self, fraction: float) -> dict[int, int]:
        """Per layer, the smallest k whose explained variance ratios sum to ``fraction``.

        Raises:
            ValueError: ``fraction`` outside (0, 1], no explained variance stored, or the
                kept components do not reach ``fraction`` (fit with a larger ``max_k``).
        """
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if not self.explained_variance_ratio:
            raise ValueError("this subspace has no explained_variance_ratio")
        out = {}
        for layer, ratio in self.explained_variance_ratio.items():
            cumulative = ratio.double().cumsum(0)
            reached = (cumulative >= fraction - 1e-9).nonzero()
            if len(reached) == 0:
                raise ValueError(
                    f"layer {layer}: the {len(ratio)} kept components explain "
                    f"{float(cumulative[-1]):.3f} < {fraction}; fit with a larger max_k"
                )
            out[layer] = int(reached[0]) + 1
        return out

    def top(self, k: int) -> Subspace:
        """The first ``k`` basis rows per layer. Raises ``ValueError`` if ``k`` exceeds a basis."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        for layer, b in self.bases.items():
            if k > b.shape[0]:
                raise ValueError(f"k={k} but layer {layer} has only {b.shape[0]} basis vectors")
        return Subspace(
            {layer: b[:k] for layer, b in self.bases.items()},
            {layer: r[:k] for layer, r in self.explained_variance_ratio.items()},
            dict(self.mean),
            **self.metadata,
        )

    def __add__(self, other: Subspace) -> Subspace:
        """Span of both subspaces (layer by layer), re-orthonormalised."""
        if not isinstance(other, Subspace):
            return NotImplemented
        out = dict(self.bases)
        for layer, b in other.bases.items():
            out[layer] = torch.cat([out[layer], b.to(out[layer].dtype)]) if layer in out else b
        return Subspace(
            {layer: span_basis(b) for layer, b in out.items()},
            **{**self.metadata, "combined": "span"},
        )

    def __sub__(self, other: Subspace) -> Subspace:
        """The part of ``self`` orthogonal to ``other``, re-orthonormalised."""
        if not isinstance(other, Subspace):
            return NotImplemented
        out = {}
        for layer, b in self.bases.items():
            if layer in other.bases:
                q = other.bases[layer].to(b.dtype)
                b = b - (b @ q.T) @ q
            out[layer] = span_basis(b)
        return Subspace(out, **{**self.metadata, "combined": "difference"})

    def __mul__(self, scalar: float) -> Subspace:
        """A subspace is scale-invariant: ``c * S`` spans ``S`` for ``c != 0``."""
        if not isinstance(scalar, (int, float)) or isinstance(scalar, bool):
            return NotImplemented
        if scalar == 0:
            raise ValueError("0 * Subspace is not a subspace")
        return Subspace(
            {k: b * math.copysign(1.0, scalar) for k, b in self.bases.items()},
            dict(self.explained_variance_ratio),
            dict(self.mean),
            **self.metadata,
        )

    __rmul__ = __mul__

    def normalize(self) -> Subspace:
        """Re-orthonormalise every basis (removes drift after casts to low precision)."""
        return Subspace(
            {k: orthonormal_basis(b.float()).to(b.dtype) for k, b in self.bases.items()},
            dict(self.explained_variance_ratio),
            dict(self.mean),
            **self.metadata,
        )

    def to(self, *args: Any, **kwargs: Any) -> Subspace:
        return Subspace(
            {k: v.to(*args, **kwargs) for k, v in self.bases.items()},
            {k: v.to(*args, **kwargs) for k, v in self.explained_variance_ratio.items()},
            {k: v.to(*args, **kwargs) for k, v in self.mean.items()},
            **self.metadata,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write safetensors (``basis.{layer}``, ``explained_variance_ratio.{layer}``,
        ``mean.{layer}``) with metadata, atomically."""
        tensors = {f"basis.{k}": v.detach().contiguous().cpu() for k, v in self.bases.items()}
        for k, v in self.explained_variance_ratio.items():
            tensors[f"explained_variance_ratio.{k}"] = v.detach().contiguous().cpu()
        for k, v in self.mean.items():
            tensors[f"mean.{k}"] = v.detach().contiguous().cpu()
        return _save(path, tensors, "subspace", self.metadata, self.layers, self.d_model)


def layer_rows(
    x: Subspace | SteeringVector | torch.Tensor, layer: int | None = None
) -> torch.Tensor:
    """The rows ``[k, d_model]`` of ``x`` at ``layer``: a :class:`Subspace`'s basis, a
    :class:`SteeringVector`'s direction as one row, or a tensor ``[d_model]`` /
    ``[k, d_model]`` itself (``layer`` ignored). Rows are returned as stored (not
    orthonormalised; see :func:`steerlab.linalg.orthonormal_basis`).

    Raises:
        ValueError: ``x`` has several layers and ``layer`` is ``None``.
        KeyError: ``layer`` is not one of ``x``'s layers.
    """
    if isinstance(x, torch.Tensor):
        return as_rows(x)
    table = x.bases if isinstance(x, Subspace) else x.directions
    if layer is None:
        if len(table) != 1:
            raise ValueError(f"the {type(x).__name__} has layers {sorted(table)}; pass layer=")
        (rows,) = table.values()
    elif layer not in table:
        raise KeyError(f"layer {layer} not in {sorted(table)}")
    else:
        rows = table[layer]
    return as_rows(rows)


# Standard metadata, written as top-level safetensors metadata so other tools can read it
# without parsing steerlab's JSON blob. Missing values are written as "".
STANDARD_METADATA = (
    "model",
    "revision",
    "family",
    "hook_point",
    "method",
    "normalization",
    "dataset_fingerprint",
)
_DERIVED = ("steerlab_version", "d_model", "layers", "created")


def _save(path, tensors, kind, metadata, layers, d_model) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save path must end in .safetensors, got {path.name!r}")
    meta = {
        "format": FORMAT,
        "kind": kind,
        "steerlab_version": _version(),
        "d_model": str(d_model),
        "layers": json.dumps(layers),
        "created": metadata.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metadata": json.dumps(
            {k: v for k, v in metadata.items() if k not in _DERIVED}, default=str
        ),
    }
    for key in STANDARD_METADATA:
        value = metadata.get(key)
        meta[key] = "" if value is None else str(value)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load(path: str | os.PathLike) -> SteeringVector | Subspace:
    """Load a :class:`SteeringVector` or :class:`Subspace` saved by steerlab.

    Validates the file type (safetensors only; a pickle or ``.pt`` file is refused without
    being read), tensor shapes, finite values and the metadata.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a pickle file, a non-steerlab safetensors file, or invalid contents.
    """
    refuse_pickle(path)
    try:
        return _load(path)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: malformed steerlab vector file ({err!r})") from err
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _load(path: str | os.PathLike) -> SteeringVector | Subspace:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not a steerlab vector file (metadata format={meta.get('format')!r}, "
                f"expected {FORMAT!r})"
            )
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    user = json.loads(meta.get("metadata", "{}"))
    if not isinstance(user, dict):
        raise ValueError(f"metadata must be a JSON object, got {type(user).__name__}")
    d_model = int(meta["d_model"])
    for key in ("directions", "bases", "explained_variance_ratio", "mean"):
        user.pop(key, None)
    user.update(created=meta.get("created"), steerlab_version=meta.get("steerlab_version"))

    def group(prefix: str) -> dict[int, torch.Tensor]:
        return {int(k[len(prefix) :]): v for k, v in tensors.items() if k.startswith(prefix)}

    kind = meta.get("kind")
    if kind == "steering_vector":
        obj: SteeringVector | Subspace = SteeringVector(group("direction."), **user)
    elif kind == "subspace":
        obj = Subspace(
            group("basis."),
            group("explained_variance_ratio."),
            group("mean."),
            **user,
        )
    else:
        raise ValueError(f"{path}: unknown kind {kind!r}")
    if obj.d_model != d_model:
        raise ValueError(f"{path}: metadata says d_model={d_model}, tensors have {obj.d_model}")
    if json.loads(meta["layers"]) != obj.layers:
        raise ValueError(f"{path}: metadata layers {meta['layers']} do not match the tensors")
    return obj
