"""`steerlab study` end to end on a tiny random-init model (configs/micro.toml): the
report, resume after a kill in the middle of training, and a disk that fills up."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import steerlab.study.cache
from steerlab.cli import app

MICRO = Path(__file__).resolve().parents[2] / "configs" / "micro.toml"
PNG = b"\x89PNG\r\n\x1a\n"


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "steerlab.cli", "study", str(MICRO), "--out", str(out), "-q"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """One uninterrupted micro study."""
    out = tmp_path_factory.mktemp("micro-clean")
    start = time.perf_counter()
    proc = subprocess.run(_cmd(out), env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"micro study: {time.perf_counter() - start:.1f} s")
    return out


def _stable(report: dict) -> dict:
    """The report without wall times (everything else must be reproducible)."""
    report = json.loads(json.dumps(report))
    for run in report["data"]["runs"]:
        run.pop("wall_time_s")
    return report


def test_micro_study_writes_the_report(clean):
    rep = clean / "report"
    md = (rep / "report.md").read_text()
    for section in (
        "## Misalignment vs LoRA rank",
        "## Misalignment vs harmful fraction",
        "## The misalignment subspace",
        "## Mitigations",
        "## Compared with the source paper",
    ):
        assert section in md
    report = json.loads((rep / "report.json").read_text())
    assert set(report["summary"]["rank"]["text"]) == {"1", "4"}
    assert set(report["summary"]["fraction"]["text"]) == {"0.5", "1.0"}
    assert len(report["data"]["runs"]) == 6  # 2 ranks x 2 seeds + p=0.5 at r=4 x 2 seeds
    assert len(report["findings"]) == 7
    for f in report["findings"]:
        assert f["status"] and f["here"]
    for name in report["plots"].values():
        data = (rep / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    # mean ± std over the two seeds is what the table shows
    runs = report["data"]["runs"]
    r4 = [r["eval"]["text"]["score"] for r in runs if r["name"] in ("r4-p1-s0", "r4-p1-s1")]
    mean, _ = report["summary"]["rank"]["text"]["4"]
    assert mean == pytest.approx(sum(r4) / 2)
    # no ablation (k=0) and no steering (alpha=0) equal the plain evaluation of the adapter
    for name, m in report["data"]["mitigate"].items():
        run = next(r for r in report["data"]["runs"] if r["name"] == name)
        plain = run["eval"]["text"]["score"]
        assert m["ablate"]["rows"][0]["k"] == 0
        assert m["ablate"]["rows"][0]["score"] == pytest.approx(plain, abs=1e-9)
        assert m["steer"]["rows"][0]["score"] == pytest.approx(plain, abs=1e-9)
    # a rerun reuses every unit and rewrites the same report
    proc = subprocess.run(_cmd(clean), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _stable(json.loads((rep / "report.json").read_text())) == _stable(report)


def test_kill_in_training_then_resume_gives_the_same_report(clean, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            finished = list(out.glob("adapters/*/*/manifest.json"))
            if len(finished) >= 2:
                break
            assert proc.poll() is None, "the study ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("training never produced two adapters")
    finally:
        proc.kill()
        proc.wait()
    assert len(list(out.glob("adapters/*/*/manifest.json"))) < 6, "killed too late"
    assert not (out / "report").exists()
    rerun = subprocess.run(_cmd(out), env=_env(), capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = json.loads((out / "report" / "report.json").read_text())
    reference = json.loads((clean / "report" / "report.json").read_text())
    assert _stable(resumed) == _stable(reference)
    assert not list(out.rglob(".*tmp-*")), "leftovers of the interrupted attempt"


def test_disk_full_mid_run_fails_clearly_and_leaves_no_trusted_partial(
    clean, tmp_path, monkeypatch
):
    out = tmp_path / "full"
    real_write = steerlab.study.cache._write_unit
    calls = {"n": 0}

    def write(path, payload):
        calls["n"] += 1
        if calls["n"] == 3:  # the third unit: half a file, then the disk is full
            path.write_text('{"key": "')
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, payload)

    monkeypatch.setattr(steerlab.study.cache, "_write_unit", write)
    runner = CliRunner()
    stages = "baseline,train,eval"
    result = runner.invoke(app, ["study", str(MICRO), "--out", str(out), "-q", "--stages", stages])
    assert result.exit_code == 2, result.output
    assert "disk is full" in result.output and "rerun" in result.output
    assert not list(out.rglob(".*tmp-*"))
    for unit_dir in list(out.glob("eval/*/*")) + list(out.glob("base/*")):
        assert (unit_dir / "unit.json").is_file(), f"{unit_dir} is a partial unit"
    monkeypatch.setattr(steerlab.study.cache, "_write_unit", real_write)
    result = runner.invoke(app, ["study", str(MICRO), "--out", str(out), "-q", "--stages", stages])
    assert result.exit_code == 0, result.output
    for unit in (clean / "eval").glob("*/text/unit.json"):
        mine = out / "eval" / unit.parent.parent.name / "text" / "unit.json"
        assert json.loads(mine.read_text())["result"] == json.loads(unit.read_text())["result"]
