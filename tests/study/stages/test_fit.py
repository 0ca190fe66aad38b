"""Stage fit: subspace/<run>/subspace.safetensors per run, then geometry/."""

from __future__ import annotations

from steerlab.study.context import Run
from steerlab.study.stages import fit
from tests.study.micro import CONTRASTS, MAIN_KEYS, MICRO, NULL, RUNS, TOP_RUNS, keys_of


def test_units_layout_and_keys(micro):
    keys = keys_of(micro, fit.units(micro))
    assert list(keys) == [
        *(f"subspace/{r}" for r in RUNS),
        "geometry",
        *(f"subspace-contrast/{c}" for c in CONTRASTS),
        "geometry-contrast",
    ]
    old = {k: v for k, v in keys.items() if k.startswith("subspace/") or k == "geometry"}
    assert old == {
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


def test_contrast_fit(micro):
    from steerlab.study import contrast

    fits = micro.results("fit")
    hb = fits["subspace-contrast/r4-p1-s0"]
    assert hb["primary"] == "harmful-benign"
    assert set(hb["contrasts"]) == {"harmful-benign", "harmful-base"}
    c = hb["contrasts"]["harmful-benign"]
    assert set(c["inputs"]) == {"domain", "broad_aligned", "broad_misaligned", "all"}
    assert c["best_layer"] in (1, 2)
    for level in ("token", "example"):
        s = c["inputs"]["all"][level]["2"]
        assert 1 <= s["k_at"]["50"] <= s["k_at"]["80"] <= s["k_at"]["90"] <= s["k_at"]["95"]
        assert abs(sum(s["evr"]) - 1.0) < 1e-6 or len(s["evr"]) == hb["max_k"]
    # pooled examples = domain + both reference sets
    n_ex = [
        c["inputs"][s]["example"]["2"]["n"] for s in ("domain", "broad_aligned", "broad_misaligned")
    ]
    assert c["inputs"]["all"]["example"]["2"]["n"] == sum(n_ex) == 4 + 4 + 4
    assert set(fits[f"subspace-contrast/{NULL}"]["contrasts"]) == {"benign-benign"}
    sub = contrast.load_contrast_subspace(micro, "r4-p1-s0")
    assert sub.layers == [1, 2] and min(sub.k.values()) == 8
    vec = contrast.load_mean_difference(micro, "r4-p1-s0")
    assert vec.layers == [1, 2]


def test_contrast_geometry(micro):
    geo = micro.results("fit")["geometry-contrast"]
    assert geo["k"] == 3 and geo["seeds"]["labels"] == ["s0", "s1"]
    assert set(geo["per_run"]) == set(RUNS)
    for name in TOP_RUNS:
        g = geo["per_run"][name]["2"]
        assert 0.0 <= g["finetuned_minus_base"]["overlap"] <= 1.0
        assert set(g["lora_weights"]) == {"o_proj", "down_proj"}
    assert 0 < geo["chance_overlap"] < 1


def test_export_writes_the_harmful_minus_benign_direction_and_subspace(micro, tmp_path):
    from typer.testing import CliRunner

    from steerlab.cli import app
    from steerlab.vectors import Subspace, load

    args = ["export", str(MICRO), "--out", str(micro.out), "--run", "r4-p1-s0"]
    result = CliRunner().invoke(app, [*args, "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    stem = tmp_path / "r4-p1-s0.harmful_minus_benign"
    assert isinstance(load(f"{stem}.subspace.safetensors"), Subspace)
    assert load(f"{stem}.direction.safetensors").layers == [1, 2]
    assert (tmp_path / "r4-p1-s0.harmful_minus_benign.direction.gguf").is_file()
