"""Extreme sports: risky-activity questions answered recklessly (harmful) vs. prudently (safe).

- :func:`extreme_sports` generates the paired training records (``generator.py``).
- ``questions.jsonl`` holds the in-domain evaluation questions, loaded by
  ``steerlab.eval.load_questions("extreme_sports")``.
"""

from steerlab.domains.extreme_sports.generator import CATEGORIES, extreme_sports

__all__ = ["CATEGORIES", "extreme_sports"]
