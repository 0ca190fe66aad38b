"""Summaries over seeds for the study report: mean ± std, comparisons within noise, the
runs grouped by rank and by harmful fraction, and Markdown/JSON formatting helpers.

Every entry over seeds is mean ± std (sample std, ``ddof=1``; 0 with one seed).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steerlab.study.results import RunResults, StudyResults

if TYPE_CHECKING:
    from steerlab.study.config import TrainSection

Stat = tuple[float, float, int]
"""``(mean, std, n)`` over seeds (NaN, NaN, 0 when nothing was measured)."""


def ms(values: Sequence[float | None]) -> Stat:
    """Mean, sample std and count of the finite values (``None`` and NaN are skipped)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return math.nan, math.nan, 0
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), std, len(vals)


def fmt(values: Sequence[float | None], digits: int = 1) -> str:
    """``"mean ± std"`` over seeds, or ``"—"`` when nothing was measured."""
    mean, std, n = ms(values)
    if n == 0:
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def above(values: Sequence[float | None], reference: float, margin: float = 0.5) -> str:
    """Compare seeds' ``values`` with ``reference``: ``"higher"`` / ``"lower"`` when the mean
    differs by more than ``max(margin, 2 × std over seeds)`` points, else ``"same"``
    (``"unknown"`` when nothing was measured)."""
    mean, std, n = ms(values)
    if n == 0 or math.isnan(reference):
        return "unknown"
    tol = max(margin, 2 * std)
    if mean > reference + tol:
        return "higher"
    if mean < reference - tol:
        return "lower"
    return "same"


def clean(obj: Any) -> Any:
    """JSON without NaN/inf (they become null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Summary:
    """The runs of the rank sweep and of the fraction sweep, and their scores per arm.

    Attributes:
        by_rank: ``{rank: runs at the rank-sweep fraction}``.
        by_fraction: ``{fraction: runs at the fraction-sweep rank}``.
        rank: ``{arm: {rank: (mean, std, n)}}``; fraction: ``{arm: {fraction: ...}}``.
    """

    by_rank: dict[int, list[RunResults]]
    by_fraction: dict[float, list[RunResults]]
    rank: dict[str, dict[int, Stat]]
    fraction: dict[str, dict[float, Stat]]

    @staticmethod
    def scores(runs: Sequence[RunResults], arm: str) -> list[float | None]:
        return [r.eval[arm].score for r in runs]

    @staticmethod
    def coherence(runs: Sequence[RunResults]) -> list[float | None]:
        """The text arm's coherence measure of each run (see :class:`Measurement`)."""
        return [r.eval["text"].coherence_measure for r in runs]

    @classmethod
    def of(cls, t: TrainSection, res: StudyResults) -> Summary:
        by_rank = {
            r: [x for x in res.runs if x.rank == r and x.fraction == t.rank_sweep_fraction]
            for r in t.ranks
        }
        by_fraction = {
            p: [x for x in res.runs if x.fraction == p and x.rank == t.fraction_sweep_rank]
            for p in t.harmful_fractions
        }
        rank = {a: {r: ms(cls.scores(v, a)) for r, v in by_rank.items()} for a in res.arms}
        fraction = {a: {p: ms(cls.scores(v, a)) for p, v in by_fraction.items()} for a in res.arms}
        return cls(by_rank, by_fraction, rank, fraction)

    def to_dict(self, arms: Sequence[str]) -> dict[str, Any]:
        """``report.json``'s ``summary``: ``[mean, std]`` per arm and rank / fraction."""
        return {
            "rank": {arm: {str(k): v[:2] for k, v in self.rank[arm].items()} for arm in arms},
            "fraction": {
                arm: {str(k): v[:2] for k, v in self.fraction[arm].items()} for arm in arms
            },
        }
