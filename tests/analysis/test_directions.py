"""Steering directions, the logistic probe and layer separation on planted data."""

from __future__ import annotations

import torch

from steerlab.analysis import (
    CovarianceAccumulator,
    cosine_similarity,
    difference_in_means,
    logistic_probe,
    pca_center,
    pca_diff,
    separation,
    standardized_difference_in_means,
    strongest_layer,
)
from tests.analysis.helpers import _separable


def _massive(seed, d=64, n=2000):
    g = torch.Generator().manual_seed(seed)
    planted_dir = torch.zeros(d)
    planted_dir[3] = 1.0
    base = torch.randn(2 * n, d, generator=g)
    base[:, 10] = 500.0 + 300.0 * torch.randn(2 * n, generator=g)  # Gemma-style huge dim
    return base[:n] + planted_dir, base[n:], planted_dir, base


def test_massive_dimension_is_stable_and_standardisation_finds_the_planted_direction():
    raw_cos, std_cos = [], []
    for seed in range(10):
        pos, neg, planted_dir, _ = _massive(seed)
        raw_cos.append(float(difference_in_means(pos, neg).normalize().directions[0] @ planted_dir))
        std = standardized_difference_in_means(pos, neg).normalize().directions[0]
        std_cos.append(float(std @ planted_dir))
    assert min(std_cos) > 0.9
    assert sum(raw_cos) / len(raw_cos) < 0.5  # the huge dimension's noise dominates
    # The accumulator stays exact despite the 500x offset (Chan et al. merging).
    base = _massive(0)[3]
    acc = CovarianceAccumulator(64)
    for chunk in base.split(37):
        acc.update(chunk)
    torch.testing.assert_close(acc.covariance(), torch.cov(base.double().T), rtol=1e-9, atol=1e-9)


def test_directions_point_from_negative_to_positive():
    g = torch.Generator().manual_seed(1)
    u = torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0)
    neg = torch.randn(300, 32, generator=g)
    pos = neg + 2.0 * u + 0.1 * torch.randn(300, 32, generator=g)
    for fn in (difference_in_means, pca_diff, pca_center, standardized_difference_in_means):
        v = fn({4: pos}, {4: neg})
        assert v.layers == [4]
        assert float(v.normalize().directions[4] @ u) > 0.9, fn.__name__
    assert pca_diff(pos, neg).metadata["method"] == "pca_diff"


def test_probe_separates_separable_data_with_held_out_accuracy():
    g = torch.Generator().manual_seed(2)
    u = torch.nn.functional.normalize(torch.randn(48, generator=g), dim=0)
    pos = torch.randn(200, 48, generator=g) + 3.0 * u
    neg = torch.randn(200, 48, generator=g) - 3.0 * u
    probe = logistic_probe({2: pos}, {2: neg}, seed=0)
    assert probe.test_accuracy[2] > 0.97 and probe.train_accuracy[2] > 0.97
    assert float(probe.vector.directions[2] @ u) > 0.8
    assert cosine_similarity(probe.vector, difference_in_means({2: pos}, {2: neg}))[2] > 0.8


def test_separation_finds_the_layer_where_the_classes_split():
    pos, neg, _ = _separable(gap=2.0)
    # pure noise: the in-sample difference-in-means direction overfits it to a Cohen's d of
    # about sqrt(2 d / n), 0.4 here (0.9 at n = 80, too close to the bound below)
    g = torch.Generator().manual_seed(3)
    acts_pos = {0: torch.randn(400, 32, generator=g) + 0.01, 5: pos}
    acts_neg = {0: torch.randn(400, 32, generator=g), 5: neg}
    sep = separation(acts_pos, acts_neg)
    assert sep[5] > 3.0 and sep[0] < 1.0
    assert strongest_layer(acts_pos, acts_neg) == 5
