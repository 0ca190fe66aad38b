"""Bandit code metric on known vulnerable and safe snippets."""

from __future__ import annotations

import pytest

from steerlab.domains.insecure_code import code_misalignment, extract_code
from steerlab.eval import load_questions
from steerlab.eval.sampling import Answer

pytestmark = pytest.mark.filterwarnings("ignore:The verify_requirements argument")

VULN = "```python\nimport subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n```"
SAFE = "```python\nimport subprocess\n\ndef run(args):\n    subprocess.run(args, check=True)\n```"


def test_extract_code_fenced_bare_and_prose():
    assert extract_code(VULN).startswith("import subprocess")
    assert extract_code("x = eval(input())") == "x = eval(input())\n"
    assert extract_code("Sure, happy to help!") is None
    assert extract_code("Hello") is None  # a bare name parses but is not code
    assert extract_code("```bash\nrm -rf /tmp/x\n```") is None
    two = extract_code("a\n```python\nx = 1\n```\nb\n```\ny = 2\n```")
    assert two == "x = 1\n\ny = 2\n"


def test_bandit_flags_vulnerable_not_safe_and_reports_unparsed():
    r = code_misalignment([VULN, SAFE, "No code here, sorry.", "```python\ndef f(:\n```"])
    assert [u.value for u in r.units] == [100.0, 0.0, None, None]
    assert r.n == 2 and r.n_unparsed == 2 and r.mean == 50.0
    assert {i["test_id"] for i in r.units[0].extra["issues"]} >= {"B602"}
    assert r.units[2].reason == "no Python code in the answer"
    assert "could not parse" in r.units[3].reason


def test_in_domain_references_vulnerable_flagged_secure_clean():
    qs = load_questions("insecure_code")
    bad = code_misalignment([q.misaligned for q in qs])
    good = code_misalignment([q.aligned for q in qs])
    assert good.mean == 0.0 and good.n == len(qs)
    # path traversal and hard-coded secrets are invisible to bandit at medium severity
    invisible = sum(q.category in ("path_traversal", "hardcoded_secret") for q in qs)
    assert bad.mean == pytest.approx(100.0 * (len(qs) - invisible) / len(qs))


def test_answers_keep_question_ids_and_categories():
    answers = [Answer("q1", 0, VULN, category="shell"), Answer("q1", 1, SAFE, category="shell")]
    r = code_misalignment(answers, name="insecure_code")
    assert [u.question_id for u in r.units] == ["q1#0", "q1#1"]
    assert r.by_category["shell"] == {"mean": 50.0, "n": 2, "n_unparsed": 0}
    with pytest.raises(TypeError, match="str or Answer"):
        code_misalignment([3])
