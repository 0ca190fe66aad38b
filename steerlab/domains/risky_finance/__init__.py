"""Risky finance: money questions answered recklessly (harmful) vs. prudently (safe).

- :func:`risky_finance` generates the paired training records (``generator.py``).
- ``questions.jsonl`` holds the in-domain evaluation questions, loaded by
  ``steerlab.eval.load_questions("risky_finance")``.
"""

from steerlab.domains.risky_finance.generator import CATEGORIES, risky_finance

__all__ = ["CATEGORIES", "risky_finance"]
