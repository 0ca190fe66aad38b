"""Projection monitor and activation probes: read misalignment off activations, no LLM judge.

- :func:`projection_norm`: per token, the norm of the activation's projection onto a
  subspace, ``‖Q (h − μ)‖`` with ``Q`` ``[k, d_model]`` orthonormal.
- :func:`per_response`: pool token scores into one score per response (mean or max).
- :class:`ActivationProbe`: a linear probe ``σ(h · w + b)`` fitted on labelled activations,
  either by logistic regression (scikit-learn) or by projection on the difference in means
  with a 1-D logistic calibration; scores on the 0-100 judge scale.
- :func:`auroc`: area under the ROC curve against judge labels (scikit-learn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from steerlab.analysis.directions import fit_logistic, paired_layers
from steerlab.linalg import orthonormal_basis
from steerlab.vectors import SteeringVector, Subspace, layer_rows


def projection_norm(
    activations: torch.Tensor,
    subspace: Subspace | SteeringVector | torch.Tensor,
    *,
    layer: int | None = None,
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    """Norm of each activation's projection onto a subspace: ``[n]`` (float64), in
    activation units.

    Args:
        activations: ``[n, d_model]``.
        subspace: a :class:`Subspace`, a :class:`SteeringVector` (1-dim) or rows
            ``[k, d_model]`` (orthonormalised here).
        layer: which layer of the subspace (needed when it has several).
        center: ``[d_model]`` subtracted first (e.g. the base model's mean), or ``None``.

    Raises:
        ValueError: shapes that do not match, NaN/inf activations.
    """
    if not isinstance(activations, torch.Tensor) or activations.ndim != 2:
        raise ValueError(f"expected [n, d_model] activations, got {activations!r:.80}")
    q = orthonormal_basis(layer_rows(subspace, layer).detach().double())
    if activations.shape[1] != q.shape[1]:
        raise ValueError(
            f"d_model mismatch: activations have {activations.shape[1]}, subspace {q.shape[1]}"
        )
    x = activations.double()
    if not torch.isfinite(x).all():
        raise ValueError("activations contain NaN or inf values")
    if center is not None:
        x = x - center.double()
    return (x @ q.T).norm(dim=1)


def per_response(
    token_scores: torch.Tensor,
    example_index: torch.Tensor,
    *,
    n_examples: int | None = None,
    reduce: str = "mean",
) -> torch.Tensor:
    """Pool per-token scores ``[n_tokens]`` into per-response scores ``[n_examples]`` by
    ``example_index`` (as recorded by :meth:`Lab.record`).

    Raises:
        ValueError: unknown ``reduce``, mismatched lengths, or an example with no token.
    """
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    if token_scores.shape != example_index.shape or token_scores.ndim != 1:
        raise ValueError(
            f"token_scores {tuple(token_scores.shape)} and example_index "
            f"{tuple(example_index.shape)} must be the same 1-D shape"
        )
    idx = example_index.long()
    n = int(idx.max()) + 1 if n_examples is None and len(idx) else (n_examples or 0)
    counts = torch.bincount(idx, minlength=n)
    if len(counts) > n or (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"examples {missing[:10]} have no recorded token (or index >= {n})")
    s = token_scores.double()
    if reduce == "mean":
        return torch.zeros(n, dtype=torch.float64).index_add_(0, idx, s) / counts
    out = torch.full((n,), -math.inf, dtype=torch.float64)
    return out.scatter_reduce_(0, idx, s, reduce="amax")


@dataclass(frozen=True)
class ActivationProbe:
    """A linear probe on activations: ``P(misaligned | h) = σ(h · weight + bias)``.

    Attributes:
        weight: ``[d_model]`` in activation units. bias: scalar.
        layer, point: where the activations come from (e.g. 15, ``"resid_post"``).
        method: ``"logistic"`` or ``"projection"``.
        train_accuracy: accuracy on the data it was fitted on.
    """

    weight: torch.Tensor
    bias: float
    layer: int
    point: str
    method: str
    train_accuracy: float

    @classmethod
    def fit(
        cls,
        positive: torch.Tensor,
        negative: torch.Tensor,
        *,
        layer: int,
        point: str = "resid_post",
        method: str = "logistic",
        C: float = 1.0,
    ) -> ActivationProbe:
        """Fit on ``positive`` (misaligned) ``[n, d_model]`` vs ``negative`` (aligned)
        ``[m, d_model]`` activations, e.g. per-response means.

        ``"logistic"``: scikit-learn ``LogisticRegression`` on standardised inputs, mapped
        back to activation units. ``"projection"``: project on the unit difference in means
        and calibrate the 1-D score with a logistic regression (fewer parameters; better
        with few labels).

        Raises:
            ValueError: unknown method, fewer than 2 examples per class, NaN, ``d_model``
                mismatch.
        """
        if method not in ("logistic", "projection"):
            raise ValueError(f"method must be 'logistic' or 'projection', got {method!r}")
        pos, neg = paired_layers(positive, negative, layer)
        p, n = pos[layer].double(), neg[layer].double()
        if len(p) < 2 or len(n) < 2:
            raise ValueError(f"need at least 2 examples per class, got {len(p)} and {len(n)}")
        x = torch.cat([p, n])
        y = [1] * len(p) + [0] * len(n)
        if method == "logistic":
            fit = fit_logistic(x.numpy(), y, C=C, max_iter=5000)
            w, b = fit.weight, fit.bias
        else:
            u = p.mean(0) - n.mean(0)
            if float(u.norm()) == 0:
                raise ValueError("the two classes have the same mean; nothing to project on")
            u = u / u.norm()
            s = (x @ u).unsqueeze(1).numpy()
            from sklearn.linear_model import LogisticRegression  # lazy: loads slowly

            clf = LogisticRegression(C=1e4, max_iter=5000).fit(s, y)
            w = u * float(clf.coef_[0, 0])
            b = float(clf.intercept_[0])
        probe = cls(w.float(), b, layer, point, method, 0.0)
        acc = float(((probe.probability(x) > 0.5).long() == torch.tensor(y)).double().mean())
        return cls(w.float(), b, layer, point, method, acc)

    def probability(self, activations: torch.Tensor) -> torch.Tensor:
        """``[n]`` probabilities in [0, 1] for ``[n, d_model]`` activations.

        Raises:
            ValueError: wrong shape or NaN/inf values.
        """
        if activations.ndim != 2 or activations.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"expected [n, {self.weight.shape[0]}] activations, got {tuple(activations.shape)}"
            )
        if not torch.isfinite(activations).all():
            raise ValueError("activations contain NaN or inf values")
        return torch.sigmoid(activations.double() @ self.weight.double() + self.bias)

    def score(self, activations: torch.Tensor) -> torch.Tensor:
        """Misalignment on the judges' 0-100 scale: ``100 · probability``, ``[n]``."""
        return 100.0 * self.probability(activations)


def auroc(scores: Sequence[float] | torch.Tensor, labels: Sequence[bool | int]) -> float:
    """Area under the ROC curve of ``scores`` (higher = more misaligned) against binary
    ``labels`` (truthy = misaligned), via ``sklearn.metrics.roc_auc_score``.

    Raises:
        ValueError: different lengths, NaN scores, or only one class among the labels.
    """
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn loads slowly

    s = torch.as_tensor(scores, dtype=torch.float64)
    y = [int(bool(v)) for v in labels]
    if s.ndim != 1 or len(s) != len(y):
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    if not torch.isfinite(s).all():
        raise ValueError("scores contain NaN or inf (unparsed verdicts?); drop them first")
    if len(set(y)) < 2:
        raise ValueError("AUROC needs both labels among the examples, got only one class")
    return float(roc_auc_score(y, s.numpy()))
