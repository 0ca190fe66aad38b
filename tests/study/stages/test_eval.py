"""Stage eval: one unit per run and arm, under eval/<run>/<arm>/."""

from __future__ import annotations

from steerlab.study.stages import baseline
from steerlab.study.stages import eval as eval_stage
from tests.study.micro import BENIGN_RUNS, MAIN_KEYS, RUNS, keys_of


def test_units_layout_and_keys(micro):
    keys = keys_of(micro, eval_stage.units(micro))
    assert list(keys) == [f"eval/{r}/text" for r in RUNS + BENIGN_RUNS]
    main = {k: v for k, v in keys.items() if k.split("/")[1] in RUNS}
    assert main == {k: v for k, v in MAIN_KEYS.items() if k.startswith("eval/")}


def test_evaluation_units_without_adapter_are_the_baseline(micro):
    units = eval_stage.evaluation_units(micro, micro.paths.base, lambda: None)
    assert keys_of(micro, units) == keys_of(micro, baseline.units(micro))


def test_adapters_change_the_key(micro):
    keys = set(keys_of(micro, eval_stage.units(micro)).values())
    assert len(keys) == len(RUNS + BENIGN_RUNS)
    assert MAIN_KEYS["base/text"] not in keys
