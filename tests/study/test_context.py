"""StudyContext: every output path defined once, and cache keys bit-identical to the ones
the code before the stages split computed (so existing run directories are reused)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from steerlab.study import StudyContext, StudyPaths, load_config
from steerlab.study.context import Run
from tests.study.micro import CHANGED_KEYS, MAIN_KEYS, MAIN_TRAIN_KEY, MICRO

STEERLAB = Path(__file__).resolve().parents[2] / "steerlab"


def test_paths_layout():
    p = StudyPaths(Path("/o"))
    assert p.config == Path("/o/config.json")
    assert p.log == Path("/o/study.log")
    assert p.model_info == Path("/o/model.json")
    assert p.base("text") == Path("/o/base/text")
    assert p.base_answers("text") == Path("/o/base/text/answers.jsonl")
    assert p.eval("r1-p1-s0", "multimodal") == Path("/o/eval/r1-p1-s0/multimodal")
    assert p.adapters("abc") == Path("/o/adapters/abc")
    assert p.acts("r1-p1-s0") == Path("/o/acts/r1-p1-s0")
    assert p.acts_result("r1-p1-s0") == Path("/o/acts/r1-p1-s0/unit.json")
    assert p.mean_shift("r1-p1-s0") == Path("/o/acts/r1-p1-s0/mean_shift.safetensors")
    assert p.subspace("r4-p1-s0") == Path("/o/subspace/r4-p1-s0/subspace.safetensors")
    assert p.geometry == Path("/o/geometry")
    assert p.mitigate("steer", "r4-p1-s0") == Path("/o/mitigate/steer/r4-p1-s0")
    assert p.report == Path("/o/report")
    assert p.export == Path("/o/export")
    assert p.control("misaligned-s0") == Path("/o/control/misaligned-s0")
    assert p.result(p.control("base")) == Path("/o/control/base/result.json")


@pytest.mark.parametrize("name", ["subspace.safetensors", "mean_shift.safetensors"])
def test_each_path_is_spelt_once(name):
    """The file names of the study's outputs appear in code only in study/context.py."""
    files = [*(STEERLAB / "study").rglob("*.py"), STEERLAB / "cli.py"]
    spelt = []
    for f in files:
        code = [ln for ln in f.read_text().splitlines() if f'"{name}"' in ln]
        if code:
            spelt.append(f.relative_to(STEERLAB).as_posix())
    assert spelt == ["study/context.py"]


def test_keys_need_no_model_where_no_input_file(tmp_path):
    ctx = StudyContext(load_config(MICRO), tmp_path, progress=False)
    assert ctx.train_key() == MAIN_TRAIN_KEY
    assert ctx.adapters_dir() == tmp_path / "adapters" / MAIN_TRAIN_KEY
    assert ctx.eval_key("text", None) == MAIN_KEYS["base/text"]
    with pytest.raises(FileNotFoundError, match="train stage"):
        ctx.adapter(Run(1, 1.0, 0))


def test_arms_from_model_info_without_loading(tmp_path):
    ctx = StudyContext(load_config(MICRO), tmp_path, progress=False)
    ctx.paths.model_info.write_text(json.dumps({"name": "tiny-llama", "takes_images": True}))
    assert ctx.arms() == ["text", "multimodal"]


def test_every_key_equals_main(micro):
    by_kind = {
        "acts": micro.record_key,
        "subspace": micro.fit_key,
        "mitigate/benign": micro.benign_key,
        "mitigate/steer": micro.steer_key,
        "mitigate/ablate": micro.ablate_key,
    }
    runs = {r.name: r for r in micro.runs()}
    for path, key in MAIN_KEYS.items():
        kind, _, rest = path.rpartition("/")
        if path in CHANGED_KEYS:  # steer/ablate now use harmful − benign (issue 14)
            assert by_kind[kind](runs[rest]) != key, path
        elif path == "geometry":
            assert micro.geometry_key() == key
        elif path == "base/text":
            assert micro.eval_key("text", None) == key
        elif path.startswith("eval/"):
            run = path.split("/")[1]
            assert micro.eval_key("text", micro.adapter(runs[run])) == key, path
        else:
            assert by_kind[kind](runs[rest]) == key, path


def test_unwritable_out_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="not writable"):
        StudyContext(load_config(MICRO), blocker / "sub")


def _contrast_base_key(out: Path, takes_images: bool, image_questions: str | None) -> str:
    cfg = load_config(MICRO)
    if image_questions is not None:
        cfg = replace(cfg, eval=replace(cfg.eval, multimodal_questions=image_questions))
    ctx = StudyContext(cfg, out, progress=False)
    info = {"name": cfg.model.name, "takes_images": takes_images}
    ctx.paths.model_info.write_text(json.dumps(info))
    return ctx.contrast_base_key()


def test_contrast_keys_follow_the_image_questions(tmp_path):
    """The contrasts record image + text inputs when the model takes images: their key
    changes with the image questions then, and stays as it was for a text model."""
    builtin = Path(__file__).resolve().parents[2] / "steerlab/eval/data/broad-multimodal.jsonl"
    subset = tmp_path / "eight.jsonl"
    subset.write_text("".join(builtin.read_text().splitlines(keepends=True)[:8]))
    text_default = _contrast_base_key(tmp_path / "a", False, None)
    assert text_default == "d34e82937deae824"  # the key before image questions were in it
    assert _contrast_base_key(tmp_path / "b", False, str(subset)) == text_default
    mm_default = _contrast_base_key(tmp_path / "c", True, None)
    mm_subset = _contrast_base_key(tmp_path / "d", True, str(subset))
    assert len({text_default, mm_default, mm_subset}) == 3
