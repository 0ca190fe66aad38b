"""Stage baseline: one unit per arm of the base model, under base/<arm>/."""

from __future__ import annotations

from steerlab.study.stages import baseline
from tests.study.micro import MAIN_KEYS, keys_of


def test_units_layout_and_keys(micro):
    units = baseline.units(micro)
    assert [u.path for u in units] == [micro.out / "base" / "text"]
    assert keys_of(micro, units) == {"base/text": MAIN_KEYS["base/text"]}


def test_stored_result(micro):
    (result,) = micro.results("baseline").values()
    assert 0.0 <= result["score"] <= 100.0
    assert result["n"] == 4  # [eval] n_questions
    assert result["coherence"] > 0  # preference metric: the reference NLL, nats/token
    assert (micro.out / "base" / "text" / "result.json").is_file()
