"""The study's mitigation stage (arXiv:2602.16931, section on mitigations): benign narrow
fine-tuning of a misaligned adapter, steering with −α × the mean fine-tuned − base shift,
and top-k directional ablation of the misalignment subspace with a random-subspace control.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steerlab.files import adapter_digest, digest
from steerlab.vectors import SteeringVector, Subspace, load

if TYPE_CHECKING:
    from steerlab.study.pipeline import Run, Study, Unit


class _Probe:
    """``metric()`` runs one text-arm measurement and keeps its coherence for
    ``coherence()``, which the studies call right after, under the same intervention."""

    def __init__(self, study: Study, model: Any, tok: Any) -> None:
        self.study, self.model, self.tok = study, model, tok
        self.last: dict[str, Any] = {}

    def metric(self) -> float:
        self.last = self.study.measure(self.model, self.tok, "text")
        return float(self.last["score"])

    def coherence(self) -> float:
        value = self.last.get("coherence")
        return math.nan if value is None else float(value)


def _stored(study: Study, kind: str, run: Run, name: str) -> Path:
    return study.out / kind / run.name / name


def benign_unit(study: Study, run: Run) -> Unit:
    """Continue the adapter of ``run`` on the safe responses of its domain for
    ``[mitigate] benign_steps`` steps, then evaluate it (every arm)."""
    from steerlab.study.pipeline import Unit
    from steerlab.training import mix, train_lora

    cfg = study.config

    def key() -> str:
        return digest(
            {
                "adapter": adapter_digest(study.adapter(run)),
                "steps": cfg.mitigate.benign_steps,
                "train": study.train_key(),
                "eval": cfg.eval.__dict__,
                "questions": study.questions_digest("text"),
                "model": cfg.model.__dict__,
            }
        )

    def compute(tmp: Path) -> dict[str, Any]:
        model, tok = study.load_model()
        train_config = study.lora_config(
            rank=run.rank, seed=run.seed, max_steps=cfg.mitigate.benign_steps
        )
        result = train_lora(
            model,
            tok,
            mix(study.pairs, 0.0, seed=run.seed),
            train_config,
            tmp / "adapter",
            adapter=study.adapter(run),
            extra_manifest={"mitigation": "benign", "continued_run": run.name},
            progress=study.progress,
        )
        model, tok = study.load_model(tmp / "adapter")
        out = {arm: study.measure(model, tok, arm) for arm in study.arms()}
        out["loss_first"] = result.losses[0] if result.losses else None
        out["loss_last"] = result.losses[-1] if result.losses else None
        return out

    return Unit(study.out / "mitigate" / "benign" / run.name, key, compute)


def steer_unit(study: Study, run: Run) -> Unit:
    """Steer the fine-tuned model with −α × the mean shift at the recorded layers."""
    from steerlab.analysis.studies import steering_sweep
    from steerlab.hooks import attach
    from steerlab.study.pipeline import Unit

    cfg = study.config

    def key() -> str:
        return digest(
            {
                "acts": study.record_key(run),
                "alphas": cfg.mitigate.steer_alphas,
                "eval": cfg.eval.__dict__,
                "questions": study.questions_digest("text"),
            }
        )

    def compute(tmp: Path) -> dict[str, Any]:
        shift = load(_stored(study, "acts", run, "mean_shift.safetensors"))
        assert isinstance(shift, SteeringVector)
        model, tok = study.load_model(study.adapter(run))
        probe = _Probe(study, model, tok)
        with attach(model) as lab:
            rows = steering_sweep(
                lab,
                shift,
                cfg.mitigate.steer_alphas,
                metric=probe.metric,
                coherence=probe.coherence,
                positions="all",
            )
        return {
            "layers": shift.layers,
            "rows": [
                {"alpha": r.alpha, "score": r.misalignment, "coherence": r.coherence} for r in rows
            ],
        }

    return Unit(study.out / "mitigate" / "steer" / run.name, key, compute)


def ablate_unit(study: Study, run: Run) -> Unit:
    """Top-k directional ablation of the run's subspace at its layers, with the control."""
    from steerlab.analysis.studies import ablation_curve
    from steerlab.hooks import attach
    from steerlab.study.pipeline import Unit

    cfg = study.config

    def key() -> str:
        return digest(
            {
                "fit": study.fit_key(run),
                "ks": cfg.mitigate.ablate_ks,
                "draws": cfg.mitigate.random_draws,
                "eval": cfg.eval.__dict__,
                "questions": study.questions_digest("text"),
            }
        )

    def compute(tmp: Path) -> dict[str, Any]:
        sub = load(_stored(study, "subspace", run, "subspace.safetensors"))
        assert isinstance(sub, Subspace)
        kmax = min(sub.k.values())
        ks = sorted({min(k, kmax) for k in cfg.mitigate.ablate_ks})
        model, tok = study.load_model(study.adapter(run))
        probe = _Probe(study, model, tok)
        with attach(model) as lab:
            rows = ablation_curve(
                lab,
                sub,
                ks,
                metric=probe.metric,
                coherence=probe.coherence,
                random_draws=cfg.mitigate.random_draws,
                seed=run.seed,
            )
        return {
            "layers": sub.layers,
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

    return Unit(study.out / "mitigate" / "ablate" / run.name, key, compute)


def units(study: Study, run: Run) -> list[Unit]:
    """The three mitigation units of one run."""
    return [benign_unit(study, run), steer_unit(study, run), ablate_unit(study, run)]
