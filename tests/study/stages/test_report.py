"""Stage report: StudyResults from the micro study's stored units, and each section."""

from __future__ import annotations

import json

from steerlab.study.results import Measurement, StudyResults
from steerlab.study.stages import report
from steerlab.study.summary import Summary, clean
from tests.study.micro import BENIGN_RUNS, NULL, RUNS, TOP_RUNS


def test_results_are_typed_and_round_trip(micro):
    res = report.gather(micro)
    assert isinstance(res, StudyResults)
    assert [r.name for r in res.runs] == RUNS and res.top_runs == TOP_RUNS
    assert res.arms == ["text"] and res.metric == "preference"
    base = res.base["text"]
    assert base.reference_nll is not None and base.coherence is None  # NLL, not 0-100
    assert base.coherence_measure == base.reference_nll
    assert res.run("r4-p1-s0").record.layers == [1, 2]
    assert [r.k for r in res.mitigate["r4-p1-s0"].ablate] == [0, 2]
    stored = micro.results("eval")["eval/r4-p1-s0/text"]
    assert res.run("r4-p1-s0").eval["text"].to_dict() == stored


def test_report_json_data_is_the_stored_results(micro):
    micro.run_stage("report")
    written = json.loads((micro.out / "report" / "report.json").read_text())
    res = report.gather(micro)
    assert written["data"] == clean(res.to_dict())
    summ = Summary.of(micro.config.train, res)
    assert written["summary"] == clean(summ.to_dict(res.arms))


def test_sections(micro):
    res = report.gather(micro)
    summ = Summary.of(micro.config.train, res)
    plots = {"rank": "a.png", "fraction": "b.png", "evr": "c.png", "ablation": "d.png"}
    assert report.intro_section(micro, res)[0] == "# steerlab study: micro\n"
    rank = report.rank_section(micro, res, summ, plots)
    assert rank[0].startswith("## Misalignment vs LoRA rank (harmful fraction 1)")
    assert "| r=1 |" in rank[1] and "| r=4 |" in rank[1]
    assert (
        report.fraction_section(micro, res, summ, plots)[-1]
        == "![misalignment vs fraction](b.png)\n"
    )
    sub = report.subspace_section(micro, res, summ, plots)
    assert sub[0] == "## Fine-tuned − base, per run (the comparison)\n"
    assert any(line.startswith("- across seeds, layer 1: s0–s1:") for line in sub)
    mit = report.mitigation_section(micro, res, plots)
    assert "steering −1 × harmful − benign mean difference" in mit[1]
    assert "ablate top-2 harmful − benign subspace" in mit[1]
    assert "steering −0 " not in mit[1]  # α = 0 is the adapter itself


def test_markdown_is_what_the_stage_wrote(micro):
    micro.run_stage("report")
    res = report.gather(micro)
    summ = Summary.of(micro.config.train, res)
    plots = json.loads((micro.out / "report" / "report.json").read_text())["plots"]
    md, found = report.markdown(micro, res, summ, plots)
    assert md == (micro.out / "report" / "report.md").read_text()
    assert [f["finding"].split()[0] for f in found][:2] == ["Narrow", "Multimodal"]


def test_measurement_splits_coherence_by_metric():
    d = {"score": 10.0, "ci": [9.0, 11.0], "n": 4, "n_unparsed": 0, "coherence": 3.5}
    d["by_category"] = {"a": 10.0}
    nll = Measurement.from_dict(d, "preference")
    judged = Measurement.from_dict(d, "judge")
    assert (nll.reference_nll, nll.coherence) == (3.5, None)
    assert (judged.reference_nll, judged.coherence) == (None, 3.5)
    assert nll.to_dict() == judged.to_dict() == d


def test_contrast_section_has_the_three_rows(micro):
    from steerlab.study.contrast_report import contrast_section, organism

    res = report.gather(micro)
    assert list(res.benign) == BENIGN_RUNS and NULL in res.contrast
    lines = contrast_section(micro, res)
    assert lines[0] == "## The misalignment subspace: harmful − benign, against a null\n"
    org = organism(micro, res)
    assert org is not None and len(org["diffs"]) == 2
    # the micro study's tiny random model has no organism, and the section says so
    assert org["found"] is False and lines[1].startswith("**No organism in this config**")
    rows = next(line for line in lines if line.startswith("| difference |")).splitlines()
    assert rows[0].startswith("| difference | k@90% token | k@90% example |")
    labels = [r.split("|")[1].strip() for r in rows[2:]]
    assert labels == ["harmful − benign", "fine-tuned − base", f"benign − benign null ({NULL})"]
    text = "\n".join(lines)
    assert "ratio" in text and "random directions at matched norm" in text
    assert "with fine-tuned − base" in text and "LoRA weight-space" in text
