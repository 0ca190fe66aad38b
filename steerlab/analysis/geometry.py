"""Comparing subspaces and directions: principal angles, overlap, cosine similarity."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import subspace_angles

from steerlab.vectors import SteeringVector, layer_rows


def principal_angles(a, b, *, layer: int | None = None) -> torch.Tensor:
    """Principal angles between two subspaces, in degrees, ascending: ``[min(k_a, k_b)]``.

    ``a`` and ``b`` are :class:`Subspace`, :class:`SteeringVector` or tensors ``[k, d_model]``
    (rows need not be orthonormal). Uses ``scipy.linalg.subspace_angles`` (Björck & Golub).

    Raises:
        ValueError: ``d_model`` mismatch, or several layers and no ``layer=``.
    """
    qa, qb = layer_rows(a, layer), layer_rows(b, layer)
    if qa.shape[1] != qb.shape[1]:
        raise ValueError(f"d_model mismatch: {qa.shape[1]} vs {qb.shape[1]}")
    radians = subspace_angles(qa.double().T.numpy(), qb.double().T.numpy())
    return torch.from_numpy(np.sort(np.degrees(radians)))


def subspace_overlap(a, b, *, layer: int | None = None) -> float:
    """Mean squared cosine of the principal angles, in [0, 1]: 1 when one subspace contains
    the other, 0 when orthogonal; ``k/d_model`` is the chance level for random subspaces."""
    angles = principal_angles(a, b, layer=layer)
    return float(torch.cos(torch.deg2rad(angles)).pow(2).mean())


def cosine_similarity(a: SteeringVector, b: SteeringVector) -> dict[int, float]:
    """Cosine similarity of two steering vectors at each layer they share.

    Raises:
        ValueError: no shared layer, or ``d_model`` mismatch.
    """
    shared = sorted(set(a.directions) & set(b.directions))
    if not shared:
        raise ValueError(f"no shared layers: {a.layers} vs {b.layers}")
    if a.d_model != b.d_model:
        raise ValueError(f"d_model mismatch: {a.d_model} vs {b.d_model}")
    out = {}
    for layer in shared:
        x, y = a.directions[layer].double(), b.directions[layer].double()
        denom = float(x.norm() * y.norm())
        out[layer] = float(x @ y) / denom if denom > 0 else math.nan
    return out
