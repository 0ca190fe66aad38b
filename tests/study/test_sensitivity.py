"""The resolvable difference (steerlab.study.sensitivity) on planted numbers."""

from __future__ import annotations

import math

import pytest

from steerlab.eval.result import EvalResult, ScoredItem
from steerlab.study.sensitivity import per_question, resolvable_difference


def test_seed_and_question_terms_combine_in_quadrature():
    # std over seeds is sqrt(2) in each group: seed term sqrt(2/2 + 2/2) = sqrt(2).
    # Per question, a averages to {q1: 11, q2: 12}, b to {q1: 5, q2: 5}: d = [6, 7],
    # std 0.7071, over sqrt(2) questions: question term 0.5.
    a_q = [{"q1": 10.0, "q2": 14.0}, {"q1": 12.0, "q2": 10.0}]
    b_q = [{"q1": 5.0, "q2": 3.0}, {"q1": 5.0, "q2": 7.0}]
    r = resolvable_difference([10.0, 12.0], [4.0, 6.0], a_q, b_q)
    assert r.seed_term == pytest.approx(math.sqrt(2))
    assert r.question_term == pytest.approx(0.5)
    assert r.value == pytest.approx(2 * math.sqrt(2 + 0.25))  # 3.0
    assert r.n_seeds == (2, 2) and r.n_questions == 2


def test_floor_and_one_seed():
    r = resolvable_difference([50.0], [50.1])
    assert (r.value, r.seed_term, r.question_term, r.n_questions) == (0.5, 0.0, 0.0, 0)


def test_question_term_alone_against_one_base_model():
    # harmful over two seeds identical; base: one model. d = [4, 0, 8]: std 4, SE 4/sqrt(3)
    a_q = [{"x": 14.0, "y": 10.0, "z": 18.0}] * 2
    r = resolvable_difference([14.0, 14.0], [10.0], a_q, [{"x": 10.0, "y": 10.0, "z": 10.0}])
    assert r.seed_term == 0.0
    assert r.value == pytest.approx(2 * 4 / math.sqrt(3))


def test_only_questions_both_groups_answered_count():
    a_q = [{"x": 10.0, "y": 20.0, "extra": 90.0}]
    b_q = [{"x": 0.0, "y": 0.0}]
    r = resolvable_difference([15.0], [0.0], a_q, b_q)
    assert r.n_questions == 2
    assert r.question_term == pytest.approx(5.0)  # d = [10, 20]: std 7.07 / sqrt(2)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [([], [1.0], "group a has no scores"), ([1.0], [math.nan], "group b has a non-finite")],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        resolvable_difference(a, b)


def test_per_question_averages_samples_and_skips_unparsed(tmp_path):
    units = [
        ScoredItem("q1", "c", 10.0, sample=0),
        ScoredItem("q1", "c", 30.0, sample=1),
        ScoredItem("q2", "c", None, sample=0, reason="refused"),
        ScoredItem("q2", "c", 70.0, sample=1),
    ]
    path = EvalResult.from_units(units, name="t", metric="m", n_resamples=10).save(
        tmp_path / "result.json"
    )
    assert per_question(path) == {"q1": 20.0, "q2": 70.0}
