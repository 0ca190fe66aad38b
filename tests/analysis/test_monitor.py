"""The projection monitor and activation probe on planted separable data."""

from __future__ import annotations

import pytest
import torch

from steerlab.analysis import (
    ActivationProbe,
    auroc,
    per_response,
    projection_norm,
)
from tests.analysis.helpers import _separable


@pytest.mark.parametrize("method", ["logistic", "projection"])
def test_probe_on_planted_separable_data_has_auroc_one(method):
    pos, neg, _ = _separable()
    probe = ActivationProbe.fit(pos[:60], neg[:60], layer=4, method=method)
    assert probe.train_accuracy > 0.98
    scores = torch.cat([probe.score(pos[60:]), probe.score(neg[60:])])
    assert float(scores.min()) >= 0 and float(scores.max()) <= 100
    assert auroc(scores, [1] * 20 + [0] * 20) > 0.99


def test_projection_norm_and_per_response_pooling():
    pos, _, u = _separable(n=5)
    x = pos.double()
    torch.testing.assert_close(projection_norm(pos, u), (x @ u.double()).abs())
    q = torch.linalg.qr(torch.randn(32, 3, dtype=torch.float64))[0].T
    torch.testing.assert_close(projection_norm(pos, q.float()), (x @ q.T).norm(dim=1))
    s = torch.tensor([1.0, 3.0, 2.0, 10.0])
    idx = torch.tensor([0, 0, 1, 1])
    assert per_response(s, idx).tolist() == [2.0, 6.0]
    assert per_response(s, idx, reduce="max").tolist() == [3.0, 10.0]
    with pytest.raises(ValueError, match="have no recorded token"):
        per_response(s, torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="d_model mismatch"):
        projection_norm(pos, torch.ones(8))
    with pytest.raises(ValueError, match="only one class"):
        auroc([0.1, 0.2], [1, 1])
