"""The study's sensitivity: the smallest difference between two groups of fine-tunes (harmful
and benign, or the positive control's misaligned and aligned) that its seeds and questions
can resolve (issue 11).

Two sources of noise limit what a study can see:

* **training (seeds)**: fine-tunes that differ only in seed score differently. With the std
  over seeds ``s_a``, ``s_b`` of the per-seed scores of the two groups (``n_a``, ``n_b``
  seeds), the standard error of the difference of their means is
  ``se_seed = sqrt(s_a² / n_a + s_b² / n_b)`` (0 with one seed each: unknown, not absent).
* **question sampling**: the questions are a sample of the questions one could ask. The
  per-question difference ``d_q = mean over seeds of a's score on q − mean over seeds of b's
  score on q`` is paired (both groups answer the same questions), and its standard error is
  ``se_question = std_q(d_q) / sqrt(n_q)`` over the ``n_q`` shared questions.

The **resolvable difference** combines them in quadrature, at two standard errors, with a
floor of half a point::

    resolvable = max(0.5, 2 × sqrt(se_seed² + se_question²))

A difference ``mean(a) − mean(b)`` larger than this is ~95 % unlikely to be noise of either
kind. (``d_q`` averages seeds, so some seed noise is counted in both terms: the estimate
errs on the conservative side.)
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from steerlab.eval.result import EvalResult

FLOOR = 0.5
"""The smallest resolvable difference ever claimed, in points (0-100 scale)."""


@dataclass(frozen=True)
class Resolution:
    """The resolvable difference of two groups, and its parts (points, 0-100 scale).

    Attributes:
        value: ``max(0.5, 2 × sqrt(seed_term² + question_term²))``.
        seed_term: standard error from the std over seeds of each group.
        question_term: paired standard error over questions.
        n_seeds: ``(n_a, n_b)`` seeds; n_questions: questions both groups answered.
    """

    value: float
    seed_term: float
    question_term: float
    n_seeds: tuple[int, int]
    n_questions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _mean_by_question(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """``{question: mean over runs}`` of the questions every run answered."""
    shared = set.intersection(*(set(r) for r in runs)) if runs else set()
    return {q: statistics.fmean(r[q] for r in runs) for q in sorted(shared)}


def resolvable_difference(
    a: Sequence[float],
    b: Sequence[float],
    a_questions: Sequence[Mapping[str, float]] = (),
    b_questions: Sequence[Mapping[str, float]] = (),
) -> Resolution:
    """The smallest ``mean(a) − mean(b)`` the study resolves (see the module docstring for
    the formula).

    Args:
        a, b: per-seed scores (0-100) of the two groups (e.g. harmful and benign fine-tunes).
        a_questions, b_questions: per seed, ``{question id: score}`` of each group (empty:
            no question term). A group of one model (the base) is one mapping.

    Raises:
        ValueError: ``a`` or ``b`` is empty, or a score is not finite.
    """
    for name, values in (("a", a), ("b", b)):
        if not values:
            raise ValueError(f"resolvable_difference: group {name} has no scores")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"resolvable_difference: group {name} has a non-finite score")
    seed_term = math.sqrt(_std(a) ** 2 / len(a) + _std(b) ** 2 / len(b))
    question_term, n_q = 0.0, 0
    if a_questions and b_questions:
        qa, qb = _mean_by_question(a_questions), _mean_by_question(b_questions)
        diffs = [qa[q] - qb[q] for q in qa if q in qb]
        n_q = len(diffs)
        question_term = _std(diffs) / math.sqrt(n_q) if n_q > 1 else 0.0
    value = max(FLOOR, 2 * math.hypot(seed_term, question_term))
    return Resolution(value, seed_term, question_term, (len(a), len(b)), n_q)


def per_question(result_file: Path) -> dict[str, float]:
    """``{question id: mean score}`` from a measurement's stored :class:`EvalResult` (a
    question's samples averaged; unparsed units skipped).

    Raises:
        FileNotFoundError: the measurement kept no result file.
    """
    values: dict[str, list[float]] = defaultdict(list)
    for unit in EvalResult.from_json(result_file).units:
        if unit.value is not None:
            values[unit.question_id].append(unit.value)
    return {q: statistics.fmean(v) for q, v in values.items()}
