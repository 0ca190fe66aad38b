"""The misalignment subspace: a one-pass, streaming PCA of activations (or activation
differences), per layer.

Mean and covariance are accumulated in float64 chunk by chunk, merging chunks with Chan et
al.'s parallel update (numerically stable even when a few residual dimensions are hundreds
of times larger than the rest, as in Gemma 3), then eigendecomposed. Memory is
``O(d_model²)`` whatever the number of tokens, so 1M tokens × 576 dims stream from disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch

from steerlab.hooks.store import ActivationStore
from steerlab.vectors import Subspace

Source = torch.Tensor | ActivationStore | Iterable[torch.Tensor]


@dataclass
class CovarianceAccumulator:
    """Running mean and scatter matrix ``Σ (x − μ)(x − μ)ᵀ`` in float64.

    Feed ``[n, d_model]`` chunks with :meth:`update`; read :attr:`mean` and
    :meth:`covariance`.

    Raises:
        ValueError: a chunk of the wrong shape, or with NaN/inf values.
    """

    d_model: int
    n: int = 0

    def __post_init__(self) -> None:
        self.mean = torch.zeros(self.d_model, dtype=torch.float64)
        self.scatter = torch.zeros(self.d_model, self.d_model, dtype=torch.float64)

    def update(self, chunk: torch.Tensor, *, where: str = "activations") -> None:
        if chunk.ndim != 2 or chunk.shape[1] != self.d_model:
            raise ValueError(
                f"{where}: expected [n, {self.d_model}] activations, got {tuple(chunk.shape)}"
            )
        if chunk.shape[0] == 0:
            return
        x = chunk.detach().to("cpu", torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError(f"{where}: activations contain NaN or inf values")
        n_b = x.shape[0]
        mean_b = x.mean(0)
        centred = x - mean_b
        scatter_b = centred.T @ centred
        n = self.n + n_b
        delta = mean_b - self.mean
        self.scatter += scatter_b + torch.outer(delta, delta) * (self.n * n_b / n)
        self.mean += delta * (n_b / n)
        self.n = n

    def covariance(self, center: bool = True) -> torch.Tensor:
        """``[d_model, d_model]`` covariance (``n − 1`` denominator), or the second moment
        ``E[x xᵀ]`` when ``center=False``."""
        if center:
            return self.scatter / max(self.n - 1, 1)
        return (self.scatter + self.n * torch.outer(self.mean, self.mean)) / max(self.n, 1)


def _chunks(source: Source, layer: int, point: str | None, chunk_tokens: int) -> Iterator:
    if isinstance(source, torch.Tensor):
        for start in range(0, max(len(source), 1), chunk_tokens):
            yield source[start : start + chunk_tokens]
    elif isinstance(source, ActivationStore):
        key = (layer, point) if point is not None else layer
        yield from source.iter_chunks(key, chunk_tokens=chunk_tokens)
    else:
        yield from source


def _fit_one(
    source: Source,
    *,
    layer: int,
    point: str | None,
    max_k: int | None,
    center: bool,
    chunk_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    acc: CovarianceAccumulator | None = None
    for chunk in _chunks(source, layer, point, chunk_tokens):
        if not isinstance(chunk, torch.Tensor) or chunk.ndim != 2:
            shape = tuple(chunk.shape) if isinstance(chunk, torch.Tensor) else type(chunk)
            raise ValueError(f"layer {layer}: expected [n, d_model] activations, got {shape}")
        if acc is None:
            acc = CovarianceAccumulator(int(chunk.shape[1]))
        acc.update(chunk, where=f"layer {layer}")
    if acc is None or acc.n == 0:
        raise ValueError(f"layer {layer}: no activations to fit (empty input or store)")
    rank_cap = min(acc.d_model, acc.n - 1 if center else acc.n)
    k = rank_cap if max_k is None else max_k
    if k < 1 or k > rank_cap:
        raise ValueError(
            f"layer {layer}: cannot fit k={k} components from {acc.n} tokens of d_model="
            f"{acc.d_model} (at most {rank_cap}{' after centring' if center else ''})"
        )
    cov = acc.covariance(center)
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    total = evals.sum()
    if total <= 0:
        raise ValueError(f"layer {layer}: activations have zero variance")
    basis = evecs[:, :k].T  # [k, d_model]
    # Deterministic signs: the largest-magnitude coordinate of each component is positive.
    signs = torch.sign(basis.gather(1, basis.abs().argmax(1, keepdim=True)))
    basis = basis * signs
    return basis.float(), (evals[:k] / total).float(), acc.mean.float(), acc.n


def fit_subspace(
    activations: Source | Mapping[int, Source],
    *,
    max_k: int | None = None,
    center: bool = True,
    layer: int = 0,
    point: str | None = None,
    chunk_tokens: int = 65536,
) -> Subspace:
    """PCA subspace per layer from streamed activations (one pass, float64).

    Used on fine-tuned − base activation differences (or harmful − safe), it gives the
    low-rank misalignment subspace of arXiv:2602.16931; ``explained_variance_ratio`` shows
    how many components carry it.

    Args:
        activations: a Tensor ``[n, d_model]`` (stored under ``layer``), an
            :class:`ActivationStore` (every recorded layer; pass ``point`` if it holds
            several hook points), an iterable of ``[m, d_model]`` chunks, or a dict
            ``{layer: any of these}``.
        max_k: number of components kept (default: all with a defined variance).
        center: subtract the mean first (PCA); ``False`` uses the uncentred second moment.
        chunk_tokens: tokens per chunk when reading tensors or stores.

    Returns:
        :class:`Subspace`: ``bases[layer]`` ``[k, d_model]`` orthonormal, sorted by
        explained variance; ``explained_variance_ratio[layer]`` ``[k]`` (fractions of the
        total variance, summing to ≤ 1); ``mean[layer]`` ``[d_model]``; metadata
        ``n_tokens``, ``method``. ``Subspace.k_for(0.9)`` gives k at 90% per layer.

    Raises:
        ValueError: empty input, NaN/inf values, inconsistent ``d_model``, ``max_k`` larger
            than the tokens allow, or an ambiguous store.
    """
    if isinstance(activations, Mapping):
        sources = dict(activations)
    elif isinstance(activations, ActivationStore):
        points = sorted({p for _, p in activations.keys})
        if point is None and len(points) > 1:
            raise ValueError(f"the store holds hook points {points}; pass point=")
        point = point or points[0]
        sources = {lyr: activations for lyr, p in activations.keys if p == point}
    else:
        sources = {layer: activations}
    if not sources:
        raise ValueError("no layers to fit")
    bases, ratios, means, counts = {}, {}, {}, {}
    for lyr, source in sources.items():
        b, r, m, n = _fit_one(
            source, layer=lyr, point=point, max_k=max_k, center=center, chunk_tokens=chunk_tokens
        )
        bases[lyr], ratios[lyr], means[lyr], counts[lyr] = b, r, m, n
    dims = {b.shape[1] for b in bases.values()}
    if len(dims) > 1:
        raise ValueError(f"layers have different d_model: {sorted(dims)}")
    return Subspace(
        bases,
        ratios,
        means,
        method="pca_center" if center else "pca_uncentered",
        n_tokens=counts,
    )
