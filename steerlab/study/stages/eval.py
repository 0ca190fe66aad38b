"""Stage ``eval``: misalignment of every adapter of the sweeps and of the benign controls,
one unit per run and arm
(text-only; multimodal when the model takes images), under ``eval/<run>/<arm>/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlab.study.context import StudyContext, Unit

NAME = "eval"


def evaluation_units(
    ctx: StudyContext, where: Callable[[str], Path], adapter: Callable[[], Path | None]
) -> list[Unit]:
    """One evaluation unit per arm (in directory ``where(arm)``) of the base model with
    ``adapter()`` on top (``None``: the base model itself). The model loads once, on the
    first unit that needs computing."""
    loaded: dict[str, Any] = {}

    def model_and_tok() -> tuple[Any, Any]:
        if not loaded:
            loaded["m"] = ctx.load_model(adapter())
        return loaded["m"]

    def unit(arm: str) -> Unit:
        return Unit(
            where(arm),
            lambda: ctx.eval_key(arm, adapter()),
            lambda tmp: ctx.measure(*model_and_tok(), arm, tmp),
        )

    return [unit(arm) for arm in ctx.arms()]


def units(ctx: StudyContext) -> list[Unit]:
    """Every run's evaluation units, then the benign controls' (``eval/r<rank>-p0-s<seed>/``)."""
    out = []
    for run in ctx.runs() + ctx.extra_benign_runs():
        out += evaluation_units(
            ctx,
            lambda arm, run=run: ctx.paths.eval(run.name, arm),
            lambda run=run: ctx.adapter(run),
        )
    return out
