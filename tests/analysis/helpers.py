"""Planted data shared by the analysis and sweep tests."""

from __future__ import annotations

import torch


def _planted_subspace(d: int, k_planted: int, k_total: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k_total, generator=g, dtype=torch.float64))
    return q.T.float()  # [k_total, d], orthonormal; the first k_planted rows are "planted"


def _separable(n=80, d=32, gap=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    pos = torch.randn(n, d, generator=g) + gap * u
    neg = torch.randn(n, d, generator=g) - gap * u
    return pos, neg, u
