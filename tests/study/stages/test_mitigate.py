"""Stage mitigate: benign, steer and ablate units per top run, under mitigate/<kind>/<run>/."""

from __future__ import annotations

import math

from steerlab.study.stages import mitigate
from tests.study.micro import CHANGED_KEYS, MAIN_KEYS, TOP_RUNS, keys_of


def test_units_layout_and_keys(micro):
    keys = keys_of(micro, mitigate.units(micro))
    assert list(keys) == [
        f"mitigate/{kind}/{run}" for run in TOP_RUNS for kind in ("benign", "steer", "ablate")
    ]
    same = {k: v for k, v in keys.items() if k not in CHANGED_KEYS}
    assert same == {
        k: v for k, v in MAIN_KEYS.items() if k.startswith("mitigate/") and k not in CHANGED_KEYS
    }
    assert all(keys[k] != MAIN_KEYS[k] for k in CHANGED_KEYS)


def test_stored_results(micro):
    results = micro.results("mitigate")
    steer = results["mitigate/steer/r4-p1-s0"]
    assert [r["alpha"] for r in steer["rows"]] == [0.0, 1.0]
    ablate = results["mitigate/ablate/r4-p1-s0"]
    assert [r["k"] for r in ablate["rows"]] == [0, 2]
    assert steer["source"] == ablate["source"] == "harmful − benign"
    assert ablate["layers"] == steer["layers"] == [1, 2]
    benign = results["mitigate/benign/r4-p1-s0"]
    assert 0.0 <= benign["text"]["score"] <= 100.0 and benign["loss_last"] is not None
    assert (micro.out / "mitigate" / "benign" / "r4-p1-s0" / "adapter").is_dir()


def test_probe_keeps_the_coherence_field():
    class Ctx:
        def measure(self, model, tok, arm):
            return {"score": 42.0, "coherence": None}

    probe = mitigate._Probe(Ctx(), None, None)
    assert probe.metric() == 42.0
    assert math.isnan(probe.coherence())  # when the metric measures none


def test_the_ablation_k0_row_is_the_eval_stage_result_and_equals_a_fresh_measurement(
    micro, tmp_path, monkeypatch
):
    run = micro.top_runs()[0]
    evaluated = micro.results("eval")[f"eval/{run.name}/text"]
    stored = micro.results("mitigate")[f"mitigate/ablate/{run.name}"]["rows"][0]
    assert stored["k"] == 0
    assert (stored["score"], stored["coherence"]) == (evaluated["score"], evaluated["coherence"])
    calls = []
    measure = micro.measure
    monkeypatch.setattr(micro, "measure", lambda *a, **kw: calls.append(1) or measure(*a, **kw))
    reused = mitigate.ablate_unit(micro, run).compute(tmp_path / "reused")
    monkeypatch.setattr(mitigate, "_evaluated", lambda ctx, run: None)
    fresh = mitigate.ablate_unit(micro, run).compute(tmp_path / "fresh")
    per_k = 1 + micro.config.mitigate.random_draws  # the real ablation and its draws
    assert len(calls) == 2 * len(reused["rows"][1:]) * per_k + 1  # k = 0 once, when fresh
    assert fresh["rows"][0]["score"] == stored["score"]  # measuring k = 0 gives the same
    assert fresh["rows"][0]["coherence"] == stored["coherence"]
    assert fresh["rows"][1:] == reused["rows"][1:]
