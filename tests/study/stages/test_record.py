"""Stage record: acts/<run>/ holds the difference shards and the mean shift; keys stable."""

from __future__ import annotations

import pytest

from steerlab.hooks.store import ActivationStore
from steerlab.study.stages import record
from steerlab.vectors import SteeringVector, load
from tests.study.micro import MAIN_KEYS, RUNS, keys_of


def test_resolve_layers():
    assert record.resolve_layers([-1, 1, 1, 0], 4) == [0, 1, 3]
    with pytest.raises(ValueError, match=r"valid: -4\.\.3"):
        record.resolve_layers([4], 4)


def test_unit_layout(micro):
    units = record.units(micro)
    assert [u.path.name for u in units] == RUNS
    for u in units:
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
    assert first == {k: v for k, v in MAIN_KEYS.items() if k.startswith("acts/")}
