"""Sweeps over LoRA rank, harmful-data fraction and seed, resumable.

Each run trains into ``run_dir/r{rank}-p{fraction}-s{seed}``. A run whose directory holds a
``manifest.json`` is finished and skipped on a rerun; an interrupted run left only a hidden
temporary directory (``train_lora`` renames into place at the very end), which the next
sweep deletes before training that run again from scratch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from steerlab.training.data import mix
from steerlab.training.lora import LoraTrainConfig, train_lora
from steerlab.training.progress import bar as progress_bar


@dataclass(frozen=True)
class SweepRun:
    """One finished run of a sweep: its settings, directory and manifest."""

    rank: int
    harmful_fraction: float
    seed: int
    adapter_dir: Path
    manifest: dict[str, Any]
    skipped: bool


def run_name(rank: int, harmful_fraction: float, seed: int) -> str:
    """Directory name of one run, e.g. ``r8-p0.1-s0``."""
    return f"r{rank}-p{harmful_fraction:g}-s{seed}"


def train_sweep(
    load_model: Callable[[], tuple[Any, Any]],
    pairs: Sequence[Any],
    run_dir: str | Path,
    *,
    ranks: Sequence[int],
    harmful_fractions: Sequence[float],
    seeds: Sequence[int] = (0,),
    config: LoraTrainConfig | None = None,
    progress: bool = True,
) -> list[SweepRun]:
    """Train one adapter per (rank, harmful fraction, seed), skipping finished runs.

    Args:
        load_model: returns a fresh ``(model, tokenizer)`` for each run (e.g.
            ``lambda: steerlab.models.load_model("smollm2-135m-instruct")``).
        pairs: paired records; each run trains on ``mix(pairs, fraction, seed)``.
        run_dir: the sweep's directory.
        ranks, harmful_fractions, seeds: the grid.
        config: settings shared by every run; rank, alpha and seed are set per run.
        progress: a bar over the runs (skipped ones included) and a step bar inside each.

    Returns:
        One :class:`SweepRun` per grid point, in grid order.

    Raises:
        ValueError: an empty grid, a rank <= 0 or a fraction outside [0, 1].
    """
    if not ranks or not harmful_fractions or not seeds:
        raise ValueError("ranks, harmful_fractions and seeds must each name at least one value")
    for p in harmful_fractions:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"harmful fraction {p} is outside [0, 1]")
    base = config or LoraTrainConfig()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    grid = [(r, p, s) for r in ranks for p in harmful_fractions for s in seeds]
    runs = []
    # A one-run sweep shows only its run's step bar, not a bar over a single item.
    bar = progress_bar(grid, desc="LoRA sweep", disable=not progress or len(grid) == 1)
    for rank, fraction, seed in bar:
        name = run_name(rank, fraction, seed)
        out = run_dir / name
        bar.set_postfix_str(name)
        manifest_path = out / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            runs.append(SweepRun(rank, fraction, seed, out, manifest, skipped=True))
            continue
        for stale in run_dir.glob(f".{name}.*"):  # an interrupted attempt
            shutil.rmtree(stale, ignore_errors=True)
        if out.exists():  # neither finished nor temporary: never trust it
            shutil.rmtree(out)
        model, tok = load_model()
        run_config = replace(base, rank=rank, alpha=None, seed=seed)
        records = mix(pairs, fraction, seed=seed)
        result = train_lora(
            model,
            tok,
            records,
            run_config,
            out,
            extra_manifest={"harmful_fraction": fraction, "sweep_run": name},
            progress=progress,
            progress_leave=False,
        )
        runs.append(SweepRun(rank, fraction, seed, out, result.manifest, skipped=False))
    return runs
