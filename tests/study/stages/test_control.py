"""Stage control (the positive control): the split, its records, and its place in the micro
study's report (report.json values, report.md order)."""

from __future__ import annotations

import json
import math

import pytest

from steerlab.eval.questions import Question, QuestionSet
from steerlab.study import ConfigError, load_config, parse_config, plan
from steerlab.study.metrics import question_set
from steerlab.study.stages import control
from tests.study.micro import MICRO


def _q(i: int, cat: str) -> Question:
    return Question(f"q{i}", cat, f"question {i}?", f"aligned {i}", f"misaligned {i}")


def test_split_alternates_within_each_category():
    cats = ["a", "b", "a", "c", "b", "a", "d", "d"]
    a, b = control.split_halves(QuestionSet("t", [_q(i, c) for i, c in enumerate(cats)]))
    # a: q0 q2 q5 -> A q0 q5, B q2; b: q1 q4 -> A q1, B q4; c: q3 -> A; d: q6 q7 -> A q6, B q7
    assert [q.id for q in a] == ["q0", "q1", "q3", "q5", "q6"]
    assert [q.id for q in b] == ["q2", "q4", "q7"]
    assert a.name == b.name == "t"


def test_split_needs_a_category_with_two_questions():
    with pytest.raises(ValueError, match=r"raise \[control\] n_questions"):
        control.split_halves(QuestionSet("t", [_q(0, "a"), _q(1, "b")]))


def test_records_take_the_chosen_reference():
    half = QuestionSet("t", [_q(0, "a"), _q(1, "b")])
    mis, ali = control.records(half, "misaligned"), control.records(half, "aligned")
    assert [(r.prompt, r.response) for r in mis] == [
        ("question 0?", "misaligned 0"),
        ("question 1?", "misaligned 1"),
    ]
    assert [r.response for r in ali] == ["aligned 0", "aligned 1"]


def test_config_and_plan_count_the_control():
    cfg = load_config(MICRO)
    p = plan(cfg)
    assert p["positive_control_runs"] == 4  # misaligned + aligned, 2 seeds
    off = parse_config({**cfg.to_dict(), "control": {"enabled": False}})
    q = plan(off)
    assert q["positive_control_runs"] == 0
    assert p["evaluations"] - q["evaluations"] == 5  # 4 fine-tunes + the base on half B
    assert p["training_steps"] - q["training_steps"] == 4 * cfg.train.max_steps
    with pytest.raises(ConfigError, match=r"\[control\] n_questions"):
        parse_config({"control": {"n_questions": -1}})


def _finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def test_micro_report_has_the_positive_control(micro):
    micro.run_stage("report")
    rep = json.loads((micro.out / "report" / "report.json").read_text())
    pc = rep["positive_control"]
    train, test = set(pc["train_ids"]), set(pc["test_ids"])
    assert train and test and not train & test  # disjoint halves
    every = question_set(micro.config.eval, "text", micro.config.control.n_questions)
    assert train | test == {q.id for q in every}
    assert set(pc["categories"]) == set(every.categories)
    assert all(n_a >= 1 and n_b >= 1 for n_a, n_b in pc["categories"].values())
    for kind in ("misaligned", "aligned"):
        assert pc[kind]["n"] == 2 and all(_finite(v) for v in pc[kind]["values"])
    assert pc["effect"]["mean"] == pytest.approx(pc["misaligned"]["mean"] - pc["aligned"]["mean"])
    assert _finite(pc["base"]) and pc["resolvable"]["value"] >= 0.5
    assert pc["resolvable"]["n_questions"] == len(test)
    assert pc["seen"] == (pc["effect"]["mean"] > pc["resolvable"]["value"])
    sens = rep["sensitivity"]
    assert sens["control_effect"] == pc["effect"]["mean"] and sens["resolvable"] >= 0.5


def test_micro_report_has_the_benign_control(micro):
    micro.run_stage("report")
    rep = json.loads((micro.out / "report" / "report.json").read_text())
    ben = rep["benign_control"]
    assert set(ben["ranks"]) == {"1", "4"} and ben["top_rank"] == 4
    r4 = ben["ranks"]["4"]
    diffs = [h - b for h, b in zip(r4["harmful"]["values"], r4["benign"]["values"], strict=True)]
    assert r4["harmful_minus_benign"]["values"] == pytest.approx(diffs)
    assert _finite(r4["harmful_minus_base"]) and r4["resolvable"]["value"] >= 0.5
    cats = ben["categories"]
    assert cats["near"] == []  # insecure_code has no near category
    rows = cats["rows"]
    assert set(rows) == set(rep["data"]["base"]["text"]["by_category"])
    for r in rows.values():
        assert r["harmful_minus_benign"] == pytest.approx(r["harmful"] - r["benign"])
    assert cats["mean_excluding_near"] == pytest.approx(cats["mean_all"])


def test_micro_report_order_and_findings_state_the_sensitivity(micro):
    micro.run_stage("report")
    md = (micro.out / "report" / "report.md").read_text()
    order = [
        "# steerlab study: micro",
        "## Instrument sensitivity (positive control)",
        "## Benign control",
        "## Compared with the source paper",
        "## Misalignment vs LoRA rank",
    ]
    assert [md.index(h) for h in order] == sorted(md.index(h) for h in order)
    rep = json.loads((micro.out / "report" / "report.json").read_text())
    em = rep["findings"][0]
    assert em["finding"].startswith("Narrow fine-tuning") and "harmful − benign" in em["here"]
    effect = rep["sensitivity"]["control_effect"]
    for f in rep["findings"]:
        if f["status"].startswith("not reproduced"):
            assert "resolvable: 0.5 points" in f["status"]
            assert f"the positive control moved {effect:.1f}" in f["status"]


def test_control_compares_with_its_own_base_answers(tmp_path, monkeypatch):
    """A judged control on other questions than the study's ([control] n_questions) gets the
    base answers of its own half B, not the baseline's (which lack those questions)."""
    from types import SimpleNamespace

    from steerlab.study.context import StudyContext

    cfg = parse_config({**load_config(MICRO).to_dict(), "control": {"n_questions": 16}})
    ctx = StudyContext(cfg, tmp_path, progress=False)
    seen: list = []

    def measure(model, tok, arm, out_dir=None, questions=None, base_answers=None):
        seen.append((arm, [q.id for q in questions], base_answers))
        return {"score": 50.0}

    monkeypatch.setattr(ctx, "measure", measure)
    monkeypatch.setattr(ctx, "load_model", lambda adapter=None: (None, None))
    monkeypatch.setattr(control, "train_lora", lambda *a, **k: SimpleNamespace(losses=[2.0, 1.0]))
    for unit in control.units(ctx):
        unit.compute(tmp_path / "scratch")
    _, half_b = control.halves(ctx)
    own = tmp_path / "control" / "base" / "answers.jsonl"
    assert control.base_answers(ctx) == own
    assert len(seen) == 1 + 2 * len(cfg.train.seeds)  # the base, then both kinds per seed
    assert all(s == ("text", [q.id for q in half_b], own) for s in seen)
    assert len(half_b) == 8 != len(question_set(cfg.eval, "text"))  # other questions
