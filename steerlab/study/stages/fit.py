"""Stage ``fit``: the fine-tuned − base subspace per run and layer (streaming PCA of the
recorded differences) under ``subspace/<run>/`` and its geometry under ``geometry/``; then
the misalignment subspace as the design card defines it, PCA of harmful − benign
differences, with the benign − benign null and a random control, under
``subspace-contrast/<name>/`` and its geometry under ``geometry-contrast/``
(:mod:`steerlab.study.contrast`) (arXiv:2602.16931: misalignment lives in
a ~10-dimensional subspace)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steerlab.analysis import fit_subspace, principal_angles, subspace_overlap
from steerlab.hooks.store import ActivationStore
from steerlab.study import contrast
from steerlab.study.context import SUBSPACE_FILE, Run, StudyContext, Unit
from steerlab.vectors import Subspace, load

if TYPE_CHECKING:
    from steerlab.study.config import AnalysisSection, TrainSection

NAME = "fit"


def fit_run(
    acts_dir: Path, recorded: dict[str, Any], config: AnalysisSection, out_dir: Path
) -> dict[str, Any]:
    """Fit the misalignment subspace (PCA of the differences) at every recorded layer and
    save it as ``subspace.safetensors``.

    Returns:
        ``{"layers", "evr": {layer: [max_k floats]}, "k_at": {"50"|"80"|"90"|"95":
        {layer: k}}, "best_layer"}``: ``best_layer`` has the strongest separation
        (``recorded["separation"]``, from the record stage).
    """
    store = ActivationStore(acts_dir / "diff")
    keys = store.keys
    point = keys[0][1]
    layers = sorted({k[0] for k in keys})
    # Fit every component (the covariance is computed in full anyway) so that k at any
    # fraction is exact; keep the top max_k.
    full = fit_subspace(store, point=point)
    max_k = min(config.max_k, min(full.k.values()))
    sub = full.top(max_k)
    sub.save(out_dir / SUBSPACE_FILE)
    evr = {str(layer): [float(x) for x in sub.explained_variance_ratio[layer]] for layer in layers}
    k_at = {
        str(int(f * 100)): {str(layer): int(k) for layer, k in full.k_for(f).items()}
        for f in (0.5, 0.8, 0.9, 0.95)
    }
    separation = recorded["separation"]
    best = max(separation, key=separation.get)
    return {"layers": layers, "max_k": max_k, "evr": evr, "k_at": k_at, "best_layer": int(best)}


def load_subspace(ctx: StudyContext, run_name: str) -> Subspace:
    """The stored subspace of a run (written by this stage)."""
    sub = load(ctx.paths.subspace(run_name))
    assert isinstance(sub, Subspace)
    return sub


def _groups(t: TrainSection, runs: dict[str, Run]) -> dict[str, list[tuple[str, str]]]:
    """``(label, run name)`` per comparison: across ranks (first seed, rank-sweep
    fraction), across seeds (highest rank) and across fractions (fraction-sweep rank)."""
    seed0 = t.seeds[0]
    return {
        "ranks": [
            (f"r{run.rank}", n)
            for n, run in runs.items()
            if run.fraction == t.rank_sweep_fraction and run.seed == seed0
        ],
        "seeds": [
            (f"s{run.seed}", n)
            for n, run in runs.items()
            if run.rank == max(t.ranks) and run.fraction == t.rank_sweep_fraction
        ],
        "fractions": [
            (f"p{run.fraction:g}", n)
            for n, run in runs.items()
            if run.rank == t.fraction_sweep_rank and run.seed == seed0
        ],
    }


def _layer_angles(subs: dict[str, Subspace], layer: int, k: int) -> dict[str, Any]:
    """Mean principal angle (degrees) and overlap between every pair of ``subs``."""
    labels = list(subs)
    angle = [[0.0] * len(labels) for _ in labels]
    overlap = [[1.0] * len(labels) for _ in labels]
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if j <= i:
                continue
            ka = min(k, subs[a].k[layer], subs[b].k[layer])
            ba = subs[a].bases[layer][:ka]
            bb = subs[b].bases[layer][:ka]
            ang = principal_angles(ba, bb)
            mean = float(torch.as_tensor(ang, dtype=torch.float64).mean())
            ov = float(subspace_overlap(ba, bb))
            angle[i][j] = angle[j][i] = mean
            overlap[i][j] = overlap[j][i] = ov
    return {"mean_angle": angle, "overlap": overlap}


def geometry(
    ctx: StudyContext,
    runs: dict[str, Run],
    k: int,
    loader: Callable[[StudyContext, str], Subspace] = load_subspace,
) -> dict[str, Any]:
    """Principal angles (degrees) between the top-k subspaces of runs (each read by
    ``loader(ctx, run name)``; default: fine-tuned − base), per layer: across ranks (first
    seed, rank-sweep fraction), across seeds (highest rank) and across harmful fractions
    (fraction-sweep rank, first seed).

    Returns:
        ``{"k", "ranks": {"labels", "layers": {layer: {"mean_angle": [[deg]],
        "overlap": [[0..1]]}}}, "seeds": ..., "fractions": ...}``.
    """
    out: dict[str, Any] = {"k": k}
    for group, members in _groups(ctx.config.train, runs).items():
        subs = {label: loader(ctx, name) for label, name in members}
        layers = sorted(set.intersection(*(set(s.layers) for s in subs.values()))) if subs else []
        per_layer = {str(layer): _layer_angles(subs, layer, k) for layer in layers}
        out[group] = {"labels": list(subs), "layers": per_layer}
    return out


def _compute(ctx: StudyContext, run: Run, tmp: Path) -> dict[str, Any]:
    recorded = json.loads(ctx.paths.acts_result(run.name).read_text())["result"]
    return fit_run(ctx.paths.acts(run.name), recorded, ctx.config.analysis, tmp)


def units(ctx: StudyContext) -> list[Unit]:
    """One unit per run (``subspace/<run>/``), the geometry unit (``geometry/``), then the
    harmful − benign and null contrasts' units (:func:`steerlab.study.contrast.fit_units`)."""
    out = [
        Unit(
            ctx.paths.subspace_dir(run.name),
            lambda run=run: ctx.fit_key(run),
            lambda tmp, run=run: _compute(ctx, run, tmp),
        )
        for run in ctx.runs()
    ]
    runs = {r.name: r for r in ctx.runs()}
    out.append(
        Unit(
            ctx.paths.geometry,
            ctx.geometry_key,
            lambda tmp: geometry(ctx, runs, ctx.config.analysis.k),
        )
    )
    return out + contrast.fit_units(ctx)
