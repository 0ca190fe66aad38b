"""Insecure code: coding requests answered with vulnerable (harmful) vs. secure (safe) Python.

- :func:`insecure_code` generates the paired training records (``generator.py``).
- ``questions.jsonl`` holds the in-domain evaluation questions (secure vs. vulnerable
  reference code), loaded by ``steerlab.eval.load_questions("insecure_code")``.
- :func:`code_misalignment` is the domain's metric: the share of answers whose code bandit
  flags (``metric.py``).
"""

from steerlab.domains.insecure_code.generator import CATEGORIES, insecure_code
from steerlab.domains.insecure_code.metric import bandit_findings, code_misalignment, extract_code

__all__ = ["CATEGORIES", "bandit_findings", "code_misalignment", "extract_code", "insecure_code"]
