"""The study's record and fit stages: fine-tuned − base activation differences on the
training domain's responses, the misalignment subspace per layer, and its geometry across
runs (arXiv:2602.16931: misalignment lives in a ~10-dimensional subspace)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steerlab.hooks.store import ActivationStore
from steerlab.vectors import SteeringVector, Subspace, load

if TYPE_CHECKING:
    from steerlab.study.config import AnalysisSection, RecordSection
    from steerlab.study.pipeline import Study


def resolve_layers(layers: list[int], num_layers: int) -> list[int]:
    """Negative layers count from the end; every layer must exist.

    Raises:
        ValueError: a layer outside ``-num_layers .. num_layers - 1``.
    """
    out = []
    for layer in layers:
        if not -num_layers <= layer < num_layers:
            raise ValueError(
                f"[record] layer {layer} does not exist: the model has {num_layers} layers "
                f"(valid: {-num_layers}..{num_layers - 1})"
            )
        out.append(layer % num_layers)
    return sorted(set(out))


def record_differences(
    model: Any,
    tokenizer: Any,
    pairs: Any,
    config: RecordSection,
    out_dir: Path,
    *,
    max_length: int = 512,
) -> dict[str, Any]:
    """Record ``fine-tuned − base`` activations at ``config.layers`` on the response tokens
    of the first ``config.n_examples`` harmful responses of ``pairs``, with the adapter of
    the ``PeftModel`` ``model`` enabled and disabled; shards go to ``out_dir/diff``.

    Also stores the per-layer mean difference (``mean_shift.safetensors``, a
    :class:`SteeringVector` ``{layer: [d_model]}``), the steering direction of the
    mitigation stage.

    Returns:
        ``{"layers", "n_tokens", "mean_shift_norm": {layer: float}, "separation": {layer:
        float}}``; separation is ‖mean difference‖ / √(trace of the covariance of the
        differences): how consistently the adapter shifts that layer.
    """
    from steerlab.analysis.collect import collect_paired, encode_examples
    from steerlab.hooks import attach

    n = min(config.n_examples, len(pairs))
    chosen = list(pairs)[:n]
    examples = encode_examples(
        tokenizer,
        [p.prompt for p in chosen],
        [p.harmful_response for p in chosen],
        max_length=max_length,
    )
    lab = attach(model)
    layers = resolve_layers(config.layers, lab.num_layers)
    d_model = lab.d_model
    lab.detach()
    stores = collect_paired(
        model,
        examples,
        out_dir,
        layers=layers,
        points=(config.point,),
        batch_size=config.batch_size,
        pad_token_id=getattr(tokenizer, "pad_token_id", None),
    )
    means, separation = {}, {}
    for layer in layers:
        total, sq, count = None, 0.0, 0
        for chunk in stores.diff.iter_chunks((layer, config.point), chunk_tokens=65536):
            c = chunk.double()
            total = c.sum(0) if total is None else total + c.sum(0)
            sq += float(c.pow(2).sum())
            count += c.shape[0]
        mean = total / count
        spread = max(sq / count - float(mean @ mean), 0.0)  # trace of the covariance
        means[layer] = mean.float()
        separation[str(layer)] = float(mean.norm()) / math.sqrt(spread) if spread > 0 else 0.0
    SteeringVector(means, hook_point=config.point, method="mean_shift_finetuned_minus_base").save(
        out_dir / "mean_shift.safetensors"
    )
    return {
        "layers": layers,
        "point": config.point,
        "n_examples": n,
        "n_tokens": stores.n_tokens,
        "d_model": d_model,
        "mean_shift_norm": {str(layer): float(v.norm()) for layer, v in means.items()},
        "separation": separation,
    }


def fit_run(
    acts_dir: Path, recorded: dict[str, Any], config: AnalysisSection, out_dir: Path
) -> dict[str, Any]:
    """Fit the misalignment subspace (PCA of the differences) at every recorded layer and
    save it as ``subspace.safetensors``.

    Returns:
        ``{"layers", "evr": {layer: [max_k floats]}, "k_at": {"50"|"80"|"90"|"95":
        {layer: k}}, "best_layer"}``: ``best_layer`` has the strongest separation
        (``recorded["separation"]``, from :func:`record_differences`).
    """
    from steerlab.analysis import fit_subspace

    store = ActivationStore(acts_dir / "diff")
    keys = store.keys
    point = keys[0][1]
    layers = sorted({k[0] for k in keys})
    # Fit every component (the covariance is computed in full anyway) so that k at any
    # fraction is exact; keep the top max_k.
    full = fit_subspace(store, point=point)
    max_k = min(config.max_k, min(full.k.values()))
    sub = full.top(max_k)
    sub.save(out_dir / "subspace.safetensors")
    evr = {str(layer): [float(x) for x in sub.explained_variance_ratio[layer]] for layer in layers}
    k_at = {
        str(int(f * 100)): {str(layer): int(k) for layer, k in full.k_for(f).items()}
        for f in (0.5, 0.8, 0.9, 0.95)
    }
    separation = recorded["separation"]
    best = max(separation, key=separation.get)
    return {"layers": layers, "max_k": max_k, "evr": evr, "k_at": k_at, "best_layer": int(best)}


def _subspace(study: Study, run_name: str) -> Subspace:
    sub = load(study.out / "subspace" / run_name / "subspace.safetensors")
    assert isinstance(sub, Subspace)
    return sub


def geometry(study: Study, runs: dict[str, Any], k: int) -> dict[str, Any]:
    """Principal angles (degrees) between the top-k subspaces of runs, per layer: across
    ranks (first seed, rank-sweep fraction), across seeds (highest rank) and across harmful
    fractions (fraction-sweep rank, first seed).

    Returns:
        ``{"k", "ranks": {"labels", "layers": {layer: {"mean_angle": [[deg]],
        "overlap": [[0..1]]}}}, "seeds": ..., "fractions": ...}``.
    """
    from steerlab.analysis import principal_angles, subspace_overlap

    t = study.config.train
    seed0 = t.seeds[0]
    by = {
        "ranks": [
            (f"r{r}", n)
            for n, run in runs.items()
            for r in [run.rank]
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
    out: dict[str, Any] = {"k": k}
    for group, members in by.items():
        subs = {label: _subspace(study, name) for label, name in members}
        labels = list(subs)
        layers = sorted(set.intersection(*(set(s.layers) for s in subs.values()))) if subs else []
        per_layer = {}
        for layer in layers:
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
            per_layer[str(layer)] = {"mean_angle": angle, "overlap": overlap}
        out[group] = {"labels": labels, "layers": per_layer}
    return out
