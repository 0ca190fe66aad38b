"""Ablation and steering sweeps on a tiny model, and the CSV tables they save."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlab
from steerlab.analysis import (
    projection_norm,
)
from steerlab.eval.sweeps import ablation_curve, save_table, steering_sweep
from steerlab.models import tiny, tiny_inputs
from steerlab.vectors import SteeringVector, Subspace
from tests.analysis.helpers import _planted_subspace


@pytest.fixture(scope="module")
def lab_and_inputs():
    model = tiny("llama", seed=1)
    return steerlab.attach(model), tiny_inputs(model, batch=3, seq=10), model


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


def test_a_known_baseline_replaces_the_k0_measurement_and_nothing_else(lab_and_inputs):
    lab, inputs, model = lab_and_inputs
    sub = Subspace({1: _planted_subspace(lab.d_model, 2, 3)})
    metric = _projection_metric(lab, model, inputs, sub.bases[1][:2])
    calls = []

    def counted() -> float:
        calls.append(1)
        return metric()

    measured = ablation_curve(lab, sub, [0, 1, 2], metric=counted, random_draws=2, seed=4)
    n_measured = len(calls)
    base = measured[0].misalignment
    known = ablation_curve(
        lab, sub, [0, 1, 2], metric=counted, random_draws=2, seed=4, baseline=(base, 7.5)
    )
    assert len(calls) - n_measured == n_measured - 1  # only the k = 0 call is skipped
    assert known[0].misalignment == base and known[0].coherence == 7.5
    assert known[0].random_values == (base, base) and known[0].random_coherence == 7.5
    # the ablated rows are bit for bit the same (coherence was not measured: NaN)
    assert [(r.k, r.misalignment, r.random_values) for r in known[1:]] == [
        (r.k, r.misalignment, r.random_values) for r in measured[1:]
    ]
    with pytest.raises(ValueError, match="baseline returned NaN"):
        ablation_curve(lab, sub, [0], metric=counted, baseline=(math.nan, 1.0))


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
