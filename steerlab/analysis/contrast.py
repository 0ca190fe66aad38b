"""The misalignment subspace as a contrast of fine-tunes, with a null to judge it against.

The emergent-misalignment literature measures misalignment as the harmful fine-tune's
excess over a *benign* fine-tune of the same recipe (Turner, Soligo et al. 2025), because
fine-tuning itself changes style and format. So the subspace is the PCA of per-token (or
per-example) ``harmful − benign`` activation differences on identical inputs, and
"low-dimensional" is judged against a null: the same analysis on two benign fine-tunes that
differ only in seed (``benign − benign``), and on random directions of the same norms.

Functions here take in-memory ``[n, d_model]`` differences per layer (a study's recordings
are small enough; :func:`steerlab.analysis.fit_subspace` streams larger ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from steerlab.analysis.subspace import fit_subspace
from steerlab.vectors import Subspace

FRACTIONS = (0.5, 0.8, 0.9, 0.95)
"""The explained-variance fractions k is reported at (k@50/80/90/95%)."""


@dataclass(frozen=True)
class SpectrumStats:
    """PCA of one set of differences at one layer.

    Attributes:
        n: rows (tokens or examples) fitted.
        evr: explained variance ratio of every component, descending (sums to 1).
        k_at: ``{"50"|"80"|"90"|"95": k}``, the fewest components reaching that fraction.
        separation: ‖mean‖ / √(trace of the covariance): how consistent the shift is.
        mean_norm: ‖mean difference‖ (activation units).
    """

    n: int
    evr: list[float]
    k_at: dict[str, int]
    separation: float
    mean_norm: float

    def top_evr(self, k: int) -> float:
        """Variance fraction of the top ``k`` components."""
        return float(sum(self.evr[:k]))

    def to_dict(self, max_k: int) -> dict[str, object]:
        d = {"n": self.n, "evr": self.evr[:max_k], "k_at": self.k_at}
        return {**d, "separation": self.separation, "mean_norm": self.mean_norm}


def _k_at(evr: torch.Tensor, fraction: float) -> int:
    cum = torch.cumsum(evr.double(), 0)
    return int(torch.searchsorted(cum, torch.tensor(fraction - 1e-9, dtype=cum.dtype))) + 1


def spectrum(diffs: torch.Tensor) -> SpectrumStats:
    """PCA statistics of ``diffs`` ``[n, d_model]`` (n ≥ 2).

    Raises:
        ValueError: fewer than 2 rows, not 2-D, or zero variance.
    """
    if diffs.ndim != 2 or diffs.shape[0] < 2:
        raise ValueError(f"expected [n >= 2, d_model] differences, got {tuple(diffs.shape)}")
    sub = fit_subspace(diffs.double())
    evr = sub.explained_variance_ratio[0].double()
    mean = diffs.double().mean(0)
    spread = float(diffs.double().var(0, unbiased=True).sum())
    return SpectrumStats(
        n=int(diffs.shape[0]),
        evr=[float(x) for x in evr],
        k_at={str(int(f * 100)): _k_at(evr, f) for f in FRACTIONS},
        separation=float(mean.norm()) / math.sqrt(spread) if spread > 0 else 0.0,
        mean_norm=float(mean.norm()),
    )


def norm_matched_random(diffs: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Random-direction control: each row of ``diffs`` ``[n, d_model]`` replaced by a
    uniformly random direction of the same norm (so only the norms are kept)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(diffs.shape, generator=g, dtype=torch.float64)
    noise = noise / noise.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return (noise * diffs.double().norm(dim=1, keepdim=True)).to(diffs.dtype)


def example_means(diffs: torch.Tensor, example_index: torch.Tensor) -> torch.Tensor:
    """Mean over each example's tokens: ``[n_tokens, d]`` rows, ``[n_tokens]`` example ids
    -> ``[n_examples, d]``, one row per distinct id in increasing id order.

    Raises:
        ValueError: ``diffs`` is not 2-D, or ``example_index`` is not one id per row.
    """
    if diffs.ndim != 2 or example_index.shape != (diffs.shape[0],):
        raise ValueError(
            f"expected diffs [n_tokens, d] and example_index [n_tokens], got "
            f"{tuple(diffs.shape)} and {tuple(example_index.shape)}"
        )
    ids, inverse = torch.unique(example_index, sorted=True, return_inverse=True)
    sums = torch.zeros(len(ids), diffs.shape[1], dtype=torch.float64)
    sums.index_add_(0, inverse, diffs.double())
    counts = torch.bincount(inverse, minlength=len(ids)).clamp_min(1).unsqueeze(1)
    return (sums / counts).to(diffs.dtype)


def concentration(signal: SpectrumStats, null: SpectrumStats, k: int) -> dict[str, float]:
    """How much more concentrated ``signal`` is than ``null``:
    ``k90_ratio`` = k@90%(null) / k@90%(signal) (> 1: the signal needs fewer components)
    and ``topk_ratio`` = EVR of the top ``k`` (signal) / (null)."""
    return {
        "k90_ratio": null.k_at["90"] / signal.k_at["90"],
        "topk_ratio": signal.top_evr(k) / max(null.top_evr(k), 1e-30),
        "k": float(k),
    }


def fit_basis(diffs: dict[int, torch.Tensor], max_k: int, **metadata: object) -> Subspace:
    """The top-``max_k`` PCA basis per layer of ``{layer: [n, d_model]}`` differences (fewer
    where the rows allow), as a :class:`Subspace`."""
    k = min(max_k, *(d.shape[0] - 1 for d in diffs.values()), *(d.shape[1] for d in diffs.values()))
    sub = fit_subspace({layer: d.double() for layer, d in diffs.items()}, max_k=max(k, 1))
    return Subspace(
        {layer: b.float() for layer, b in sub.bases.items()},
        {layer: r.float() for layer, r in sub.explained_variance_ratio.items()},
        {layer: m.float() for layer, m in sub.mean.items()},
        **metadata,
    )
