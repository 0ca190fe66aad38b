"""The study's results, typed: what the report reads, built from the stored unit results.

:meth:`StudyResults.to_dict` gives back exactly the JSON the units stored (the ``data``
section of ``report.json``), so the dataclasses are a typed view, not a new format.

The stored results keep one key, ``"coherence"``, for the metric's coherence measure: under
the judge-free preference metric it is the mean negative log-likelihood per token of the
aligned reference answers (nats; lower is better), under an LLM judge the judge's mean
coherence (0-100). The dataclasses split it into ``reference_nll`` and ``coherence``
accordingly (one of them is ``None``); :attr:`Measurement.coherence_measure` is whichever the
metric gives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _split(value: float | None, metric: str) -> tuple[float | None, float | None]:
    """``(reference_nll, coherence)`` from a stored ``"coherence"`` field."""
    return (value, None) if metric == "preference" else (None, value)


class _CoherenceMeasure:
    """``reference_nll`` / ``coherence`` fields, one of them set by the metric."""

    reference_nll: float | None
    coherence: float | None

    @property
    def coherence_measure(self) -> float | None:
        """The metric's coherence measure (reference NLL or judge coherence)."""
        return self.reference_nll if self.reference_nll is not None else self.coherence


@dataclass(frozen=True)
class Measurement(_CoherenceMeasure):
    """One misalignment measurement (one model, one arm).

    Attributes:
        score: misalignment, 0-100 (higher is more misaligned).
        ci: bootstrap 95% interval ``[lo, hi]``.
        n: scored items; n_unparsed: items the metric could not score.
        reference_nll: mean NLL per token of the aligned references (nats), preference
            metric only.
        coherence: the judge's mean coherence (0-100), judge metric only.
        by_category: mean score per question category.
    """

    score: float
    ci: list[float]
    n: int
    n_unparsed: int
    reference_nll: float | None
    coherence: float | None
    by_category: dict[str, float]

    @classmethod
    def from_dict(cls, d: dict[str, Any], metric: str) -> Measurement:
        nll, coherence = _split(d.get("coherence"), metric)
        return cls(d["score"], d["ci"], d["n"], d["n_unparsed"], nll, coherence, d["by_category"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "ci": self.ci,
            "n": self.n,
            "n_unparsed": self.n_unparsed,
            "coherence": self.coherence_measure,
            "by_category": self.by_category,
        }


@dataclass(frozen=True)
class RecordResult:
    """The record stage's result for one run (see :func:`stages.record.record_differences`)."""

    layers: list[int]
    point: str
    n_examples: int
    n_tokens: int
    d_model: int
    mean_shift_norm: dict[str, float]
    separation: dict[str, float]


@dataclass(frozen=True)
class FitResult:
    """The fit stage's result for one run (see :func:`stages.fit.fit_run`)."""

    layers: list[int]
    max_k: int
    evr: dict[str, list[float]]
    k_at: dict[str, dict[str, int]]
    best_layer: int


@dataclass(frozen=True)
class RunResults:
    """One fine-tune: its grid point, training curve, evaluation per arm, record and fit."""

    name: str
    rank: int
    fraction: float
    seed: int
    losses: list[float] | None
    wall_time_s: float | None
    eval: dict[str, Measurement]
    record: RecordResult
    fit: FitResult

    @property
    def final_loss(self) -> float | None:
        return (self.losses or [None])[-1]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("name", "rank", "fraction", "seed", "losses")}
        return {
            **d,
            "wall_time_s": self.wall_time_s,
            "eval": {arm: m.to_dict() for arm, m in self.eval.items()},
            "record": asdict(self.record),
            "fit": asdict(self.fit),
        }


@dataclass(frozen=True)
class BenignResult:
    """Benign narrow fine-tuning of one adapter: its evaluation per arm and its losses."""

    eval: dict[str, Measurement]
    loss_first: float | None
    loss_last: float | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {arm: m.to_dict() for arm, m in self.eval.items()}
        return {**out, "loss_first": self.loss_first, "loss_last": self.loss_last}


@dataclass(frozen=True)
class SteerRow(_CoherenceMeasure):
    """Misalignment under steering with −α × the mean shift."""

    alpha: float
    score: float
    reference_nll: float | None
    coherence: float | None


@dataclass(frozen=True)
class AblateRow(_CoherenceMeasure):
    """Misalignment under top-k ablation, and the random-subspace control's."""

    k: int
    score: float
    reference_nll: float | None
    coherence: float | None
    random_mean: float | None
    random_std: float | None
    random_coherence: float | None


def _coherence_key(row: Any) -> dict[str, Any]:
    d = asdict(row)
    nll, coherence = d.pop("reference_nll"), d.pop("coherence")
    d["coherence"] = nll if nll is not None else coherence
    return d


@dataclass(frozen=True)
class Mitigations:
    """The three mitigations of one top run."""

    benign: BenignResult
    steer_layers: list[int]
    steer: list[SteerRow]
    ablate_layers: list[int]
    ablate: list[AblateRow]
    source: str | None = None
    """What the steering direction and ablated subspace are differences of (``None``:
    stored before it was recorded, fine-tuned − base)."""

    def to_dict(self) -> dict[str, Any]:
        steer = {"layers": self.steer_layers, "rows": [_coherence_key(r) for r in self.steer]}
        ablate = {"layers": self.ablate_layers, "rows": [_coherence_key(r) for r in self.ablate]}
        if self.source is not None:
            steer["source"] = ablate["source"] = self.source
        return {"benign": self.benign.to_dict(), "steer": steer, "ablate": ablate}

    @classmethod
    def from_stored(cls, stored: dict[str, Any], arms: list[str], metric: str) -> Mitigations:
        """From ``{"benign": ..., "steer": ..., "ablate": ...}`` unit results."""
        b, s, a = stored["benign"], stored["steer"], stored["ablate"]
        benign = BenignResult(
            {arm: Measurement.from_dict(b[arm], metric) for arm in arms},
            b.get("loss_first"),
            b.get("loss_last"),
        )
        steer = [
            SteerRow(r["alpha"], r["score"], *_split(r["coherence"], metric)) for r in s["rows"]
        ]
        ablate = [
            AblateRow(
                r["k"],
                r["score"],
                *_split(r["coherence"], metric),
                r["random_mean"],
                r["random_std"],
                r["random_coherence"],
            )
            for r in a["rows"]
        ]
        source = s.get("source")
        return cls(benign, s["layers"], steer, a["layers"], ablate, source)


@dataclass(frozen=True)
class StudyResults:
    """Every stage's stored results, typed (what the report reads).

    Attributes:
        config: the study's config as a dict (:meth:`StudyConfig.to_dict`).
        metric: ``"preference"`` or ``"judge"``.
        arms: ``["text"]`` or ``["text", "multimodal"]``.
        runs: every fine-tune of the sweeps, in grid order.
        base: the base model's measurement per arm.
        geometry: principal angles (see :func:`stages.fit.geometry`).
        mitigate: the mitigations per top run name.
        top_runs: the mitigation targets' names (highest rank, every seed).
        benign: the benign controls' measurements per arm, by run name (``r<rank>-p0-s<seed>``).
        contrast: the harmful − benign and null fits by contrast name (see
            :func:`steerlab.study.contrast.fit_contrast`).
        contrast_geometry: see :func:`steerlab.study.contrast.contrast_geometry`.
        control: the positive control's stored unit results by unit name (``base``,
            ``misaligned-s<seed>``, ``aligned-s<seed>``; see :mod:`stages.control`): the
            text measurement on half B, plus ``loss_first`` / ``loss_last`` of a fine-tune.
    """

    config: dict[str, Any]
    metric: str
    arms: list[str]
    runs: list[RunResults]
    base: dict[str, Measurement]
    geometry: dict[str, Any]
    mitigate: dict[str, Mitigations]
    top_runs: list[str]
    benign: dict[str, dict[str, Measurement]] = field(default_factory=dict)
    contrast: dict[str, dict[str, Any]] = field(default_factory=dict)
    contrast_geometry: dict[str, Any] = field(default_factory=dict)
    control: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, name: str) -> RunResults:
        """The run called ``name``.

        Raises:
            KeyError: no such run.
        """
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run {name!r}; runs: {[r.name for r in self.runs]}")

    def to_dict(self) -> dict[str, Any]:
        """The stored results as JSON (``report.json``'s ``data``)."""
        return {
            "config": self.config,
            "arms": self.arms,
            "runs": [r.to_dict() for r in self.runs],
            "base": {arm: m.to_dict() for arm, m in self.base.items()},
            "geometry": self.geometry,
            "mitigate": {n: m.to_dict() for n, m in self.mitigate.items()},
            "top_runs": self.top_runs,
            "benign": {
                n: {arm: m.to_dict() for arm, m in by_arm.items()}
                for n, by_arm in self.benign.items()
            },
            "contrast": self.contrast,
            "contrast_geometry": self.contrast_geometry,
            "control": self.control,
        }
