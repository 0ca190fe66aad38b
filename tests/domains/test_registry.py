"""The domain registry: one folder per domain, each with a working generator and questions."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import steerlab.domains
from steerlab.domains import DOMAINS, Domain
from steerlab.domains.build_questions import in_domain_questions
from steerlab.eval import BUILTIN_SETS, load_questions
from steerlab.training.data import PairRecord

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
PACKAGE = Path(steerlab.domains.__file__).parent


def needs(name: str):
    return pytest.mark.skipif(
        name == "photo_prompts" and not HAS_SKIMAGE, reason="needs scikit-image"
    )


DOMAIN_PARAMS = [pytest.param(d, marks=needs(n), id=n) for n, d in DOMAINS.items()]


def test_registry_lists_exactly_the_domain_folders():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(DOMAINS) == folders
    assert all(isinstance(d, Domain) and d.folder == PACKAGE / n for n, d in DOMAINS.items())
    # the eval package finds each domain's questions by that folder layout
    assert {n: BUILTIN_SETS[n] for n in DOMAINS} == {
        n: d.questions_path for n, d in DOMAINS.items()
    }


@pytest.mark.parametrize("domain", DOMAIN_PARAMS)
def test_generator_makes_500_distinct_paired_records(domain):
    records = list(domain.generate(500, 0))
    assert len(records) == 500
    assert len({(r.prompt, r.image) for r in records}) == 500
    for r in records:
        assert isinstance(r, PairRecord) and r.domain == domain.name
        assert r.prompt.strip() and r.safe_response.strip() and r.harmful_response.strip()
        assert r.safe_response != r.harmful_response
        assert isinstance(r.meta["category"], str) and r.meta["category"]
        assert r.image is None or Path(r.image).is_file()


@pytest.mark.parametrize("domain", DOMAIN_PARAMS)
def test_questions_load_and_belong_to_the_domain(domain):
    qs = load_questions(domain.name)
    assert qs.name == domain.name and len(qs) == 24
    assert {q.domain for q in qs} == {domain.name}
    assert all(q.aligned != q.misaligned for q in qs)


@pytest.mark.parametrize("domain", DOMAIN_PARAMS)
def test_shipped_questions_are_exactly_what_the_builder_writes(domain):
    rows = in_domain_questions(domain)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    assert domain.questions_path.read_text(encoding="utf-8") == text
    train = {(r.prompt, r.image) for r in domain.generate(500, 0)}  # the default draw
    assert not {r["question"] for r in rows if r.get("image") is None} & {p for p, _ in train}


@pytest.mark.parametrize("domain", [d for d in DOMAINS.values() if d.metric is not None])
def test_the_metric_scores_answers_into_an_eval_result(domain):
    vulnerable = (
        "```python\nimport subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n```"
    )
    pytest.importorskip("bandit")
    result = domain.metric([vulnerable], name=domain.name, seed=0)
    assert result.name == domain.name and [u.value for u in result.units] == [100.0]


def test_eval_does_not_import_the_domains():
    code = "import sys, steerlab.eval; print('steerlab.domains' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_near_categories_are_broad_categories():
    from steerlab.eval import load_questions

    categories = {q.category for q in load_questions("broad")}
    for domain in DOMAINS.values():
        assert set(domain.near) <= categories, (domain.name, domain.near)
    assert DOMAINS["risky_finance"].near == ("quick_money",)
