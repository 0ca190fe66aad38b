"""Principal angles, subspace overlap and cosine similarity on constructed geometry."""

from __future__ import annotations

import math

import pytest
import torch

from steerlab.analysis import cosine_similarity, principal_angles, subspace_overlap
from steerlab.vectors import SteeringVector


def test_principal_angles_and_overlap_of_planes_at_a_known_angle():
    e = torch.eye(4)
    theta = math.radians(30.0)
    a = e[:2]  # span(e0, e1)
    b = torch.stack([e[0], math.cos(theta) * e[1] + math.sin(theta) * e[2]])
    torch.testing.assert_close(
        principal_angles(a, b), torch.tensor([0.0, 30.0], dtype=torch.float64), atol=1e-6, rtol=0
    )
    assert subspace_overlap(a, b) == pytest.approx((1.0 + math.cos(theta) ** 2) / 2)
    assert subspace_overlap(a, e[2:]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="d_model mismatch: 4 vs 3"):
        principal_angles(a, torch.eye(3))


def test_cosine_similarity_per_shared_layer():
    a = SteeringVector({0: torch.tensor([1.0, 0.0]), 3: torch.tensor([1.0, 1.0])})
    b = SteeringVector({3: torch.tensor([0.0, 2.0]), 5: torch.tensor([1.0, 0.0])})
    assert cosine_similarity(a, b) == {3: pytest.approx(1 / math.sqrt(2))}
    with pytest.raises(ValueError, match="no shared layers"):
        cosine_similarity(SteeringVector({0: torch.ones(2)}), SteeringVector({1: torch.ones(2)}))
