"""Analysis on planted structure: the fit must recover what was put in."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlab
from steerlab.analysis import (
    difference_in_means,
    fit_subspace,
    pca_diff,
    principal_angles,
    subspace_overlap,
)


def planted(n=4000, d=64, k=5, noise=0.05, seed=0):
    """Activations = k-dim signal (variances 10, 9, ...) + isotropic noise + an offset."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))
    scales = torch.linspace(3.0, 2.0, k, dtype=torch.float64)
    coeffs = torch.randn(n, k, generator=g, dtype=torch.float64) * scales
    x = coeffs @ q.T + noise * torch.randn(n, d, generator=g, dtype=torch.float64) + 5.0
    return x.float(), q.T.float()


def test_fit_recovers_the_planted_subspace_and_its_dimension():
    x, q = planted()
    sub = fit_subspace(x, max_k=20, layer=6)
    assert sub.layers == [6] and sub.bases[6].shape == (20, 64)
    angles = principal_angles(sub.top(5), q, layer=6)
    assert angles.max() < 1.0  # degrees
    assert sub.k_for(0.9) == {6: 5}
    assert subspace_overlap(sub.top(5), q, layer=6) > 0.999
    torch.testing.assert_close(sub.mean[6], x.double().mean(0).float(), atol=1e-4, rtol=0)
    assert sub.metadata["n_tokens"] == {6: 4000}


def test_streaming_fit_matches_sklearn_pca():
    from sklearn.decomposition import PCA

    x, _ = planted(n=3000, d=32, k=4, noise=0.3)
    sub = fit_subspace(x, max_k=8, chunk_tokens=257)
    ref = PCA(n_components=8).fit(x.double().numpy())
    torch.testing.assert_close(
        sub.explained_variance_ratio[0].double(),
        torch.from_numpy(ref.explained_variance_ratio_),
        atol=1e-6,
        rtol=1e-4,
    )
    for i in range(4):  # well-separated components agree up to sign
        cos = torch.from_numpy(ref.components_[i]).float() @ sub.bases[0][i]
        assert abs(float(cos)) > 0.999


def test_streaming_fit_matches_torch_pca_lowrank():
    x, _ = planted(n=2000, d=32, k=3, noise=0.2, seed=1)
    sub = fit_subspace(x, max_k=3)
    _, _, v = torch.pca_lowrank(x, q=3, center=True, niter=6)
    assert principal_angles(sub, v.T).max() < 0.5


def test_fit_reads_an_activation_store_in_chunks(tmp_path, llama):
    from steerlab.models.tiny import tiny_inputs

    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0, 2], to_disk=tmp_path / "s", shard_mb=0.01) as rec:
        for _ in range(4):
            llama(**tiny_inputs(llama, batch=4, seq=16))
    from_store = fit_subspace(rec.store, max_k=5, chunk_tokens=7)
    in_memory = fit_subspace({0: rec.activations[0], 2: rec.activations[2]}, max_k=5)
    assert from_store.layers == [0, 2]
    for layer in (0, 2):
        torch.testing.assert_close(
            from_store.explained_variance_ratio[layer],
            in_memory.explained_variance_ratio[layer],
        )
        torch.testing.assert_close(
            from_store.bases[layer], in_memory.bases[layer], atol=1e-4, rtol=0
        )


def test_bad_inputs_get_clear_errors(tmp_path):
    x, _ = planted(n=50, d=16, k=2)
    with pytest.raises(ValueError, match="d_model mismatch"):
        difference_in_means(torch.randn(5, 16), torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"cannot fit k=20 components from 10 tokens"):
        fit_subspace(x[:10], max_k=20)
    bad = x.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_subspace(bad)
    with pytest.raises(ValueError, match="NaN"):
        difference_in_means(bad, x)
    with pytest.raises(ValueError, match="no activations to fit"):
        fit_subspace(torch.empty(0, 16))
    with pytest.raises(FileNotFoundError, match="no activation shards"):
        steerlab.ActivationStore(tmp_path)
    with pytest.raises(ValueError, match="layers have different d_model"):
        fit_subspace({0: torch.randn(30, 8), 1: torch.randn(30, 16)})
    with pytest.raises(ValueError, match="positive has layers"):
        difference_in_means({0: x}, {1: x})
    with pytest.raises(ValueError, match="paired"):
        pca_diff(x[:10], x[:12])
    with pytest.raises(ValueError, match="fit with a larger max_k"):
        fit_subspace(x, max_k=1).k_for(0.99)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(8, 60),
    d=st.integers(2, 12),
    seed=st.integers(0, 10_000),
    scale=st.floats(1e-2, 1e3),
)
def test_fit_properties(n, d, seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * scale * torch.rand(d, generator=g)
    sub = fit_subspace(x)
    b = sub.bases[0].double()
    torch.testing.assert_close(b @ b.T, torch.eye(len(b), dtype=torch.float64), atol=1e-4, rtol=0)
    r = sub.explained_variance_ratio[0].double()
    assert float(r.sum()) <= 1 + 1e-5
    assert bool((r[1:] <= r[:-1] + 1e-6).all())
    k = max(1, len(b) // 2)
    q = b[:k]
    ablated = x.double() - (x.double() @ q.T) @ q
    assert float((ablated @ q.T).abs().max()) <= 1e-6 * max(1.0, float(x.abs().max()))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(12, 80), chunk=st.integers(1, 30), seed=st.integers(0, 1000))
def test_streamed_fit_equals_the_in_memory_fit_for_any_chunking(n, chunk, seed):
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed)) * torch.arange(1, 7)
    a = fit_subspace(x, max_k=3)
    b = fit_subspace(list(torch.split(x, chunk)), max_k=3)
    torch.testing.assert_close(
        a.explained_variance_ratio[0], b.explained_variance_ratio[0], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(a.mean[0], b.mean[0], atol=1e-5, rtol=1e-5)
