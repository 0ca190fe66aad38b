"""The harmful − benign subspace on PLANTED structure (synthetic activations, no model)."""

from __future__ import annotations

import pytest
import torch

from steerlab.analysis import principal_angles
from steerlab.analysis.contrast import (
    concentration,
    example_means,
    fit_basis,
    norm_matched_random,
    spectrum,
)

D, N, K = 64, 2000, 4


def _planted(seed: int = 0):
    """Base activations, a planted K-dim misalignment subspace M, a planted domain
    direction u (learned by every fine-tune), and small seed noise."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D, K + 1, generator=g, dtype=torch.float64))
    m, u = q[:, :K].T, q[:, K]  # [K, D] orthonormal, u ⟂ M
    # the domain shift depends on the token only: every fine-tune learns it alike
    domain = (3.0 + torch.randn(N, 1, generator=g, dtype=torch.float64)) * 4.0 * u
    misaligned = torch.randn(N, K, generator=g, dtype=torch.float64) @ m

    def finetune(harmful: bool, s: int) -> torch.Tensor:
        gs = torch.Generator().manual_seed(100 + s)
        noise = 0.05 * torch.randn(N, D, generator=gs, dtype=torch.float64)
        shift = domain + noise
        if harmful:
            shift = shift + misaligned
        return shift  # fine-tuned − base, per token

    return m, u, finetune


def test_harmful_minus_benign_recovers_the_planted_subspace_that_finetuned_minus_base_mixes():
    m, u, finetune = _planted()
    harmful, benign = finetune(True, 0), finetune(False, 1)
    hb = fit_basis({0: harmful - benign}, K)
    angles = principal_angles(hb.bases[0], m)
    assert float(angles.max()) < 5.0  # the planted K-dim subspace, recovered
    assert spectrum(harmful - benign).k_at["90"] <= K
    # fine-tuned − base: its top component is the domain direction, not misalignment
    fb = fit_basis({0: harmful}, K)
    assert abs(float(fb.bases[0][0].double() @ u)) > 0.9
    assert float(principal_angles(fb.bases[0], m).max()) > 45.0


def test_benign_minus_benign_null_is_near_isotropic_and_far_less_concentrated():
    _, _, finetune = _planted()
    harmful, benign_a, benign_b = finetune(True, 0), finetune(False, 1), finetune(False, 2)
    null = benign_a - benign_b
    null_stats = spectrum(null)
    iso = spectrum(torch.randn(N, D, generator=torch.Generator().manual_seed(7)))
    assert abs(null_stats.k_at["90"] - iso.k_at["90"]) <= 0.1 * iso.k_at["90"]
    assert null_stats.k_at["90"] > 0.6 * D
    c = concentration(spectrum(harmful - benign_a), null_stats, K)
    assert c["k90_ratio"] > 10 and c["topk_ratio"] > 5


def test_norm_matched_random_keeps_norms_and_spreads_the_variance():
    _, _, finetune = _planted()
    x = finetune(True, 0)
    r = norm_matched_random(x, seed=3)
    torch.testing.assert_close(r.norm(dim=1), x.norm(dim=1))
    assert spectrum(r).k_at["90"] > 0.6 * D > spectrum(x).k_at["90"]


def test_example_means_average_each_examples_tokens():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    idx = torch.tensor([0, 0, 2])
    torch.testing.assert_close(example_means(x, idx), torch.tensor([[2.0, 1.0], [5.0, 5.0]]))


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"expected \[n >= 2, d_model\] differences, got \(1, 8\)"):
        spectrum(torch.randn(1, 8))
    with pytest.raises(ValueError, match=r"got \(8,\)"):
        spectrum(torch.randn(8))
    with pytest.raises(ValueError, match=r"example_index \[n_tokens\], got \(4, 8\) and \(3,\)"):
        example_means(torch.randn(4, 8), torch.zeros(3, dtype=torch.long))
    nan = torch.randn(5, 8)
    nan[2, 3] = float("nan")
    with pytest.raises(ValueError):
        spectrum(nan)
