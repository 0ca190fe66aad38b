"""Stage ``baseline``: misalignment of the base model, one unit per arm, under
``base/<arm>/`` (its answers are the reference of comparative judges)."""

from __future__ import annotations

from steerlab.study.context import StudyContext, Unit
from steerlab.study.stages.eval import evaluation_units

NAME = "baseline"


def units(ctx: StudyContext) -> list[Unit]:
    """The base model's evaluation units (no adapter)."""
    return evaluation_units(ctx, ctx.paths.base, lambda: None)
