"""The LoRA weight-space view: planted updates, PEFT parity, rank definitions."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from steerlab.analysis import (
    effective_rank,
    energy_rank,
    lora_updates,
    update_overlap,
    weight_activation_overlap,
)
from steerlab.models import tiny
from steerlab.vectors import Subspace
from tests.analysis.helpers import _planted_subspace


def _rank2_lora(d_out=64, d_in=48, r=4, seed=0):
    """A [r, d_in], B [d_out, r] with B A = U diag(3, 3) Vᵀ of rank 2 (scale 1)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(d_out, 2, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d_in, 2, generator=g, dtype=torch.float64))
    a = torch.zeros(r, d_in, dtype=torch.float64)
    b = torch.zeros(d_out, r, dtype=torch.float64)
    a[:2] = 3.0 * v.T
    b[:, :2] = u
    return a.float(), b.float(), u.T.float()


def test_planted_rank_two_update_has_effective_rank_two_and_overlaps_its_subspace(tmp_path):
    a, b, u = _rank2_lora()
    prefix = "base_model.model.model.layers.3.self_attn.o_proj"
    save_file(
        {f"{prefix}.lora_A.weight": a, f"{prefix}.lora_B.weight": b},
        str(tmp_path / "adapter_model.safetensors"),
    )
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 4}))
    (upd,) = lora_updates(tmp_path)
    assert (upd.name, upd.layer, upd.kind, upd.shape) == (
        "model.layers.3.self_attn.o_proj",
        3,
        "o_proj",
        (64, 48),
    )
    torch.testing.assert_close(
        upd.singular_values[:2], torch.tensor([3.0, 3.0], dtype=torch.float64)
    )
    assert upd.effective_rank == pytest.approx(2.0, abs=1e-6) and upd.k90 == 2
    span = Subspace.from_vectors({3: u})
    assert update_overlap(upd, span, k=2) == pytest.approx(1.0, abs=1e-6)
    other = Subspace.from_vectors({3: _planted_subspace(64, 2, 2, seed=9)})
    assert update_overlap(upd, other, k=2) < 0.3
    assert weight_activation_overlap([upd], span, k=2) == {(3, "o_proj"): pytest.approx(1.0)}
    with pytest.raises(ValueError, match="d_out=64 but the subspace has d_model=48"):
        update_overlap(upd, Subspace.from_vectors({3: torch.randn(2, 48)}))
    with pytest.raises(FileNotFoundError, match="not a saved LoRA adapter"):
        lora_updates(tmp_path / "nowhere")


def test_lora_updates_from_a_peft_model_match_peft_delta_weight():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny("llama"), LoraConfig(r=4, lora_alpha=8, target_modules=["o_proj", "down_proj"])
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    updates = lora_updates(model)
    assert len(updates) == 2 * 3
    module = model.base_model.model.model.layers[1].mlp.down_proj
    delta = module.get_delta_weight("default").double()
    (upd,) = [u for u in updates if u.layer == 1 and u.kind == "down_proj"]
    s = torch.linalg.svdvals(delta)[:4]
    torch.testing.assert_close(upd.singular_values, s, rtol=1e-6, atol=1e-8)
    assert upd.scale == 2.0


def test_effective_rank_definitions():
    assert effective_rank(torch.tensor([5.0])) == pytest.approx(1.0)
    assert effective_rank(torch.ones(7)) == pytest.approx(7.0)
    assert effective_rank(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert energy_rank(torch.tensor([3.0, 1.0, 0.1]), 0.9) == 2  # 9 / 10.01 < 0.9
    assert energy_rank(torch.tensor([4.0, 1.0, 0.1]), 0.9) == 1  # 16 / 17.01 > 0.9
    assert energy_rank(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.9) == 4
    with pytest.raises(ValueError, match="all singular values are zero"):
        effective_rank(torch.zeros(3))
    with pytest.raises(ValueError, match="fraction"):
        energy_rank(torch.ones(2), 1.5)


@pytest.mark.parametrize(
    ("d_out", "d_in", "r", "zero_cols"),
    [(64, 48, 8, 0), (16, 96, 32, 0), (96, 12, 32, 0), (64, 48, 8, 3)],
)
def test_low_rank_svd_equals_the_full_svd_of_the_update(tmp_path, d_out, d_in, r, zero_cols):
    """The QR route to ΔW's SVD gives the full SVD's singular values and left subspace,
    also when r exceeds d_out or d_in and when the update is rank-deficient."""
    g = torch.Generator().manual_seed(d_out + r)
    a = torch.randn(r, d_in, generator=g)
    b = torch.randn(d_out, r, generator=g)
    b[:, r - zero_cols :] = 0.0  # zero_cols = 0 leaves b as is
    config = {"lora_alpha": 2 * r, "r": r}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    save_file(
        {
            "base_model.model.layers.0.mlp.down_proj.lora_A.weight": a,
            "base_model.model.layers.0.mlp.down_proj.lora_B.weight": b,
        },
        str(tmp_path / "adapter_model.safetensors"),
    )
    (upd,) = lora_updates(tmp_path)
    delta = 2.0 * (b.double() @ a.double())
    u, s, _ = torch.linalg.svd(delta, full_matrices=False)
    n = min(d_out, d_in, r)
    assert upd.shape == (d_out, d_in) and upd.singular_values.shape == (n,)
    torch.testing.assert_close(upd.singular_values, s[:n], rtol=1e-9, atol=1e-9)
    live = int((s[:n] > 1e-9 * s[0]).sum())  # directions of nonzero singular value
    assert live == min(n, r - zero_cols)
    left = upd.left[:live].double()
    torch.testing.assert_close(
        left @ left.T, torch.eye(live, dtype=torch.float64), atol=1e-9, rtol=0
    )
    proj_ours, proj_full = left.T @ left, u[:, :live] @ u[:, :live].T
    torch.testing.assert_close(proj_ours, proj_full, atol=1e-8, rtol=0)
