"""Directions from contrasting activations, per layer: difference in means, its standardised
form, PCA of paired differences, PCA of centred activations, and a logistic-regression probe.

Every function takes ``positive`` and ``negative`` activations, either one ``[n, d_model]``
tensor each (stored under ``layer``) or ``{layer: [n, d_model]}`` dicts with the same layers,
and returns a :class:`~steerlab.SteeringVector` that points from negative to positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from steerlab.analysis.subspace import fit_subspace
from steerlab.vectors import SteeringVector

Acts = torch.Tensor | Mapping[int, torch.Tensor]


def _as_layers(x: Acts, layer: int, name: str) -> dict[int, torch.Tensor]:
    d = dict(x) if isinstance(x, Mapping) else {layer: x}
    if not d:
        raise ValueError(f"{name}: no layers given")
    for lyr, t in d.items():
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name}[{lyr}]: expected [n, d_model] activations, got {shape}")
        if t.shape[0] == 0:
            raise ValueError(f"{name}[{lyr}]: no activations")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}[{lyr}]: activations contain NaN or inf values")
    return d


def paired_layers(
    positive: Acts, negative: Acts, layer: int = 0
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Check two activation sets and return them as ``({layer: [n, d_model]}, {layer:
    [m, d_model]})`` (a plain tensor is stored under ``layer``).

    Raises:
        ValueError: a set with no layers or no activations, a tensor that is not 2-D,
            NaN/inf values, different layers in the two sets, or a ``d_model`` mismatch.
    """
    pos, neg = _as_layers(positive, layer, "positive"), _as_layers(negative, layer, "negative")
    if set(pos) != set(neg):
        raise ValueError(f"positive has layers {sorted(pos)}, negative has {sorted(neg)}")
    for lyr in pos:
        if pos[lyr].shape[1] != neg[lyr].shape[1]:
            raise ValueError(
                f"layer {lyr}: d_model mismatch between positive ({pos[lyr].shape[1]}) and "
                f"negative ({neg[lyr].shape[1]}) activations"
            )
    return pos, neg


def difference_in_means(
    positive: Acts, negative: Acts, *, layer: int = 0, **metadata
) -> SteeringVector:
    """``mean(positive) − mean(negative)`` per layer (CAA; Turner et al. 2025's
    misalignment direction; Arditi et al. 2024's refusal direction). Not normalised.

    Raises:
        ValueError: empty sets, NaN/inf, mismatched layers or ``d_model``.
    """
    pos, neg = paired_layers(positive, negative, layer)
    dirs = {lyr: (pos[lyr].double().mean(0) - neg[lyr].double().mean(0)).float() for lyr in pos}
    return SteeringVector(dirs, method="difference_in_means", **metadata)


def _pooled_variance(p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Pooled (unbiased) variance of two samples along dim 0: ``[n_p, ...]``, ``[n_n, ...]``
    -> ``[...]`` (the denominator of Cohen's d)."""
    return ((len(p) - 1) * p.var(0) + (len(n) - 1) * n.var(0)) / (len(p) + len(n) - 2)


def standardized_difference_in_means(
    positive: Acts, negative: Acts, *, layer: int = 0, eps: float = 1e-6, **metadata
) -> SteeringVector:
    """Difference in means after z-scoring each dimension by its pooled standard deviation:
    ``(μ₊ − μ₋) / σ``.

    Gemma 3 has a few residual dimensions hundreds of times larger than the median; their
    noise dominates a raw difference in means. Standardising removes that scale.

    Raises:
        ValueError: as :func:`difference_in_means`, or fewer than 2 examples per set.
    """
    pos, neg = paired_layers(positive, negative, layer)
    dirs = {}
    for lyr in pos:
        p, n = pos[lyr].double(), neg[lyr].double()
        if len(p) < 2 or len(n) < 2:
            raise ValueError(f"layer {lyr}: need at least 2 examples per set to standardise")
        pooled = _pooled_variance(p, n)
        dirs[lyr] = ((p.mean(0) - n.mean(0)) / (pooled.sqrt() + eps)).float()
    return SteeringVector(dirs, method="standardized_difference_in_means", **metadata)


def _oriented(direction: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Flip ``direction`` so that positives project higher than negatives."""
    gap = (pos.double().mean(0) - neg.double().mean(0)) @ direction.double()
    return direction if gap >= 0 else -direction


def pca_diff(positive: Acts, negative: Acts, *, layer: int = 0, **metadata) -> SteeringVector:
    """First principal component of paired differences ``positive[i] − negative[i]``
    (uncentred, as in repeng/RepE), oriented from negative to positive. Unit norm.

    Raises:
        ValueError: the sets are not paired (different lengths), or as above.
    """
    pos, neg = paired_layers(positive, negative, layer)
    dirs = {}
    for lyr in pos:
        if pos[lyr].shape != neg[lyr].shape:
            raise ValueError(
                f"layer {lyr}: pca_diff needs paired activations, got {tuple(pos[lyr].shape)} "
                f"and {tuple(neg[lyr].shape)}"
            )
        sub = fit_subspace(pos[lyr] - neg[lyr], max_k=1, center=False, layer=lyr)
        dirs[lyr] = _oriented(sub.bases[lyr][0], pos[lyr], neg[lyr])
    return SteeringVector(dirs, method="pca_diff", normalization="unit", **metadata)


def pca_center(positive: Acts, negative: Acts, *, layer: int = 0, **metadata) -> SteeringVector:
    """First principal component of all activations, each set centred on the pair mean
    (RepE's "PCA of centred activations"), oriented from negative to positive. Unit norm.
    """
    pos, neg = paired_layers(positive, negative, layer)
    dirs = {}
    for lyr in pos:
        both = torch.cat([pos[lyr], neg[lyr]]).double()
        centre = (pos[lyr].double().mean(0) + neg[lyr].double().mean(0)) / 2
        sub = fit_subspace((both - centre).float(), max_k=1, center=False, layer=lyr)
        dirs[lyr] = _oriented(sub.bases[lyr][0], pos[lyr], neg[lyr])
    return SteeringVector(dirs, method="pca_center", normalization="unit", **metadata)


@dataclass(frozen=True)
class LogisticFit:
    """A logistic regression (scikit-learn) fitted on standardised activations.

    Attributes:
        weight: ``[d_model]`` float64, in activation units (coefficients ``/ σ``).
        bias: the intercept in activation units (``intercept − weight · μ``).
        intercept: the classifier's intercept, on standardised inputs.
        scaler, classifier: the fitted ``StandardScaler`` and ``LogisticRegression``.
    """

    weight: torch.Tensor
    bias: float
    intercept: float
    scaler: Any
    classifier: Any

    def accuracy(self, x: np.ndarray, y: Sequence[int]) -> float:
        """Accuracy on ``x`` ``[n, d_model]`` (float64 array) against labels ``y``."""
        return float(self.classifier.score(self.scaler.transform(x), y))


def fit_logistic(
    x: np.ndarray, y: Sequence[int], *, C: float = 1.0, max_iter: int = 2000
) -> LogisticFit:
    """Fit ``LogisticRegression(C, max_iter)`` on ``x`` ``[n, d_model]`` (float64 array)
    standardised by a ``StandardScaler``, with labels ``y`` (1 = positive), and map the
    weights back to activation units. The one logistic probe of steerlab
    (:func:`logistic_probe`, :class:`~steerlab.analysis.monitor.ActivationProbe`).

    Raises:
        ValueError: from scikit-learn, e.g. a single class among ``y``.
    """
    from sklearn.linear_model import LogisticRegression  # lazy: scikit-learn loads slowly
    from sklearn.preprocessing import StandardScaler  # lazy: scikit-learn loads slowly

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(x), y)
    w = torch.from_numpy(clf.coef_[0] / scaler.scale_)
    intercept = float(clf.intercept_[0])
    bias = intercept - float((w * torch.from_numpy(scaler.mean_)).sum())
    return LogisticFit(w, bias, intercept, scaler, clf)


@dataclass
class ProbeResult:
    """A logistic-regression probe per layer.

    Attributes:
        vector: the probe weights as a :class:`SteeringVector` (``[d_model]`` per layer, in
            activation units; unit norm).
        train_accuracy, test_accuracy: ``{layer: accuracy}`` on the train / held-out split.
        intercept: ``{layer: bias}`` of the fitted classifier (on standardised inputs).
    """

    vector: SteeringVector
    train_accuracy: dict[int, float]
    test_accuracy: dict[int, float]
    intercept: dict[int, float]


def logistic_probe(
    positive: Acts,
    negative: Acts,
    *,
    layer: int = 0,
    test_fraction: float = 0.25,
    seed: int = 0,
    C: float = 1.0,
    **metadata,
) -> ProbeResult:
    """Logistic-regression probe (scikit-learn) separating positive from negative, with
    held-out accuracy. Inputs are standardised before fitting; the returned direction is
    mapped back to activation space (``w / σ``) and normalised.

    Raises:
        ValueError: fewer than 2 examples per set, ``test_fraction`` outside (0, 1), or as
            :func:`difference_in_means`.
    """
    from sklearn.model_selection import train_test_split  # lazy: scikit-learn loads slowly

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    pos, neg = paired_layers(positive, negative, layer)
    dirs, train_acc, test_acc, intercept = {}, {}, {}, {}
    for lyr in pos:
        x = torch.cat([pos[lyr], neg[lyr]]).double().numpy()
        y = [1] * len(pos[lyr]) + [0] * len(neg[lyr])
        if min(len(pos[lyr]), len(neg[lyr])) < 2:
            raise ValueError(f"layer {lyr}: need at least 2 examples per class for a probe")
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=test_fraction, random_state=seed, stratify=y
        )
        fit = fit_logistic(x_tr, y_tr, C=C, max_iter=2000)
        train_acc[lyr] = fit.accuracy(x_tr, y_tr)
        test_acc[lyr] = fit.accuracy(x_te, y_te)
        intercept[lyr] = fit.intercept
        dirs[lyr] = (fit.weight / fit.weight.norm()).float()
    vector = SteeringVector(dirs, method="logistic_probe", normalization="unit", **metadata)
    return ProbeResult(vector, train_acc, test_acc, intercept)


def separation(positive: Acts, negative: Acts, *, layer: int = 0) -> dict[int, float]:
    """Per layer, how well the difference-in-means direction separates the two sets: Cohen's
    d of the projections on the unit direction ``u = (μ₊ − μ₋)/‖μ₊ − μ₋‖``,
    ``(mean(p·u) − mean(n·u)) / pooled_std``. Unitless; comparable across layers whose
    activation scales differ.

    Raises:
        ValueError: fewer than 2 examples per set, identical means with zero spread, or as
            :func:`difference_in_means`.
    """
    pos, neg = paired_layers(positive, negative, layer)
    out = {}
    for lyr in pos:
        p, n = pos[lyr].double(), neg[lyr].double()
        if len(p) < 2 or len(n) < 2:
            raise ValueError(f"layer {lyr}: need at least 2 examples per set for a separation")
        u = p.mean(0) - n.mean(0)
        norm = float(u.norm())
        if norm == 0:
            out[lyr] = 0.0
            continue
        sp, sn = p @ (u / norm), n @ (u / norm)
        pooled = _pooled_variance(sp, sn)
        out[lyr] = float((sp.mean() - sn.mean()) / pooled.sqrt().clamp_min(1e-12))
    return out


def strongest_layer(positive: Acts, negative: Acts) -> int:
    """The layer whose :func:`separation` is largest (``{layer: [n, d_model]}`` inputs)."""
    sep = separation(positive, negative)
    return max(sep, key=sep.__getitem__)
