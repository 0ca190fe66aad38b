"""Stage ``train``: the LoRA rank sweep and harmful-fraction sweep
(:func:`steerlab.training.train_sweep`), plus the benign control of every harmful run (same
rank, seed, recipe and prompts, harmful fraction 0; ``[train] benign_control``); adapters go
to ``adapters/<train key>/<run>/``."""

from __future__ import annotations

import logging
from typing import Any

from steerlab.study.context import StudyContext
from steerlab.training import train_sweep

NAME = "train"

logger = logging.getLogger("steerlab.study")


def run(ctx: StudyContext) -> dict[str, Any]:
    """Train every run of the grid and the benign controls (finished adapters are skipped);
    return ``{run name: {"skipped", "wall_time_s", "loss_first", "loss_last"}}``."""
    done = {}
    for r in ctx.bar(ctx.runs() + ctx.extra_benign_runs(), NAME):
        (sweep,) = train_sweep(
            ctx.load_model,
            ctx.pairs,
            ctx.adapters_dir(),
            ranks=[r.rank],
            harmful_fractions=[r.fraction],
            seeds=[r.seed],
            config=ctx.lora_config(),
            progress=ctx.progress,
        )
        logger.info("train %s: %s", r.name, "reused" if sweep.skipped else "done")
        m = sweep.manifest
        losses = m.get("losses") or m.get("loss_curve") or []
        done[r.name] = {
            "skipped": sweep.skipped,
            "wall_time_s": m.get("wall_time_s"),
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
        }
    return done
