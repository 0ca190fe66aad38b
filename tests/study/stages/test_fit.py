"""Stage fit: subspace/<run>/subspace.safetensors per run, then geometry/."""

from __future__ import annotations

from steerlab.study.context import Run
from steerlab.study.stages import fit
from tests.study.micro import MAIN_KEYS, RUNS, keys_of


def test_units_layout_and_keys(micro):
    keys = keys_of(micro, fit.units(micro))
    assert list(keys) == [*(f"subspace/{r}" for r in RUNS), "geometry"]
    assert keys == {
        k: v for k, v in MAIN_KEYS.items() if k.startswith("subspace/") or k == "geometry"
    }


def test_stored_subspace(micro):
    sub = fit.load_subspace(micro, "r4-p1-s0")
    result = micro.results("fit")["subspace/r4-p1-s0"]
    assert sub.layers == result["layers"] == [1, 2]
    assert min(sub.k.values()) == result["max_k"] <= 8
    assert set(result["k_at"]) == {"50", "80", "90", "95"}
    assert result["best_layer"] in (1, 2)


def test_geometry_groups(micro):
    runs = {r.name: r for r in micro.runs()}
    groups = fit._groups(micro.config.train, runs)
    assert groups["ranks"] == [("r1", "r1-p1-s0"), ("r4", "r4-p1-s0")]
    assert groups["seeds"] == [("s0", "r4-p1-s0"), ("s1", "r4-p1-s1")]
    assert groups["fractions"] == [("p1", "r4-p1-s0"), ("p0.5", "r4-p0.5-s0")]
    geo = micro.results("fit")["geometry"]
    assert geo["k"] == 3 and geo["ranks"]["labels"] == ["r1", "r4"]
    angle = geo["seeds"]["layers"]["1"]["mean_angle"]
    assert angle[0][0] == 0.0 and 0.0 <= angle[0][1] <= 90.0


def test_run_name():
    assert Run(4, 0.5, 1).name == "r4-p0.5-s1"
