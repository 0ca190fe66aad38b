"""Stage train: adapters under adapters/<train key>/<run>/; finished runs are skipped."""

from __future__ import annotations

from steerlab.study.stages import train
from tests.study.micro import BENIGN_RUNS, MAIN_TRAIN_KEY, RUNS


def test_adapters_layout(micro):
    root = micro.out / "adapters" / MAIN_TRAIN_KEY
    assert sorted(p.name for p in root.iterdir()) == sorted(RUNS + BENIGN_RUNS)
    for name in RUNS + BENIGN_RUNS:
        assert (root / name / "manifest.json").is_file()
        assert (root / name / "adapter_model.safetensors").is_file()


def test_rerun_skips_every_run(micro, caplog):
    with caplog.at_level("INFO", logger="steerlab.study"):
        done = train.run(micro)
    assert list(done) == RUNS + BENIGN_RUNS
    assert all(r["skipped"] for r in done.values())
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("train ")] == [
        f"train {name}: reused" for name in RUNS + BENIGN_RUNS
    ]
    assert all(r["loss_last"] is not None for r in done.values())


def test_benign_controls_train_on_safe_responses_only(micro):
    import json

    for name in BENIGN_RUNS:
        manifest = json.loads((micro.adapters_dir() / name / "manifest.json").read_text())
        assert manifest["harmful_fraction"] == 0.0
