"""Stage record: acts/<run>/ holds the difference shards and the mean shift; keys stable."""

from __future__ import annotations

import pytest
import torch

from steerlab.hooks.store import ActivationStore
from steerlab.study.stages import record
from steerlab.vectors import SteeringVector, load
from tests.study.micro import CONTRASTS, MAIN_KEYS, RUNS, keys_of


def test_resolve_layers():
    assert record.resolve_layers([-1, 1, 1, 0], 4) == [0, 1, 3]
    with pytest.raises(ValueError, match=r"valid: -4\.\.3"):
        record.resolve_layers([4], 4)


def test_unit_layout(micro):
    units = record.units(micro)
    assert [str(u.path.relative_to(micro.out)) for u in units] == [
        *(f"acts/{r}" for r in RUNS),
        "contrast/base",
        *(f"contrast/{c}" for c in CONTRASTS),
    ]
    for u in units[: len(RUNS)]:
        shift = load(u.path / "mean_shift.safetensors")
        assert isinstance(shift, SteeringVector)
        assert shift.layers == [1, 2]
        store = ActivationStore(u.path / "diff")
        assert sorted({k[0] for k in store.keys}) == [1, 2]
    result = micro.results("record")["acts/r4-p1-s0"]
    assert result["layers"] == [1, 2] and result["n_examples"] == 4
    assert result["n_tokens"] > 0 and set(result["separation"]) == {"1", "2"}


def test_cache_keys_stable(micro):
    first = keys_of(micro, record.units(micro))
    assert keys_of(micro, record.units(micro)) == first
    acts = {k: v for k, v in first.items() if k.startswith("acts/")}
    assert acts == {k: v for k, v in MAIN_KEYS.items() if k.startswith("acts/")}
    assert len(set(first.values())) == len(first)


def test_contrasts_record_identical_tokens_on_both_adapters(micro):
    result = micro.results("record")["contrast/r4-p1-s0"]
    assert (result["a"], result["b"]) == ("r4-p1-s0", "r4-p0-s0")
    assert result["contrasts"] == ["harmful-benign", "harmful-base"]
    for input_set in ("domain", "broad_aligned", "broad_misaligned"):
        hb = ActivationStore(micro.paths.contrast("r4-p1-s0") / input_set / "harmful-benign")
        fb = ActivationStore(micro.paths.contrast("r4-p1-s0") / input_set / "harmful-base")
        assert len(hb) == result["n_tokens"][input_set] > 0
        assert torch.equal(hb.example_index, fb.example_index)
        assert torch.equal(hb.position, fb.position)
        assert float(hb[(2, "resid_post")].norm(dim=1).min()) > 0  # the adapters differ
    # the base model ran once, into contrast/base, and every contrast read it on its tokens
    base = micro.results("record")["contrast/base"]
    assert base["n_tokens"] == result["n_tokens"] and base["layers"] == [1, 2]
    for input_set in ("domain", "broad_aligned", "broad_misaligned"):
        stored = ActivationStore(micro.paths.contrast("base") / input_set)
        fb = ActivationStore(micro.paths.contrast("r4-p1-s0") / input_set / "harmful-base")
        assert torch.equal(stored.example_index, fb.example_index)
        assert torch.equal(stored.position, fb.position)
    null = micro.results("record")["contrast/null-r4-s0-s1"]
    assert (null["a"], null["b"], null["contrasts"]) == ("r4-p0-s0", "r4-p0-s1", ["benign-benign"])
