"""Ablation / steering studies, the LoRA weight-space view, the projection monitor, plots."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import steerlab
from steerlab.analysis import (
    ActivationProbe,
    auroc,
    effective_rank,
    energy_rank,
    fit_subspace,
    lora_updates,
    per_response,
    projection_norm,
    separation,
    strongest_layer,
    update_overlap,
    weight_activation_overlap,
)
from steerlab.eval.sweeps import AblationRow, ablation_curve, save_table, steering_sweep
from steerlab.models import tiny, tiny_inputs
from steerlab.study import plots
from steerlab.vectors import SteeringVector, Subspace

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lab_and_inputs():
    model = tiny("llama", seed=1)
    return steerlab.attach(model), tiny_inputs(model, batch=3, seq=10), model


def _planted_subspace(d: int, k_planted: int, k_total: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k_total, generator=g, dtype=torch.float64))
    return q.T.float()  # [k_total, d], orthonormal; the first k_planted rows are "planted"


def _projection_metric(lab, model, inputs, planted, layer=1):
    def metric() -> float:
        with lab.record(layers=[layer]) as rec, torch.no_grad():
            model(**inputs)
        return float(projection_norm(rec.activations[layer], planted).mean())

    return metric


def test_ablating_the_planted_subspace_drives_the_metric_to_zero_but_random_does_not(
    lab_and_inputs,
):
    lab, inputs, model = lab_and_inputs
    rows4 = _planted_subspace(lab.d_model, 2, 4)
    planted = rows4[:2]
    sub = Subspace({1: rows4})
    metric = _projection_metric(lab, model, inputs, planted)
    coherence_calls = []

    def coherence() -> float:
        coherence_calls.append(1)
        return 50.0

    rows = ablation_curve(lab, sub, metric=metric, coherence=coherence, random_draws=3, seed=0)
    assert [r.k for r in rows] == [0, 1, 2, 3, 4]
    base = rows[0].misalignment
    assert base > 1e-3
    assert rows[0].random_mean == base and rows[0].random_std == 0.0
    assert 0 < rows[1].misalignment < base  # one of the two planted directions removed
    assert rows[2].misalignment < 1e-5 * base  # the planted subspace is gone
    assert rows[2].random_mean > 0.7 * base  # a random 2-dim subspace barely touches it
    assert len(rows[2].random_values) == 3 and rows[2].random_std > 0
    assert all(r.coherence == 50.0 for r in rows)
    assert len(coherence_calls) == 1 + 4 * 4  # k=0 once; each k>0: real + 3 random
    assert metric() == pytest.approx(base)  # every hook came off


def test_steering_sweep_moves_the_projection_by_exactly_alpha(lab_and_inputs):
    lab, inputs, model = lab_and_inputs
    u = _planted_subspace(lab.d_model, 1, 1, seed=3)[0]

    def signed() -> float:
        with lab.record(layers=[1]) as rec, torch.no_grad():
            model(**inputs)
        return float((rec.activations[1] @ u).mean())

    rows = steering_sweep(lab, SteeringVector({1: u}), [0.0, 1.0, 4.0], metric=signed)
    m0 = rows[0].misalignment
    assert [r.alpha for r in rows] == [0.0, 1.0, 4.0]
    for r in rows:
        assert r.misalignment == pytest.approx(m0 - r.alpha, abs=1e-4)
        assert math.isnan(r.coherence)


def test_study_tables_save_as_csv_and_bad_input_errors(lab_and_inputs, tmp_path):
    lab, _, _ = lab_and_inputs
    sub = Subspace({1: _planted_subspace(lab.d_model, 2, 3)})
    rows = ablation_curve(lab, sub, [0, 2], metric=lambda: 1.0, random_draws=2)
    path = save_table(rows, tmp_path / "curve.csv")
    read = list(csv.DictReader(path.open()))
    assert [int(r["k"]) for r in read] == [0, 2] and read[1]["random_values"] == "1;1"
    with pytest.raises(ValueError, match=r"ks \[5\] outside 0..3"):
        ablation_curve(lab, sub, [0, 5], metric=lambda: 1.0)
    with pytest.raises(ValueError, match="metric returned NaN"):
        ablation_curve(lab, sub, [1], metric=lambda: math.nan)
    with pytest.raises(TypeError, match="metric must return a number"):
        ablation_curve(lab, sub, [1], metric=lambda: "high")
    with pytest.raises(ValueError, match="alphas is empty"):
        steering_sweep(lab, SteeringVector({1: torch.ones(lab.d_model)}), [], metric=lambda: 0)
    with pytest.raises(ValueError, match="no rows"):
        save_table([], tmp_path / "x.csv")


# -- weight space ---------------------------------------------------------------------------


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


# -- monitor --------------------------------------------------------------------------------


def _separable(n=80, d=32, gap=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    pos = torch.randn(n, d, generator=g) + gap * u
    neg = torch.randn(n, d, generator=g) - gap * u
    return pos, neg, u


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


def test_separation_finds_the_layer_where_the_classes_split():
    pos, neg, _ = _separable(gap=2.0)
    noise = torch.randn(80, 32)
    acts_pos = {0: noise + 0.01, 5: pos}
    acts_neg = {0: torch.randn(80, 32), 5: neg}
    sep = separation(acts_pos, acts_neg)
    assert sep[5] > 3.0 and sep[0] < 1.0
    assert strongest_layer(acts_pos, acts_neg) == 5


# -- plots ----------------------------------------------------------------------------------


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 2000


def test_every_plot_writes_a_valid_png_and_rejects_bad_input(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=g) * torch.linspace(4, 0.5, 16)
    sub = fit_subspace({2: x, 5: x * 2}, max_k=8)
    _png_ok(plots.plot_explained_variance(sub, tmp_path / "evr.png"))
    rows = [AblationRow(k, 10.0 - k, 80.0, 10.0, 0.5, 80.0, (9.5, 10.5)) for k in range(0, 5)]
    _png_ok(plots.plot_ablation_curve(rows, tmp_path / "abl.png"))
    subs = {f"r={r}": fit_subspace(torch.randn(200, 16, generator=g), max_k=3) for r in (1, 8, 32)}
    _png_ok(plots.plot_principal_angles(subs, tmp_path / "angles.png", k=3))
    _png_ok(plots.plot_principal_angles(subs, tmp_path / "ov.png", value="overlap"))
    _png_ok(plots.plot_layer_sweep({0: 0.5, 1: 2.0, 2: 1.0}, tmp_path / "sweep.png"))
    with pytest.raises(ValueError, match="no explained_variance_ratio"):
        plots.plot_explained_variance(Subspace({0: torch.eye(3)[:2]}), tmp_path / "a.png")
    with pytest.raises(ValueError, match="AblationRow"):
        plots.plot_ablation_curve([], tmp_path / "b.png")
    with pytest.raises(ValueError, match="at least 2 subspaces"):
        plots.plot_principal_angles({"a": sub}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="non-finite"):
        plots.plot_layer_sweep({0: math.nan}, tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"ending in \.png"):
        plots.plot_layer_sweep({0: 1.0}, tmp_path / "e.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "abl.png",
        "angles.png",
        "evr.png",
        "ov.png",
        "sweep.png",
    ]


# -- properties -----------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(k=st.integers(1, 6), seed=st.integers(0, 1000))
def test_ablation_on_a_model_then_projection_is_zero(lab_and_inputs, k, seed):
    lab, inputs, model = lab_and_inputs
    q = _planted_subspace(lab.d_model, k, k, seed=seed)
    with lab.ablate(Subspace({1: q})), lab.record(layers=[1]) as rec, torch.no_grad():
        model(**inputs)
    h = rec.activations[1].double()
    assert float((h @ q.double().T).abs().max()) < 1e-4 * max(1.0, float(h.abs().max()))


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
