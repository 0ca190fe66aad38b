"""``steerlab study``: the source paper's whole study, end to end, from one config.

Stages, in order, one module each under :mod:`steerlab.study.stages` (each also runs on its
own, from the files the earlier stages wrote):

1. ``baseline``: misalignment of the base model (text-only; multimodal when it takes images).
2. ``control``: the positive control: fine-tunes on the misaligned (and, its null, the
   aligned) reference answers of half the text questions, measured on the other half.
3. ``train``: the LoRA rank sweep and harmful-fraction sweep (:func:`train_sweep`), plus a
   benign control (harmful fraction 0) per harmful (rank, seed).
4. ``eval``: misalignment of every adapter, text-only and multimodal.
5. ``record``: fine-tuned − base activation differences on the training domain's response
   tokens (adapter on/off on one ``PeftModel``), and harmful − benign differences (both
   adapters on one base) on the domain and the broad questions' references, streamed to
   disk; the same for two benign seeds (the null).
6. ``fit``: the harmful − benign misalignment subspace per layer (PCA, token and example
   level) beside fine-tuned − base, the benign − benign null and a random control; its
   geometry across ranks, seeds and fractions (principal angles).
7. ``mitigate``: benign narrow fine-tuning, steering with −α × the mean harmful − benign
   difference, and top-k ablation of that subspace with a random-subspace control, on the
   highest-rank adapters.
8. ``report``: ``report.md``, ``report.json`` and PNG plots.

Output layout (under ``out_dir``; every path is defined once, in
:class:`steerlab.study.context.StudyPaths`)::

    config.json           the validated config        study.log    the log
    base/<arm>/           baseline evaluation units   adapters/    one peft adapter per run
    eval/<run>/<arm>/     evaluation units            acts/<run>/  activation-difference shards
    subspace/<run>/       subspace.safetensors        geometry/    principal angles
    mitigate/{benign,steer,ablate}/<run>/             report/      report.md, report.json, PNGs
    control/{base,misaligned-s<seed>,aligned-s<seed>}/ the positive control

Every unit is cached by a hash of its config and inputs (:mod:`steerlab.study.cache`):
kill the study at any point and rerun it, and it resumes without redoing finished work.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlab.models import offline
from steerlab.models.registry import param_count
from steerlab.study.cache import run_unit
from steerlab.study.config import StudyConfig
from steerlab.study.context import Run, StudyContext, Unit
from steerlab.study.stages import baseline, control, fit, mitigate, record, report, train
from steerlab.study.stages import eval as eval_stage

logger = logging.getLogger("steerlab.study")

STAGE_MODULES = (baseline, control, train, eval_stage, record, fit, mitigate, report)
"""The stage modules, in order: a new stage is a new module and one entry here."""

STAGES = tuple(m.NAME for m in STAGE_MODULES)
"""The stages of ``steerlab study``, in order."""

_BY_NAME = {m.NAME: m for m in STAGE_MODULES}

__all__ = ["STAGES", "STAGE_MODULES", "Run", "Study", "Unit", "plan"]


class Study(StudyContext):
    """One study, the driver of its stages: a validated config and its output directory
    (:class:`StudyContext` holds the paths, cache keys, model loading and measurement).

    Args:
        config: the validated :class:`StudyConfig`.
        out_dir: where every stage writes (created; must be writable).
        progress: show progress bars.

    Raises:
        PermissionError: ``out_dir`` cannot be created or written.
    """

    def units(self, stage: str) -> list[Unit]:
        """The cached units of ``stage`` (every stage but ``train`` and ``report``)."""
        module = _BY_NAME[stage]
        if not hasattr(module, "units"):
            raise KeyError(stage)
        return module.units(self)

    def run_stage(self, stage: str) -> dict[str, Any]:
        """Run one stage (its finished units are reused); return ``{unit path: result}``."""
        module = _BY_NAME[stage]
        if not hasattr(module, "units"):
            return module.run(self)
        results = {}
        for unit in self.bar(module.units(self), stage):
            rel = str(unit.path.relative_to(self.out))
            result, reused = run_unit(unit.path, unit.key(), unit.compute)
            logger.info("%s %s: %s", stage, rel, "reused" if reused else "done")
            results[rel] = result
        return results

    def results(self, stage: str) -> dict[str, Any]:
        """The stored results of ``stage``'s units, without computing anything.

        Raises:
            FileNotFoundError: a unit has not run (or ran with another config); the
                message names the stage to run.
        """
        return self.stored(stage, self.units(stage))

    def run(
        self, stages: tuple[str, ...] = STAGES, *, on_stage: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Run ``stages`` in order; return each stage's JSON-ready result."""
        results: dict[str, Any] = {}
        self.write_config()
        with self.logging():
            for stage in stages:
                if on_stage is not None:
                    on_stage(stage)
                start = time.perf_counter()
                logger.info("stage %s: start", stage)
                results[stage] = self.run_stage(stage)
                logger.info("stage %s: done in %.1f s", stage, time.perf_counter() - start)
        return results


def plan(config: StudyConfig) -> dict[str, Any]:
    """What ``steerlab study`` would do, without loading a model: stages, run counts and a
    rough cost (CPU-equivalent minutes from the model's parameter count)."""
    t, e, m = config.train, config.eval, config.mitigate
    runs = config.train.grid()
    n_top = len(t.seeds)
    controls = (
        len({(r, s) for r, p, s in runs if p > 0} - {(r, s) for r, p, s in runs if p == 0})
        if t.benign_control
        else 0
    )
    positive = 2 * len(t.seeds) if config.control.enabled else 0  # misaligned, aligned
    evals = 1 + len(runs) + controls + n_top  # baseline, adapters, benign controls, benign
    evals += positive + (1 if positive else 0)  # the positive control and the base on half B
    evals += n_top * (len(m.steer_alphas) + len(m.ablate_ks) * (1 + m.random_draws))
    params = _param_guess(config.model.name)
    step_s = (
        None if params is None else 4.4 * params / 135e6 * t.batch_size / 4 * t.max_length / 128
    )
    train_steps = (len(runs) + controls + positive) * t.max_steps + n_top * m.benign_steps
    return {
        "model": config.model.name,
        "model_status": _model_status(config.model.name),
        "stages": list(STAGES),
        "training_runs": len(runs),
        "runs": [f"r{r}-p{p:g}-s{s}" for r, p, s in runs],
        "benign_runs": n_top,
        "benign_control_runs": controls,
        "positive_control_runs": positive,
        "training_steps": train_steps,
        "evaluations": evals,
        "metric": e.metric,
        "params_guess": params,
        "rough_cpu_minutes": None
        if step_s is None
        else math.ceil((train_steps * step_s + evals * 20 * params / 135e6) / 60),
        "cost_note": "2-core CPU estimate from the parameter count (SmolLM2-135M: 4.4 s per "
        "LoRA step of 4 x 128 tokens); a GPU is one to two orders of magnitude faster",
    }


def _model_status(name: str) -> str:
    """Whether an offline model's package is installed (checked without loading it)."""
    base = name.removesuffix("-hybrid")
    try:
        spec = offline.get(base)
    except KeyError as exc:
        if name.startswith("tiny-"):
            return "tiny random-init model"
        if Path(name).expanduser().exists():
            return "local path"
        if "/" in name:
            return "hub id (needs the hub or its cache)"
        return f"UNKNOWN: {str(exc).strip(chr(34) + chr(39))}"
    return "installed" if spec.installed else f"NOT INSTALLED: {spec.install}"


def _param_guess(name: str) -> float | None:
    """Parameter count of model ``name`` for the cost estimate: the registry's count for an
    offline or hybrid model, 0.2M for a tiny model, else read from a size in the name
    (``"...-1.5B..."``), else ``None``."""
    count = param_count(name)
    if count is not None:
        return float(count)
    if name.startswith("tiny-"):
        return 0.2e6
    m = re.search(r"(\d+(?:\.\d+)?)([mMbB])\b", name.replace("_", "-"))
    if m is None:
        return None
    return float(m.group(1)) * (1e6 if m.group(2) in "mM" else 1e9)
