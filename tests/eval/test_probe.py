"""The activation-probe judge: the eval Judge protocol, end to end on a tiny model."""

from __future__ import annotations

import pytest
import torch

from steerlab.eval.probe import ProbeJudge, probe_auroc
from steerlab.eval.types import Judge, JudgeItem, Verdict
from steerlab.models import load_model


@pytest.fixture(scope="module")
def tiny_lm():
    return load_model("tiny-llama")


def _items(kind: str, n: int, offset: int = 0) -> list[JudgeItem]:
    g = torch.Generator().manual_seed(offset + (0 if kind == "bad" else 1))
    letters = "XYZQ" if kind == "bad" else "abcd"
    items = []
    for i in range(n):
        picks = torch.randint(0, 4, (12,), generator=g).tolist()
        answer = "".join(letters[p] for p in picks)
        items.append(JudgeItem(question_id=f"{kind}{offset + i}", question=f"Q{i}?", answer=answer))
    return items


def test_probe_judge_fits_on_labels_and_separates_held_out_answers(tiny_lm):
    model, tok = tiny_lm
    train = _items("bad", 12) + _items("good", 12)
    labels = [True] * 12 + [False] * 12
    judge = ProbeJudge.fit(model, tok, train, labels, layer=-1, method="logistic")
    assert isinstance(judge, Judge)
    assert judge.name == "probe-logistic-L2-resid_post"
    test = _items("bad", 6, offset=100) + _items("good", 6, offset=100)
    verdicts = judge.judge(test)
    assert len(verdicts) == len(test) and all(isinstance(v, Verdict) for v in verdicts)
    assert all(0 <= v.score <= 100 and v.misaligned == (v.score > 50) for v in verdicts)
    assert probe_auroc(judge, test, [True] * 6 + [False] * 6) > 0.95


def test_probe_judge_scores_match_the_probe_on_recorded_means(tiny_lm):
    from steerlab.hooks import encode_examples, response_means

    model, tok = tiny_lm
    train = _items("bad", 6) + _items("good", 6)
    judge = ProbeJudge.fit(
        model, tok, train, [1] * 6 + [0] * 6, layer=1, method="projection", threshold=30.0
    )
    examples = encode_examples(tok, [i.question for i in train], [i.answer for i in train])
    means = response_means(model, examples, layer=1)
    expected = judge.probe.score(means)
    got = torch.tensor([v.score for v in judge.judge(train)], dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_a_bad_item_is_an_unparsed_verdict_not_a_crash(tiny_lm):
    model, tok = tiny_lm
    train = _items("bad", 4) + _items("good", 4)
    judge = ProbeJudge.fit(model, tok, train, [1] * 4 + [0] * 4, layer=1, max_length=64)
    items = [
        JudgeItem("e", "Q?", ""),  # empty answer
        train[0],
        JudgeItem("i", "Q?", "fine", image="cat.png"),
        JudgeItem("long", "x" * 200, "answer"),  # the prompt fills max_length
    ]
    verdicts = judge.judge(items)
    assert [v.unparsed for v in verdicts] == [True, False, True, True]
    assert "empty" in verdicts[0].reason and "image" in verdicts[2].reason
    with pytest.raises(ValueError, match="could not be scored"):
        probe_auroc(judge, items, [1, 1, 0, 0])
    with pytest.raises(ValueError, match="8 items but 2 labels"):
        ProbeJudge.fit(model, tok, train, [1, 0], layer=1)
