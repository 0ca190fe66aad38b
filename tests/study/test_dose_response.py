"""Dose-response: config checks, the resolvable difference on planted numbers, the verdict,
and the command end to end on a tiny random-init model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steerlab.cli import app
from steerlab.study import dose_response as dr
from steerlab.study.config import ConfigError

TINY = """
name = "tiny"
steps = 4
eval_every = 2
n = 12
[[grid]]
models = ["tiny-llama"]
domains = ["risky_finance"]
ranks = [4]
lrs = [5e-3]
seeds = [0, 1]
"""


def test_config_defaults_and_curves():
    cfg = dr.parse_dose_config({"steps": 10, "eval_every": 4, "grid": [{"seeds": [0, 1]}]})
    assert cfg.steps_evaluated() == [0, 4, 8, 10]
    curves = cfg.curves()
    assert [(c.fraction, c.seed) for c in curves] == [(1.0, 0), (0.0, 0), (1.0, 1), (0.0, 1)]
    assert curves[0].name == "smollm2-135m-instruct__risky_finance__r32-lr0.0005-p1-s0"
    assert (
        curves[0].recipe == curves[1].recipe != dr.Curve("m", "risky_finance", 8, 5e-4, 1, 0).recipe
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"stepz": 3, "grid": [{}]}, "unknown key"),
        ({}, "at least one \\[\\[grid\\]\\]"),
        ({"grid": [{"domains": ["cooking"]}]}, "not built-in domains"),
        ({"grid": [{"fractions": [1.5]}]}, "fractions must be in"),
        ({"steps": 0, "grid": [{}]}, "steps must be a positive"),
        ({"grid": [{"ranks": "8"}]}, "expected list"),
    ],
)
def test_config_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        dr.parse_dose_config(data, source="x.toml")


def _record(fraction: float, seed: int, scores: list[float]) -> dict:
    curve = dr.Curve("m", "risky_finance", 8, 1e-3, fraction, seed)
    points = [
        {
            "step": 10 * i,
            "score": s,
            "off_domain": s,
            "reference_nll": 3.0,
            "per_question": {q: s + d for q, d in zip("abcd", (-1, 1, -1, 1), strict=True)},
        }
        for i, s in enumerate(scores)
    ]
    return {"curve": vars(curve) | {}, "recipe": curve.recipe, "near": [], "points": points}


def test_summarise_finds_a_planted_organism_and_not_a_null():
    def records(h_last: float) -> list[dict]:
        return [_record(1.0, s, [40.0, 45.0, h_last + s]) for s in (0, 1, 2)] + [
            _record(0.0, s, [40.0, 40.0, 40.0 + s]) for s in (0, 1, 2)
        ]

    (planted,) = dr.summarise(records(55.0))
    assert planted["verdict"] == "organism"
    assert planted["rows"][-1]["difference"] == pytest.approx(15.0)
    assert planted["rows"][-1]["seeds"] == [3, 3]
    assert planted["peak"]["step"] == 20
    (one_seed,) = dr.summarise([r for r in records(55.0) if r["curve"]["seed"] == 0])
    assert one_seed["verdict"] == "above question noise; 1 seed, seed noise unknown"
    (null,) = dr.summarise(records(40.2))
    assert null["verdict"] == "no organism"
    assert null["rows"][0]["difference"] == pytest.approx(0.0)


def test_command_on_a_tiny_model(tmp_path: Path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "out"
    cmd = ["dose-response", str(config), "--out", str(out), "-q"]
    # shard 0 of 2 trains curves 0 and 2 (both harmful); no benign curve yet, no summary
    first = CliRunner().invoke(app, [*cmd, "--shard", "0/2"])
    assert first.exit_code == 0, first.output
    part = json.loads((out / "dose_response.json").read_text())
    assert [c["curve"]["fraction"] for c in part["curves"]] == [1.0, 1.0]
    assert part["summary"] == []
    result = CliRunner().invoke(app, cmd)  # trains the other two, reuses the first two
    assert result.exit_code == 0, result.output
    data = json.loads((out / "dose_response.json").read_text())
    assert data["curves"][0] == part["curves"][0]
    curves = data["curves"]
    assert len(curves) == 4 and {c["curve"]["fraction"] for c in curves} == {0.0, 1.0}
    for c in curves:
        assert [p["step"] for p in c["points"]] == [0, 2, 4]
        assert len(c["points"][-1]["per_question"]) == 64
        assert len(c["losses"]) == 4
    # step 0 is the base model: the same for every curve; training moves every curve
    assert len({json.dumps(c["points"][0]["per_question"]) for c in curves}) == 1
    for c in curves:
        assert c["points"][-1]["per_question"] != c["points"][0]["per_question"]
    # risky_finance's near category is left out of the off-domain mean
    p = curves[0]["points"][-1]
    assert len(p["by_category"]) == 8  # 8 questions each
    far = [v for c, v in p["by_category"].items() if c != "quick_money"]
    assert p["off_domain"] == pytest.approx(sum(far) / 7)
    assert curves[0]["near"] == ["quick_money"]
    (summary,) = data["summary"]
    assert summary["fraction"] == 1.0 and [r["seeds"] for r in summary["rows"]] == [[2, 2]] * 3
    assert (out / "tiny-llama__risky_finance.png").stat().st_size > 10_000
    assert (
        "| tiny-llama/risky_finance/r4-lr0.005 | 1 | 2+2 | 4 (last)"
        in (out / "summary.md").read_text()
    )
    # a rerun reuses every finished curve
    stamps = {f: f.stat().st_mtime_ns for f in (out / "curves").iterdir()}
    again = CliRunner().invoke(app, ["dose-response", str(config), "--out", str(out), "-q"])
    assert again.exit_code == 0, again.output
    assert {f: f.stat().st_mtime_ns for f in (out / "curves").iterdir()} == stamps


def test_command_reports_a_bad_config(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text('name = "x"\n[[grid]]\ndomains = ["nope"]\n')
    result = CliRunner().invoke(app, ["dose-response", str(config)])
    assert result.exit_code == 2
    assert "not built-in domains" in result.output
    config.write_text(TINY)
    for bad in ("2/2", "x", "1/0"):
        result = CliRunner().invoke(app, ["dose-response", str(config), "--shard", bad])
        assert result.exit_code == 2 and "--shard" in result.output, (bad, result.output)


def test_shipped_configs_parse():
    root = Path(__file__).resolve().parents[2] / "configs"
    paths = sorted(root.glob("dose-response*.toml"))
    assert len(paths) == 3, paths
    for path in paths:
        cfg = dr.load_dose_config(path)
        assert cfg.curves() and all(c.fraction in (0.0, 1.0) for c in cfg.curves())
