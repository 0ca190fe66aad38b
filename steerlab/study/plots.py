"""matplotlib figures (Agg backend, PNG, written atomically) for the study report and the
analysis results.

- :func:`plot_explained_variance`: explained-variance ratio (and cumulative) per layer, with
  k at 90% marked.
- :func:`plot_ablation_curve`: misalignment against k ablated, with the random control
  (mean ± std) and coherence on a twin axis.
- :func:`plot_principal_angles`: heatmap of the mean principal angle (or overlap) between
  labelled subspaces, e.g. fits at LoRA ranks 1, 8, 32, 128.
- :func:`plot_layer_sweep`: a per-layer number (separation, k@90%, probe accuracy, ...).
- :func:`plot_score_sweep`: the study's misalignment (mean ± std over seeds) against LoRA
  rank or harmful fraction, per arm, with the base model's score as a line.

Every function returns the written :class:`~pathlib.Path` and raises ``ValueError`` on empty
or malformed input before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from steerlab.analysis.geometry import principal_angles, subspace_overlap
from steerlab.eval.sweeps import AblationRow
from steerlab.files import atomic_path
from steerlab.vectors import Subspace


def _save(fig, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        plt.close(fig)
        raise ValueError(f"plots are written as PNG; give a path ending in .png, got {path}")
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def plot_explained_variance(
    subspace: Subspace,
    path: str | Path,
    *,
    layers: Sequence[int] | None = None,
    fraction: float = 0.9,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Explained-variance ratio per component (bars / line, left) and cumulative (right
    axis) for each layer, with a marker at ``k_for(fraction)``.

    Raises:
        ValueError: no explained variance stored, unknown layers, bad path.
    """
    if not subspace.explained_variance_ratio:
        raise ValueError("this subspace has no explained_variance_ratio (fit it with PCA)")
    layers = list(subspace.explained_variance_ratio if layers is None else layers)
    missing = [lyr for lyr in layers if lyr not in subspace.explained_variance_ratio]
    if not layers or missing:
        raise ValueError(
            f"layers {missing or layers} have no explained variance; available "
            f"{sorted(subspace.explained_variance_ratio)}"
        )
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    twin = ax.twinx()
    for layer in layers:
        r = subspace.explained_variance_ratio[layer].double()
        ks = list(range(1, len(r) + 1))
        (line,) = ax.plot(ks, r.tolist(), marker="o", ms=3, label=f"layer {layer}")
        cum = r.cumsum(0)
        twin.plot(ks, cum.tolist(), ls="--", color=line.get_color(), alpha=0.6)
        reached = (cum >= fraction - 1e-9).nonzero()
        if len(reached):
            k = int(reached[0]) + 1
            twin.axvline(k, color=line.get_color(), ls=":", alpha=0.8)
            twin.annotate(
                f"k@{fraction:.0%}={k}",
                (k, float(cum[k - 1])),
                textcoords="offset points",
                xytext=(4, -12),
                color=line.get_color(),
                fontsize=8,
            )
    twin.axhline(fraction, color="grey", lw=0.5)
    ax.set_xlabel("principal component k")
    ax.set_ylabel("explained variance ratio")
    twin.set_ylabel("cumulative (dashed)")
    twin.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(title or "Explained variance of the activation subspace")
    return _save(fig, path, dpi)


def plot_ablation_curve(
    rows: Sequence[AblationRow],
    path: str | Path,
    *,
    metric_name: str = "misalignment",
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Misalignment against k ablated (from :func:`ablation_curve`), the random control as
    mean ± std, and coherence on a twin axis when measured.

    Raises:
        ValueError: no rows, or rows that are not :class:`AblationRow`.
    """
    if not rows or any(not isinstance(r, AblationRow) for r in rows):
        raise ValueError("plot_ablation_curve needs a non-empty list of AblationRow")
    ks = [r.k for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(ks, [r.misalignment for r in rows], marker="o", label="top-k subspace ablated")
    mean = torch.tensor([r.random_mean for r in rows], dtype=torch.float64)
    if not torch.isnan(mean).all():
        std = torch.tensor([r.random_std for r in rows], dtype=torch.float64)
        ax.plot(ks, mean.tolist(), marker="s", color="grey", label="random k-dim subspace")
        lo, hi = (mean - std).tolist(), (mean + std).tolist()
        ax.fill_between(ks, lo, hi, color="grey", alpha=0.25)
    ax.set_xlabel("k (components ablated)")
    ax.set_ylabel(metric_name)
    coh = [r.coherence for r in rows]
    handles, labels = ax.get_legend_handles_labels()
    if not all(math.isnan(c) for c in coh):
        twin = ax.twinx()
        (line,) = twin.plot(ks, coh, ls="--", color="tab:green", label="coherence")
        twin.set_ylabel("coherence")
        handles.append(line)
        labels.append("coherence")
    ax.legend(handles, labels, fontsize=8)
    ax.set_title(title or f"{metric_name} vs top-k ablation")
    return _save(fig, path, dpi)


def plot_principal_angles(
    subspaces: Mapping[str, Subspace | torch.Tensor],
    path: str | Path,
    *,
    layer: int | None = None,
    k: int | None = None,
    value: str = "mean_angle",
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Heatmap between labelled subspaces (e.g. ``{"r=1": s1, "r=8": s8, ...}``): the mean
    principal angle in degrees (``value="mean_angle"``) or the overlap in [0, 1]
    (``value="overlap"``), using the top-``k`` rows of each when ``k`` is given.

    Raises:
        ValueError: fewer than 2 subspaces, unknown ``value``, ``d_model`` mismatch.
    """
    if len(subspaces) < 2:
        raise ValueError(f"need at least 2 subspaces to compare, got {len(subspaces)}")
    if value not in ("mean_angle", "overlap"):
        raise ValueError(f"value must be 'mean_angle' or 'overlap', got {value!r}")
    names = list(subspaces)
    subs = {}
    for name, s in subspaces.items():
        if isinstance(s, Subspace):
            s = s.top(k) if k is not None else s
        elif isinstance(s, torch.Tensor) and k is not None:
            s = s[:k]
        subs[name] = s
    n = len(names)
    grid = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            a, b = subs[names[i]], subs[names[j]]
            if value == "overlap":
                grid[i, j] = subspace_overlap(a, b, layer=layer)
            else:
                grid[i, j] = float(principal_angles(a, b, layer=layer).mean())
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 2))
    vmax = 90.0 if value == "mean_angle" else 1.0
    im = ax.imshow(grid.numpy(), vmin=0, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            v = float(grid[i, j])
            txt = f"{v:.0f}°" if value == "mean_angle" else f"{v:.2f}"
            ax.text(j, i, txt, ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(
        im,
        ax=ax,
        label="mean principal angle (deg)" if value == "mean_angle" else "overlap (mean cos²)",
    )
    ax.set_title(title or ("principal angles" if value == "mean_angle" else "subspace overlap"))
    return _save(fig, path, dpi)


def plot_layer_sweep(
    values: Mapping[int, float],
    path: str | Path,
    *,
    ylabel: str = "separation",
    mark_best: bool = True,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """A per-layer number (``{layer: value}``), best layer marked.

    Raises:
        ValueError: empty or non-finite values.
    """
    if not values:
        raise ValueError("no layers to plot")
    layers = sorted(values)
    ys = [float(values[lyr]) for lyr in layers]
    if any(not math.isfinite(y) for y in ys):
        bad = [lyr for lyr, y in zip(layers, ys, strict=True) if not math.isfinite(y)]
        raise ValueError(f"non-finite values in the layer sweep at layers {bad}")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(layers, ys, marker="o")
    if mark_best:
        best = layers[max(range(len(ys)), key=ys.__getitem__)]
        ax.axvline(best, color="tab:red", ls=":", label=f"best: layer {best}")
        ax.legend(fontsize=8)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} by layer")
    return _save(fig, path, dpi)


def plot_score_sweep(
    path: str | Path,
    xs: Sequence[float],
    series: Mapping[str, Sequence[tuple[float, float, int]]],
    base: Mapping[str, float],
    xlabel: str,
) -> Path:
    """Misalignment (0-100) against ``xs``: one error-bar line per arm of ``series``
    (``(mean, std, n)`` per x), and a dotted line at the base model's score of that arm.
    """
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for (label, vals), color in zip(series.items(), ("tab:blue", "tab:orange"), strict=False):
        ax.errorbar(
            [str(x) for x in xs],
            [v[0] for v in vals],
            yerr=[v[1] for v in vals],
            marker="o",
            capsize=3,
            label=f"fine-tuned, {label}",
            color=color,
        )
        if label in base:
            ax.axhline(base[label], color=color, ls=":", label=f"base model, {label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("misalignment (0-100)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_dose_response(records: Sequence[Mapping], path: str | Path, dpi: int = 110) -> Path:
    """Misalignment, its off-domain part and the aligned-reference NLL against training
    steps, one colour per recipe (LoRA rank, lr), harmful solid and benign dashed, seeds as
    thin lines (:mod:`steerlab.study.dose_response` curve records of one model × domain)."""
    if not records:
        raise ValueError("no dose-response curves to plot")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    recipes = list(dict.fromkeys(r["recipe"] for r in records))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    panels = (("score", "misalignment (all)"), ("off_domain", "misalignment (off-domain)"),
              ("reference_nll", "aligned-reference NLL (nats/token)"))  # fmt: skip
    for ax, (key, title) in zip(axes, panels, strict=True):
        for r in records:
            colour = colours[recipes.index(r["recipe"]) % len(colours)]
            harmful = r["curve"]["fraction"] > 0
            steps = [p["step"] for p in r["points"]]
            label = f"{r['recipe'].split('/')[-1]} p={r['curve']['fraction']:g}"
            ax.plot(steps, [p[key] for p in r["points"]], color=colour,
                    linestyle="-" if harmful else "--", marker="o" if harmful else "x",
                    markersize=3, linewidth=1.2, label=label if r["curve"]["seed"] == min(
                        x["curve"]["seed"] for x in records) else None)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("training step")
    axes[0].set_ylabel("preference misalignment (0-100)")
    axes[0].legend(fontsize=7)
    c = records[0]["curve"]
    fig.suptitle(f"{c['model']} on {c['domain']}: harmful (solid) vs benign (dashed)")
    return _save(fig, path, dpi)
