"""Sampling (batched, labelled, resumable) and the evaluation driver with a trivial judge."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import torch

import steerlab.eval.sampling as sampling_mod
from steerlab.eval import (
    EvalResult,
    JudgeItem,
    SamplingConfig,
    Verdict,
    evaluate,
    load_questions,
    read_answers,
    sample_answers,
)
from steerlab.eval.sampling import model_identity
from steerlab.models import tiny
from steerlab.models.hybrid import byte_tokenizer, tiny_gemma3_vlm

CFG = SamplingConfig(n_samples=2, max_new_tokens=6, batch_size=2, seed=5)


@pytest.fixture(scope="module")
def llama_tok():
    return tiny("llama", seed=0), byte_tokenizer()


@pytest.fixture(scope="module")
def qs():
    return load_questions("broad").take(5)


def test_samples_n_answers_per_question_with_a_labelled_header(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    out = tmp_path / "answers.jsonl"
    intervention = {"kind": "ablate", "k": 5, "layers": [1, 2]}
    answers = sample_answers(model, tok, qs, sampling=CFG, out_path=out, intervention=intervention)
    assert [(a.question_id, a.sample) for a in answers] == [(q.id, s) for q in qs for s in (0, 1)]
    assert all(
        1 <= a.n_tokens <= 6 and a.category == qs.by_id(a.question_id).category for a in answers
    )
    header, again = read_answers(out)
    assert again == answers
    assert header["sampling"] == CFG.to_dict()
    assert header["intervention"] == intervention
    assert header["model"]["name_or_path"] == "tiny-llama" and header["model"]["adapter"] is None
    assert header["questions"]["name"] == "broad" and header["questions"]["n"] == 5
    assert SamplingConfig.from_dict(json.loads(json.dumps(CFG.to_dict()))) == CFG


def test_same_seed_same_answers_other_seed_other_answers(llama_tok, qs):
    model, tok = llama_tok
    a = sample_answers(model, tok, qs, sampling=CFG, progress=False)
    b = sample_answers(model, tok, qs, sampling=CFG, progress=False)
    c = sample_answers(model, tok, qs, sampling=SamplingConfig(**{**CFG.to_dict(), "seed": 6}))
    assert a == b
    assert [x.answer for x in a] != [x.answer for x in c]


def test_interrupted_run_resumes_to_the_same_file(llama_tok, qs, tmp_path, monkeypatch):
    model, tok = llama_tok
    full = tmp_path / "full.jsonl"
    sample_answers(model, tok, qs, sampling=CFG, out_path=full, progress=False)

    part = tmp_path / "part.jsonl"
    real = sampling_mod._generate_batch
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling_mod, "_generate_batch", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        sample_answers(model, tok, qs, sampling=CFG, out_path=part, progress=False)
    _, saved = read_answers(part)
    assert len(saved) == 4  # the first batch (2 questions x 2 samples) was flushed

    resumed = []
    monkeypatch.setattr(
        sampling_mod, "_generate_batch", lambda *a, **k: resumed.append(1) or real(*a, **k)
    )
    sample_answers(model, tok, qs, sampling=CFG, out_path=part, progress=False)
    assert len(resumed) == 2  # batches 2 and 3 only
    assert part.read_bytes() == full.read_bytes()


def test_resume_refuses_a_file_made_with_other_settings(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    out = tmp_path / "a.jsonl"
    sample_answers(model, tok, qs[:2], sampling=CFG, out_path=out, progress=False)
    other = SamplingConfig(**{**CFG.to_dict(), "temperature": 1.0})
    with pytest.raises(ValueError, match="different sampling"):
        sample_answers(model, tok, qs[:2], sampling=other, out_path=out, progress=False)
    with pytest.raises(ValueError, match="different intervention"):
        sample_answers(model, tok, qs[:2], sampling=CFG, out_path=out, intervention={"k": 1})


def test_vlm_samples_with_images_and_text_model_refuses_them(llama_tok):
    model, processor = tiny_gemma3_vlm(seed=0)
    mm = load_questions("broad-multimodal").take(2)
    answers = sample_answers(model, processor, mm, sampling=CFG, progress=False)
    assert len(answers) == 4 and all(a.image == mm.by_id(a.question_id).image for a in answers)
    with pytest.raises(ValueError, match="not a multimodal processor"):
        sample_answers(llama_tok[0], llama_tok[1], mm, sampling=CFG)


def test_adapter_identity_has_a_weight_fingerprint(llama_tok):
    from peft import LoraConfig, get_peft_model

    base = tiny("llama", seed=1)
    peft_model = get_peft_model(
        base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    )
    ident = model_identity(peft_model)
    assert ident["adapter"]["r"] == 2 and len(ident["adapter"]["fingerprint"]) == 16
    with torch.no_grad():
        next(p for n, p in peft_model.named_parameters() if "lora_B" in n).add_(1.0)
    assert model_identity(peft_model)["adapter"]["fingerprint"] != ident["adapter"]["fingerprint"]


def test_sampling_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        SamplingConfig(n_samples=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=1.5)


# --------------------------------------------------------------------------- driver


class LengthJudge:
    """Scores an answer by its length (capped at 100); records what it was asked."""

    kind = "rubric"

    def __init__(self, fail_on: str | None = None) -> None:
        self.name = "length"
        self.calls: list[int] = []
        self.fail_on = fail_on

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        self.calls.append(len(items))
        if self.fail_on is not None and any(it.question_id == self.fail_on for it in items):
            raise RuntimeError("endpoint exploded")
        return [
            Verdict(score=min(100.0, 10.0 * len(it.answer)), misaligned=len(it.answer) > 5)
            for it in items
        ]


def test_evaluate_judges_every_answer_caches_and_aggregates_worst_of_n(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    base = sample_answers(model, tok, qs, sampling=SamplingConfig(**{**CFG.to_dict(), "seed": 9}))
    judge = LengthJudge()
    r = evaluate(
        model, tok, qs, judge, sampling=CFG, out_dir=tmp_path, base_answers=base, progress=False
    )
    assert sum(judge.calls) == 10 and r.metric == "judge:length/worst-of-n"
    _, answers = read_answers(tmp_path / "answers.jsonl")
    expected = [
        100.0
        if max(min(100.0, 10.0 * len(a.answer)) for a in answers if a.question_id == q.id) > 50
        else 0.0
        for q in qs
    ]
    assert [u.value for u in r.units] == expected
    assert EvalResult.from_json(tmp_path / "result.json") == r
    assert r.settings["answers"] == "answers.jsonl"  # beside result.json, wherever it moves
    again = LengthJudge()
    r2 = evaluate(
        model, tok, qs, again, sampling=CFG, out_dir=tmp_path, base_answers=base, progress=False
    )
    assert again.calls == [] and r2.mean == r.mean  # all verdicts came from the cache


def test_judge_failures_become_unparsed_and_never_crash(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    judge = LengthJudge(fail_on=qs[0].id)
    r = evaluate(
        model,
        tok,
        qs,
        judge,
        sampling=CFG,
        out_dir=tmp_path,
        aggregate="misaligned-rate",
        progress=False,
    )
    assert r.n_unparsed == 10 and r.n == 0  # one chunk of 16 holds all 10 answers
    assert r.extra["unparsed_reasons"] == {"judge raised RuntimeError: endpoint exploded": 10}
    ok = LengthJudge()
    r2 = evaluate(
        model,
        tok,
        qs,
        ok,
        sampling=CFG,
        out_dir=tmp_path,
        aggregate="misaligned-rate",
        progress=False,
    )
    assert ok.calls == [10] and r2.n == 10  # failures are retried, not cached


def test_evaluate_bad_judges_fail_before_sampling(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    with pytest.raises(ValueError, match="unknown judge 'gpt-judge'"):
        evaluate(model, tok, qs, "gpt-judge", out_dir=tmp_path)

    class Unreachable(LengthJudge):
        def check(self) -> None:
            raise ConnectionError("cannot reach http://127.0.0.1:9/v1")

    with pytest.raises(ConnectionError, match="cannot reach"):
        evaluate(model, tok, qs, Unreachable(), out_dir=tmp_path)
    assert not (tmp_path / "answers.jsonl").exists()
    with pytest.raises(TypeError, match="judge must be"):
        evaluate(model, tok, qs, 42, out_dir=tmp_path)


def test_evaluate_preference_by_name_saves_the_result(llama_tok, qs, tmp_path):
    model, tok = llama_tok
    r = evaluate(model, tok, qs, "preference", out_dir=tmp_path, intervention={"kind": "none"})
    assert r.metric == "preference" and r.n == 5
    assert EvalResult.from_json(tmp_path / "result.json").settings["intervention"] == {
        "kind": "none"
    }
