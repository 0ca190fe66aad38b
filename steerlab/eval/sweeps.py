"""Ablation and steering studies: how "about 10 principal components" becomes a number.

- :func:`ablation_curve`: for k = 0, 1, …, K, directional ablation of the top-k components
  of a subspace at chosen layers (Arditi et al. 2024's projection ``h ← h − (h Qᵀ) Q``),
  with the misalignment metric measured inside the ablation, coherence beside it, and a
  control: random subspaces of the same dimension at the same layers, over several draws.
- :func:`steering_sweep`: steer with ``−α · direction`` over a sweep of α.

The metric is any callable returning a float (the study's mitigate stage passes its
misalignment measurement bound to a model and its questions).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from steerlab.files import atomic_path
from steerlab.hooks.lab import Lab
from steerlab.linalg import orthonormal_basis
from steerlab.vectors import SteeringVector, Subspace

Metric = Callable[[], float]


@dataclass(frozen=True)
class AblationRow:
    """One row of an ablation curve.

    Attributes:
        k: number of top components ablated (0 = no ablation).
        misalignment: ``metric()`` with the top-k subspace ablated.
        coherence: ``coherence()`` under the same ablation, or NaN when not measured.
        random_mean, random_std: the metric with a random k-dim subspace ablated instead,
            mean and standard deviation (``ddof=0``) over draws.
        random_coherence: mean coherence over the random draws, or NaN.
        random_values: the metric for each draw.
    """

    k: int
    misalignment: float
    coherence: float
    random_mean: float
    random_std: float
    random_coherence: float
    random_values: tuple[float, ...]


@dataclass(frozen=True)
class SteeringRow:
    """One row of a steering sweep: ``alpha`` (the vector is added with coefficient
    ``−alpha``), ``misalignment`` and ``coherence`` (NaN when not measured)."""

    alpha: float
    misalignment: float
    coherence: float


def _call(fn: Metric, what: str) -> float:
    value = fn()
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a number, got {type(value).__name__}") from None
    if math.isnan(value):
        raise ValueError(f"{what} returned NaN")
    return value


def random_subspace(
    like: Subspace, k: int, *, generator: torch.Generator, layers: Iterable[int] | None = None
) -> Subspace:
    """A uniformly random k-dim subspace (orthonormalised Gaussian rows) at each layer of
    ``like`` (or ``layers``), same ``d_model``: ``{layer: [k, d_model]}``."""
    if not 1 <= k <= like.d_model:
        raise ValueError(f"k must be in 1..{like.d_model}, got {k}")
    chosen = list(like.layers if layers is None else layers)
    bases = {
        layer: orthonormal_basis(
            torch.randn(k, like.d_model, generator=generator, dtype=torch.float64)
        )
        for layer in chosen
    }
    return Subspace({layer: b.float() for layer, b in bases.items()}, method="random")


def ablation_curve(
    lab: Lab,
    subspace: Subspace,
    ks: Iterable[int] | None = None,
    *,
    metric: Metric,
    coherence: Metric | None = None,
    layers: int | Sequence[int] | str | None = None,
    points: str | Sequence[str] | None = None,
    random_draws: int = 3,
    seed: int = 0,
    baseline: tuple[float, float] | None = None,
) -> list[AblationRow]:
    """Misalignment against the number k of top components ablated, with a random control.

    For each k the top-k rows of ``subspace`` are ablated with ``lab.ablate(subspace, k=k,
    layers=layers, points=points)`` and ``metric()`` (then ``coherence()``) runs inside that
    block; k = 0 runs without ablation. The control ablates, at the same layers and points,
    ``random_draws`` random subspaces of the same dimension (the draws are nested: the
    k-dim control is the first k rows of one fixed random K-dim basis per draw, so the
    control curve is as smooth as the real one).

    Args:
        lab: a :class:`Lab` on the model the metric evaluates.
        subspace: e.g. ``fit_subspace(stores.diff, max_k=K)`` (``[K, d_model]`` per layer).
        ks: the k values (default ``range(0, K + 1)``), each in ``0..K``.
        metric: ``() -> float``, the misalignment measured on the hooked model.
        coherence: ``() -> float`` or ``None``; measured under the same ablation.
        layers: the layers to ablate (default: the subspace's layers; a single-layer
            subspace is broadcast to all given layers, see :meth:`Lab.ablate`).
        random_draws: number of random subspaces per k (0 disables the control).
        seed: seed of the random control.
        baseline: ``(metric, coherence)`` of the unablated model when it is already known
            (the study passes its evaluation stage's result for the same adapter): the k = 0
            row then uses it instead of measuring again. Coherence may be NaN.

    Returns:
        One :class:`AblationRow` per k, in the order of ``ks``.

    Raises:
        ValueError: a k outside ``0..K``, ``random_draws < 0``, a metric (or a baseline
            metric) that is NaN.
        TypeError: a metric returning something that is not a number.
    """
    ks = _check_ks(subspace, ks, random_draws)
    if baseline is not None:
        known_metric, known_coherence = baseline
        baseline = (_call(lambda: known_metric, "baseline"), float(known_coherence))
    g = torch.Generator().manual_seed(seed)
    big = max(ks)
    # Drawn at the subspace's own layers and ablated with the same ``layers=`` argument, so
    # the control is placed exactly as the real subspace (broadcast included).
    controls = [random_subspace(subspace, max(big, 1), generator=g) for _ in range(random_draws)]

    def measure(ablation) -> tuple[float, float]:
        with ablation:
            m = _call(metric, "metric")
            c = _call(coherence, "coherence") if coherence is not None else math.nan
        return m, c

    rows = []
    for k in ks:
        if k == 0:
            m, c = baseline if baseline is not None else measure(_Null())
            values = [m] * random_draws
            rc = [c] * random_draws
        else:
            m, c = measure(lab.ablate(subspace, k=k, layers=layers, points=points))
            drawn = [measure(lab.ablate(q, k=k, layers=layers, points=points)) for q in controls]
            values, rc = [v for v, _ in drawn], [cc for _, cc in drawn]
        rows.append(_row(k, m, c, values, rc))
    return rows


def _check_ks(subspace: Subspace, ks: Iterable[int] | None, random_draws: int) -> list[int]:
    """``ks`` as a list (default ``0..K``), each checked against the subspace's K."""
    kmax = min(subspace.k.values())
    ks = list(range(0, kmax + 1) if ks is None else ks)
    if not ks:
        raise ValueError("ks is empty")
    bad = [k for k in ks if not isinstance(k, int) or not 0 <= k <= kmax]
    if bad:
        raise ValueError(f"ks {bad} outside 0..{kmax} (the subspace has {kmax} components)")
    if random_draws < 0:
        raise ValueError(f"random_draws must be >= 0, got {random_draws}")
    return ks


def _row(k: int, m: float, c: float, values: list[float], rc: list[float]) -> AblationRow:
    """One row of the curve: the real ablation and the control's draws at this k."""
    t = torch.tensor(values, dtype=torch.float64)
    return AblationRow(
        k=k,
        misalignment=m,
        coherence=c,
        random_mean=float(t.mean()) if values else math.nan,
        random_std=float(t.std(unbiased=False)) if values else math.nan,
        random_coherence=float(torch.tensor(rc).mean()) if rc else math.nan,
        random_values=tuple(values),
    )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


def steering_sweep(
    lab: Lab,
    direction: SteeringVector,
    alphas: Iterable[float],
    *,
    metric: Metric,
    coherence: Metric | None = None,
    layers: int | Sequence[int] | str | None = None,
    positions: str = "all",
) -> list[SteeringRow]:
    """Steer with ``−α · direction`` (activation addition, :meth:`Lab.steer`) for each α and
    measure the metric (and coherence) inside the block. α = 0 leaves the model untouched.

    ``direction`` is used as given: normalise it first (``direction.normalize()``) for α in
    units of activation norm.

    Raises:
        ValueError: no alphas, a metric returning NaN. TypeError: a non-numeric metric.
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("alphas is empty")
    rows = []
    for a in alphas:
        with lab.steer(direction, coefficient=-a, layers=layers, positions=positions):
            m = _call(metric, "metric")
            c = _call(coherence, "coherence") if coherence is not None else math.nan
        rows.append(SteeringRow(a, m, c))
    return rows


def save_table(rows: Sequence[AblationRow] | Sequence[SteeringRow], path: str | Path) -> Path:
    """Write study rows to a CSV file atomically (``random_values`` joined by ``;``).

    Raises:
        ValueError: no rows, or rows of different types.
    """
    if not rows:
        raise ValueError("no rows to save")
    kind = type(rows[0])
    if any(type(r) is not kind for r in rows):
        raise ValueError("rows of different types")
    path = Path(path)
    names = [f.name for f in fields(kind)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in rows:
            d = asdict(r)
            if "random_values" in d:
                d["random_values"] = ";".join(f"{v:.6g}" for v in d["random_values"])
            w.writerow(d)
    return path
