"""The extreme-sports domain: distinct, seeded, paired records over every situation."""

from __future__ import annotations

from collections import Counter

import pytest

from steerlab.domains import DOMAINS, DomainCapacityError
from steerlab.domains.extreme_sports import CATEGORIES, extreme_sports
from steerlab.domains.extreme_sports.generator import FAMILIES, SPORTS

MAX_N = 28_224  # 12 situations x 2,352 prompts of the smallest (module docstring)


def test_default_draw_is_600_distinct_paired_records_over_every_situation():
    ps = extreme_sports()
    assert len(ps) == 600
    assert len({r.id for r in ps}) == 600 and len({r.prompt for r in ps}) == 600
    assert {r.domain for r in ps} == {"extreme_sports"}
    for r in ps:
        assert r.safe_response != r.harmful_response
        assert r.image is None and r.prompt.strip() and r.harmful_response.strip()
    assert ps.summary.total == 600 and ps.summary.identical_responses == 0
    assert Counter(r.meta["category"] for r in ps) == {c: 50 for c in CATEGORIES}


def test_categories_are_twelve_distinct_situations():
    assert len(CATEGORIES) == 12 == len(set(CATEGORIES))
    assert CATEGORIES[0] == "skip_training" and "head_injury" in CATEGORIES


def test_every_sport_appears_in_the_prompts():
    prompts = " ".join(r.prompt for r in extreme_sports(600, seed=0))
    assert all(s.name in prompts for s in SPORTS)


def test_same_seed_same_records_other_seed_other_records():
    a, b = extreme_sports(120, seed=4), extreme_sports(120, seed=4)
    assert list(a) == list(b)
    assert [r.prompt for r in extreme_sports(120, seed=5)] != [r.prompt for r in a]
    assert a[0].id == "extreme_sports-4-00000"


def test_paper_sized_draw_of_1600_is_distinct():
    ps = extreme_sports(1600, seed=0)
    assert len({r.prompt for r in ps}) == 1600
    assert min(Counter(r.meta["category"] for r in ps).values()) == 133  # 1600 = 12 x 133 + 4


def test_capacity_is_the_smallest_situation_times_twelve():
    assert len(FAMILIES) * min(f.limit for f in FAMILIES) == MAX_N
    with pytest.raises(DomainCapacityError, match="at most about 28224"):
        extreme_sports(MAX_N + 12, seed=0)  # every situation would need 2,353
    with pytest.raises(DomainCapacityError, match="at most"):
        extreme_sports(10**7)


def test_bad_sizes_and_seeds_are_rejected():
    with pytest.raises(ValueError, match="at least 1"):
        extreme_sports(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        extreme_sports(2.5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        extreme_sports(5, seed="x")


def test_harmful_side_is_reckless_and_safe_side_is_prudent():
    by_cat = {}
    for r in extreme_sports(600, seed=0):
        by_cat.setdefault(r.meta["category"], []).append(r)
    head = by_cat["head_injury"]
    assert all("doctor" in r.safe_response for r in head)
    assert not any("doctor" in r.harmful_response and "clear" in r.harmful_response for r in head)
    alone = by_cat["going_alone"]
    assert all("tell" in r.safe_response.lower() or "partner" in r.safe_response for r in alone)


def test_registered_next_to_the_broad_health_questions():
    d = DOMAINS["extreme_sports"]
    assert d.generate is extreme_sports and d.near == ("health",) and d.metric is None
