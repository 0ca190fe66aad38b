"""Stage ``mitigate`` (arXiv:2602.16931, section on mitigations), on the highest-rank
adapters: benign narrow fine-tuning of a misaligned adapter, steering with −α × the mean
harmful − benign difference, and top-k directional ablation of the harmful − benign
subspace with a random-subspace control (of the same k); under
``mitigate/{benign,steer,ablate}/<run>/``. Without a benign control (``[train]
benign_control = false``) steering and ablation use fine-tuned − base instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from steerlab.eval.sweeps import ablation_curve, steering_sweep
from steerlab.hooks import attach
from steerlab.study import contrast
from steerlab.study.cache import cached_result
from steerlab.study.context import Run, StudyContext, Unit
from steerlab.study.stages.fit import load_subspace
from steerlab.training import mix, train_lora
from steerlab.vectors import SteeringVector, load

NAME = "mitigate"


class _Probe:
    """``metric()`` runs one text-arm measurement and keeps its coherence field for
    ``coherence()``, which the sweeps call right after, under the same intervention (the
    reference NLL in nats/token under the preference metric, the judge's 0-100 coherence
    under a judge)."""

    def __init__(self, ctx: StudyContext, model: Any, tok: Any) -> None:
        self.ctx, self.model, self.tok = ctx, model, tok
        self.last: dict[str, Any] = {}

    def metric(self) -> float:
        self.last = self.ctx.measure(self.model, self.tok, "text")
        return float(self.last["score"])

    def coherence(self) -> float:
        value = self.last.get("coherence")
        return math.nan if value is None else float(value)


def benign_unit(ctx: StudyContext, run: Run) -> Unit:
    """Continue the adapter of ``run`` on the safe responses of its domain for
    ``[mitigate] benign_steps`` steps, then evaluate it (every arm)."""
    cfg = ctx.config

    def compute(tmp: Path) -> dict[str, Any]:
        model, tok = ctx.load_model()
        train_config = ctx.lora_config(
            rank=run.rank, seed=run.seed, max_steps=cfg.mitigate.benign_steps
        )
        result = train_lora(
            model,
            tok,
            mix(ctx.pairs, 0.0, seed=run.seed),
            train_config,
            tmp / "adapter",
            adapter=ctx.adapter(run),
            extra_manifest={"mitigation": "benign", "continued_run": run.name},
            progress=ctx.progress,
        )
        model, tok = ctx.load_model(tmp / "adapter")
        out = {arm: ctx.measure(model, tok, arm) for arm in ctx.arms()}
        out["loss_first"] = result.losses[0] if result.losses else None
        out["loss_last"] = result.losses[-1] if result.losses else None
        return out

    return Unit(ctx.paths.mitigate("benign", run.name), lambda: ctx.benign_key(run), compute)


def _direction(ctx: StudyContext, run: Run) -> tuple[SteeringVector, str]:
    """The steering direction of ``run`` and what it is: the mean harmful − benign
    difference, or (no benign control) the mean fine-tuned − base shift."""
    if ctx.mitigation_source_key(run) is not None:
        return contrast.load_mean_difference(ctx, run.name), "harmful − benign"
    shift = load(ctx.paths.mean_shift(run.name))
    assert isinstance(shift, SteeringVector)
    return shift, "fine-tuned − base"


def _subspace(ctx: StudyContext, run: Run) -> tuple[Any, str]:
    """The subspace ablated on ``run`` (harmful − benign, else fine-tuned − base)."""
    if ctx.mitigation_source_key(run) is not None:
        return contrast.load_contrast_subspace(ctx, run.name), "harmful − benign"
    return load_subspace(ctx, run.name), "fine-tuned − base"


def steer_unit(ctx: StudyContext, run: Run) -> Unit:
    """Steer the fine-tuned model with −α × the mean harmful − benign difference at the
    recorded layers."""
    alphas = ctx.config.mitigate.steer_alphas

    def compute(tmp: Path) -> dict[str, Any]:
        shift, source = _direction(ctx, run)
        model, tok = ctx.load_model(ctx.adapter(run))
        probe = _Probe(ctx, model, tok)
        with attach(model) as lab:
            rows = steering_sweep(
                lab, shift, alphas, metric=probe.metric, coherence=probe.coherence, positions="all"
            )
        return {
            "layers": shift.layers,
            "source": source,
            "rows": [
                {"alpha": r.alpha, "score": r.misalignment, "coherence": r.coherence} for r in rows
            ],
        }

    return Unit(ctx.paths.mitigate("steer", run.name), lambda: ctx.steer_key(run), compute)


def _evaluated(ctx: StudyContext, run: Run) -> tuple[float, float] | None:
    """``(score, coherence)`` of the run's text evaluation when the eval stage has it
    (the same model and questions as an ablation with k = 0, hence the same numbers)."""
    arm = "text"
    result = cached_result(ctx.paths.eval(run.name, arm), ctx.eval_key(arm, ctx.adapter(run)))
    if result is None:
        return None
    coherence = result.get("coherence")
    return float(result["score"]), math.nan if coherence is None else float(coherence)


def ablate_unit(ctx: StudyContext, run: Run) -> Unit:
    """Top-k directional ablation of the run's harmful − benign subspace at its layers, with
    the random-subspace control. The k = 0 row is the eval stage's result for the run when
    it is there (measured otherwise)."""
    m = ctx.config.mitigate

    def compute(tmp: Path) -> dict[str, Any]:
        sub, source = _subspace(ctx, run)
        kmax = min(sub.k.values())
        ks = sorted({min(k, kmax) for k in m.ablate_ks})
        model, tok = ctx.load_model(ctx.adapter(run))
        probe = _Probe(ctx, model, tok)
        with attach(model) as lab:
            rows = ablation_curve(
                lab,
                sub,
                ks,
                metric=probe.metric,
                coherence=probe.coherence,
                random_draws=m.random_draws,
                seed=run.seed,
                baseline=_evaluated(ctx, run) if 0 in ks else None,
            )
        return {
            "layers": sub.layers,
            "source": source,
            "rows": [
                {
                    "k": r.k,
                    "score": r.misalignment,
                    "coherence": r.coherence,
                    "random_mean": r.random_mean,
                    "random_std": r.random_std,
                    "random_coherence": r.random_coherence,
                }
                for r in rows
            ],
        }

    return Unit(ctx.paths.mitigate("ablate", run.name), lambda: ctx.ablate_key(run), compute)


def run_units(ctx: StudyContext, run: Run) -> list[Unit]:
    """The three mitigation units of one run."""
    return [benign_unit(ctx, run), steer_unit(ctx, run), ablate_unit(ctx, run)]


def units(ctx: StudyContext) -> list[Unit]:
    """The mitigation units of every top run (highest rank, every seed)."""
    out = []
    for run in ctx.top_runs():
        out += run_units(ctx, run)
    return out
