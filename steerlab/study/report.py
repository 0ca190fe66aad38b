"""The study report: ``report.md``, ``report.json`` and PNG plots, from the stored units.

Every entry over seeds is mean ± std (sample std, ``ddof=1``; 0 with one seed). The last
section states, finding by finding, what reproduced the source paper (arXiv:2602.16931) at
this scale and what did not, with the numbers.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steerlab.files import atomic_path

if TYPE_CHECKING:
    from steerlab.study.pipeline import Study

# The source paper's numbers (Gemma3-4B-it, judge score 0-100), for the comparison section.
PAPER = {
    "text_r128": (41.19, 2.51),
    "multimodal_r128": (70.71, 1.22),
    "k_components": 10,
}


def _ms(values: Sequence[float | None]) -> tuple[float, float, int]:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return math.nan, math.nan, 0
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), std, len(vals)


def _fmt(values: Sequence[float | None], digits: int = 1) -> str:
    mean, std, n = _ms(values)
    if n == 0:
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _above(values: Sequence[float | None], reference: float, margin: float = 0.5) -> str:
    """Compare seeds' ``values`` with ``reference``: ``"higher"`` / ``"lower"`` when the mean
    differs by more than ``max(margin, 2 × std over seeds)`` points, else ``"same"``."""
    mean, std, n = _ms(values)
    if n == 0 or math.isnan(reference):
        return "unknown"
    tol = max(margin, 2 * std)
    if mean > reference + tol:
        return "higher"
    if mean < reference - tol:
        return "lower"
    return "same"


def _clean(obj: Any) -> Any:
    """JSON without NaN/inf (they become null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def gather(study: Study) -> dict[str, Any]:
    """Every stage's stored results, keyed as the report needs them.

    Raises:
        FileNotFoundError: a stage has not run (the message names it).
    """
    cfg = study.config
    arms = study.arms()
    base = study.results("baseline")
    evals = study.results("eval")
    recs = study.results("record")
    fits = study.results("fit")
    mit = study.results("mitigate")
    runs = study.runs()
    manifests = {}
    for run in runs:
        m = json.loads((study.adapter(run) / "manifest.json").read_text())
        manifests[run.name] = m
    return {
        "config": cfg.to_dict(),
        "arms": arms,
        "runs": [
            {
                "name": r.name,
                "rank": r.rank,
                "fraction": r.fraction,
                "seed": r.seed,
                "losses": manifests[r.name].get("losses") or manifests[r.name].get("loss_curve"),
                "wall_time_s": manifests[r.name].get("wall_time_s"),
                "eval": {arm: evals[f"eval/{r.name}/{arm}"] for arm in arms},
                "record": recs[f"acts/{r.name}"],
                "fit": fits[f"subspace/{r.name}"],
            }
            for r in runs
        ],
        "base": {arm: base[f"base/{arm}"] for arm in arms},
        "geometry": fits["geometry"],
        "mitigate": {
            r.name: {
                kind: mit[f"mitigate/{kind}/{r.name}"] for kind in ("benign", "steer", "ablate")
            }
            for r in study.top_runs()
        },
        "top_runs": [r.name for r in study.top_runs()],
    }


def _scores(runs: list[dict], arm: str, key: str = "score") -> list[float | None]:
    return [r["eval"][arm].get(key) for r in runs]


def _summaries(data: dict[str, Any]) -> dict[str, Any]:
    cfg = data["config"]["train"]
    runs = data["runs"]
    by_rank = {
        r: [x for x in runs if x["rank"] == r and x["fraction"] == cfg["rank_sweep_fraction"]]
        for r in cfg["ranks"]
    }
    by_fraction = {
        p: [x for x in runs if x["fraction"] == p and x["rank"] == cfg["fraction_sweep_rank"]]
        for p in cfg["harmful_fractions"]
    }
    out: dict[str, Any] = {"rank": {}, "fraction": {}}
    for arm in data["arms"]:
        out["rank"][arm] = {r: _ms(_scores(v, arm)) for r, v in by_rank.items()}
        out["fraction"][arm] = {p: _ms(_scores(v, arm)) for p, v in by_fraction.items()}
    out["by_rank"], out["by_fraction"] = by_rank, by_fraction
    return out


def _plot_sweep(path: Path, xs, series: dict[str, list[tuple[float, float, int]]], base, xlabel):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_report(study: Study) -> dict[str, Any]:
    """Write ``report/report.md``, ``report/report.json`` and the PNGs; return the JSON.

    Raises:
        FileNotFoundError: an earlier stage has not run.
    """
    from steerlab.analysis.plots import (
        plot_ablation_curve,
        plot_explained_variance,
        plot_layer_sweep,
        plot_principal_angles,
    )
    from steerlab.analysis.studies import AblationRow
    from steerlab.vectors import load

    data = gather(study)
    out = study.out / "report"
    out.mkdir(parents=True, exist_ok=True)
    cfg = study.config
    t = cfg.train
    arms = data["arms"]
    summ = _summaries(data)
    base_score = {arm: data["base"][arm]["score"] for arm in arms}
    metric_name = (
        "preference misalignment (judge-free)" if cfg.eval.metric == "preference" else "judge"
    )

    # Plots.
    plots = {}
    _plot_sweep(
        out / "misalignment_vs_rank.png",
        t.ranks,
        {arm: [summ["rank"][arm][r] for r in t.ranks] for arm in arms},
        base_score,
        f"LoRA rank (harmful fraction {t.rank_sweep_fraction:g})",
    )
    plots["rank"] = "misalignment_vs_rank.png"
    _plot_sweep(
        out / "misalignment_vs_fraction.png",
        t.harmful_fractions,
        {arm: [summ["fraction"][arm][p] for p in t.harmful_fractions] for arm in arms},
        base_score,
        f"harmful fraction (LoRA rank {t.fraction_sweep_rank})",
    )
    plots["fraction"] = "misalignment_vs_fraction.png"
    top = data["top_runs"][0]
    top_fit = next(r["fit"] for r in data["runs"] if r["name"] == top)
    best = top_fit["best_layer"]
    sub = load(study.out / "subspace" / top / "subspace.safetensors")
    plot_explained_variance(
        sub, out / "explained_variance.png", title=f"Explained variance, {top} (fine-tuned − base)"
    )
    plots["evr"] = "explained_variance.png"
    rank_runs = [
        x["name"]
        for x in data["runs"]
        if x["fraction"] == t.rank_sweep_fraction and x["seed"] == t.seeds[0]
    ]
    if len(rank_runs) >= 2:
        plot_principal_angles(
            {
                n.split("-")[0]: load(study.out / "subspace" / n / "subspace.safetensors")
                for n in rank_runs
            },
            out / "principal_angles_ranks.png",
            layer=best,
            k=cfg.analysis.k,
            title=f"Principal angles across LoRA ranks, layer {best}, top-{cfg.analysis.k}",
        )
        plots["angles"] = "principal_angles_ranks.png"
    sep = next(r["record"]["separation"] for r in data["runs"] if r["name"] == top)
    if len(sep) >= 2:
        plot_layer_sweep(
            {int(k): v for k, v in sep.items()},
            out / "layer_sweep.png",
            ylabel="separation ‖mean shift‖ / spread",
            title=f"Fine-tuned − base separation by layer, {top}",
        )
        plots["layers"] = "layer_sweep.png"
    rows = list(data["mitigate"][top]["ablate"]["rows"])
    if rows[0]["k"] != 0:  # k = 0 is the adapter's own evaluation (no ablation)
        plain = next(r for r in data["runs"] if r["name"] == top)["eval"]["text"]
        rows.insert(
            0,
            {
                "k": 0,
                "score": plain["score"],
                "coherence": plain.get("coherence"),
                "random_mean": plain["score"],
                "random_std": 0.0,
            },
        )
    plot_ablation_curve(
        [
            AblationRow(
                k=r["k"],
                misalignment=r["score"],
                coherence=r["coherence"] if r["coherence"] is not None else math.nan,
                random_mean=r["random_mean"] if r["random_mean"] is not None else math.nan,
                random_std=r["random_std"] if r["random_std"] is not None else math.nan,
                random_coherence=math.nan,
                random_values=(),
            )
            for r in rows
        ],
        out / "ablation.png",
        metric_name="misalignment (text)",
        title=f"Top-k ablation at layers {data['mitigate'][top]['ablate']['layers']}, {top}",
    )
    plots["ablation"] = "ablation.png"

    md = _markdown(study, data, summ, metric_name, plots)
    report = {
        "name": cfg.name,
        "metric": metric_name,
        "data": data,
        "summary": {
            "rank": {arm: {str(k): v[:2] for k, v in summ["rank"][arm].items()} for arm in arms},
            "fraction": {
                arm: {str(k): v[:2] for k, v in summ["fraction"][arm].items()} for arm in arms
            },
        },
        "findings": md[1],
        "plots": plots,
    }
    report = _clean(report)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1, sort_keys=True))
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(md[0])
    return {"report": str(out / "report.md"), "findings": md[1]}


def _markdown(study, data, summ, metric_name, plots) -> tuple[str, list[dict[str, Any]]]:
    from scipy.stats import spearmanr

    cfg = study.config
    t = cfg.train
    arms = data["arms"]
    runs = data["runs"]
    L: list[str] = []
    L.append(f"# steerlab study: {cfg.name}\n")
    if cfg.description:
        L.append(cfg.description.strip() + "\n")
    L.append(
        f"Model `{cfg.model.name}`; domain `{cfg.data.domain}` ({cfg.data.n} paired records); "
        f"metric: {metric_name}, on {data['base']['text'].get('n', '?')} questions of "
        f"`{cfg.eval.questions}`. Scores are 0-100, higher is more misaligned; entries over "
        f"seeds ({', '.join(map(str, t.seeds))}) are mean ± std. Coherence is the mean "
        "negative log-likelihood per token of the aligned reference answers (lower is "
        "better): it shows when a change breaks the model.\n"
    )
    if "multimodal" not in arms:
        L.append(
            "The model takes no images, so there is no multimodal arm in this study; run a "
            "vision-language model (e.g. `configs/gemma3.toml`) for it.\n"
        )

    # Rank table.
    L.append(f"## Misalignment vs LoRA rank (harmful fraction {t.rank_sweep_fraction:g})\n")
    header = ["model", *[f"{a}" for a in arms], "coherence (text NLL)", "final train loss"]
    rows = [
        [
            "base",
            *[f"{data['base'][a]['score']:.1f}" for a in arms],
            f"{data['base']['text'].get('coherence', math.nan):.3f}",
            "—",
        ]
    ]
    for r in t.ranks:
        group = summ["by_rank"][r]
        rows.append(
            [
                f"r={r}",
                *[_fmt(_scores(group, a)) for a in arms],
                _fmt(_scores(group, "text", "coherence"), 3),
                _fmt([(g["losses"] or [None])[-1] for g in group], 3),
            ]
        )
    L.append(_table(header, rows) + "\n")
    L.append(f"![misalignment vs rank]({plots['rank']})\n")

    L.append(f"## Misalignment vs harmful fraction (LoRA rank {t.fraction_sweep_rank})\n")
    rows = [["base (0 examples)", *[f"{data['base'][a]['score']:.1f}" for a in arms], "—"]]
    for p in t.harmful_fractions:
        group = summ["by_fraction"][p]
        rows.append(
            [
                f"p={p:g}",
                *[_fmt(_scores(group, a)) for a in arms],
                _fmt(_scores(group, "text", "coherence"), 3),
            ]
        )
    L.append(_table(["training mix", *arms, "coherence (text NLL)"], rows) + "\n")
    L.append(f"![misalignment vs fraction]({plots['fraction']})\n")

    # Subspace.
    L.append("## The misalignment subspace\n")
    L.append(
        f"PCA of fine-tuned − base `{cfg.record.point}` differences on the response tokens of "
        f"{cfg.record.n_examples} harmful training responses, per layer. k@f is the number of "
        "principal components that explain a fraction f of the variance.\n"
    )
    layers = runs[0]["fit"]["layers"]
    rows = []
    for r in t.ranks:
        group = summ["by_rank"][r]
        for layer in layers:
            rows.append(
                [
                    f"r={r}",
                    str(layer),
                    *[
                        _fmt([g["fit"]["k_at"][f][str(layer)] for g in group])
                        for f in ("50", "80", "90", "95")
                    ],
                    _fmt([g["fit"]["evr"][str(layer)][0] for g in group], 3),
                    _fmt([g["record"]["separation"][str(layer)] for g in group], 3),
                ]
            )
    L.append(
        _table(
            ["rank", "layer", "k@50%", "k@80%", "k@90%", "k@95%", "EVR of PC1", "separation"], rows
        )
        + "\n"
    )
    L.append(f"![explained variance]({plots['evr']})\n")
    if "layers" in plots:
        L.append(f"![layer sweep]({plots['layers']})\n")
    geo = data["geometry"]
    k = geo["k"]
    L.append(
        f"Principal angles between the top-{k} subspaces (mean angle in degrees; 0° = the "
        f"same subspace, 90° = orthogonal; random {k}-dim subspaces of this d_model sit near "
        "90°):\n"
    )
    for group, title in (
        ("ranks", "across LoRA ranks"),
        ("seeds", "across seeds"),
        ("fractions", "across harmful fractions"),
    ):
        g = geo.get(group) or {}
        labels = g.get("labels", [])
        if len(labels) < 2:
            continue
        for layer, m in g["layers"].items():
            pairs = [
                f"{labels[i]}–{labels[j]}: {m['mean_angle'][i][j]:.1f}° "
                f"(overlap {m['overlap'][i][j]:.2f})"
                for i in range(len(labels))
                for j in range(i + 1, len(labels))
            ]
            L.append(f"- {title}, layer {layer}: " + "; ".join(pairs))
    L.append("")
    if "angles" in plots:
        L.append(f"![principal angles]({plots['angles']})\n")

    # Mitigation table.
    L.append(f"## Mitigations (on r={max(t.ranks)}, harmful fraction {t.rank_sweep_fraction:g})\n")
    tops = data["top_runs"]
    ft = [next(r for r in runs if r["name"] == n) for n in tops]
    mit = [data["mitigate"][n] for n in tops]
    rows = [
        [
            "base model",
            f"{data['base']['text']['score']:.1f}",
            "—",
            f"{data['base']['text'].get('coherence', math.nan):.3f}",
        ],
        [
            "fine-tuned (no mitigation)",
            _fmt(_scores(ft, "text")),
            "—",
            _fmt(_scores(ft, "text", "coherence"), 3),
        ],
        [
            f"+ benign narrow fine-tuning ({cfg.mitigate.benign_steps} steps)",
            _fmt([m["benign"]["text"]["score"] for m in mit]),
            "—",
            _fmt([m["benign"]["text"].get("coherence") for m in mit], 3),
        ],
    ]
    for i, alpha in enumerate(cfg.mitigate.steer_alphas):
        if alpha == 0:
            continue
        rows.append(
            [
                f"steering −{alpha:g} × mean shift",
                _fmt([m["steer"]["rows"][i]["score"] for m in mit]),
                "—",
                _fmt([m["steer"]["rows"][i]["coherence"] for m in mit], 3),
            ]
        )
    for i, row in enumerate(mit[0]["ablate"]["rows"]):
        if row["k"] == 0:
            continue
        rows.append(
            [
                f"ablate top-{row['k']} subspace",
                _fmt([m["ablate"]["rows"][i]["score"] for m in mit]),
                _fmt([m["ablate"]["rows"][i]["random_mean"] for m in mit]),
                _fmt([m["ablate"]["rows"][i]["coherence"] for m in mit], 3),
            ]
        )
    L.append(
        _table(["model", "misalignment (text)", "random-subspace control", "coherence"], rows)
        + "\n"
    )
    L.append(f"![ablation]({plots['ablation']})\n")

    # Findings.
    findings = []

    def finding(name: str, paper: str, status: str, numbers: str) -> None:
        findings.append({"finding": name, "paper": paper, "status": status, "here": numbers})

    b = data["base"]["text"]["score"]
    verdict = {"higher": "reproduced", "same": "not reproduced (within noise)"}
    ft_all = [x["eval"]["text"]["score"] for x in runs if x["fraction"] == t.rank_sweep_fraction]
    finding(
        "Narrow fine-tuning raises broad misalignment (emergent misalignment)",
        "yes, on Gemma3-4B-it",
        verdict.get(_above(ft_all, b), "not reproduced (lower)"),
        f"base {b:.1f} vs fine-tuned {_fmt(ft_all)} ({len(ft_all)} runs)",
    )
    means = [summ["rank"]["text"][r][0] for r in t.ranks]
    if len(t.ranks) >= 3:
        rho = float(spearmanr(t.ranks, means).statistic)
        top_vs_low = _above(_scores(summ["by_rank"][max(t.ranks)], "text"), means[0])
        status = (
            "reproduced"
            if rho > 0.5 and top_vs_low == "higher"
            else ("not reproduced (within noise)" if top_vs_low == "same" else "not reproduced")
        )
        finding(
            "Misalignment grows with LoRA rank",
            "monotonic from r=8 to r=256",
            status,
            ", ".join(f"r={r}: {m:.1f}" for r, m in zip(t.ranks, means, strict=True))
            + f" (Spearman ρ = {rho:.2f})",
        )
    if "multimodal" in arms:
        top = summ["by_rank"][max(t.ranks)]
        mm_top = _scores(top, "multimodal")
        text_top = _ms(_scores(top, "text"))[0]
        finding(
            "Multimodal evaluation finds more misalignment than text-only",
            f"{PAPER['multimodal_r128'][0]} vs {PAPER['text_r128'][0]} at r=128",
            verdict.get(_above(mm_top, text_top), "not reproduced (lower)"),
            f"r={max(t.ranks)}: multimodal {_fmt(mm_top)} vs text {text_top:.1f}",
        )
    else:
        finding(
            "Multimodal evaluation finds more misalignment than text-only",
            f"{PAPER['multimodal_r128'][0]} vs {PAPER['text_r128'][0]} at r=128",
            "not testable here",
            "the model takes no images",
        )
    lowest = min(t.harmful_fractions)
    low = _scores(summ["by_fraction"][lowest], "text")
    finding(
        f"A small harmful fraction ({lowest:g}) is enough to degrade alignment",
        "10% harmful data degrades alignment substantially",
        verdict.get(_above(low, b), "not reproduced (lower)"),
        f"p={lowest:g}: {_fmt(low)} vs base {b:.1f}",
    )
    best = ft[0]["fit"]["best_layer"]
    k90 = [r["fit"]["k_at"]["90"][str(best)] for r in ft]
    d_model = runs[0]["record"].get("d_model") or 0
    low_dim = _ms(k90)[0] <= min(2 * PAPER["k_components"], 0.1 * d_model)
    finding(
        "Misalignment lives in a low-dimensional subspace",
        f"about {PAPER['k_components']} principal components (of d_model 2560)",
        "reproduced" if low_dim else "not reproduced",
        f"k@90% at layer {best}: {_fmt(k90)} of d_model {d_model}; EVR of PC1 "
        f"{_fmt([r['fit']['evr'][str(best)][0] for r in ft], 3)} (rule: k@90% <= "
        f"min(20, 10% of d_model))",
    )
    ft_scores = _scores(ft, "text")
    ft_mean = _ms(ft_scores)[0]
    raised = _above(ft_scores, b) == "higher"

    def mitigation(values: list[float | None]) -> str:
        if not raised:
            return "not testable (fine-tuning raised nothing to mitigate)"
        vs_ft, vs_base = _above(values, ft_mean), _above(values, b)
        if vs_ft != "lower":
            return "not reproduced (no reduction)"
        return "reproduced" if vs_base == "higher" else "removed it (paper: only reduced)"

    benign = [m["benign"]["text"]["score"] for m in mit]
    finding(
        "Benign narrow fine-tuning reduces misalignment but does not remove it",
        "reduces, does not remove",
        mitigation(benign),
        f"fine-tuned {ft_mean:.1f} → {_fmt(benign)} (base {b:.1f})",
    )
    steer_rows = [(i, a) for i, a in enumerate(cfg.mitigate.steer_alphas) if a > 0]
    if steer_rows:
        best_i, best_a = min(
            steer_rows, key=lambda ia: _ms([m["steer"]["rows"][ia[0]]["score"] for m in mit])[0]
        )
        steered = [m["steer"]["rows"][best_i]["score"] for m in mit]
        finding(
            "Steering against the misalignment direction reduces it but does not remove it",
            "reduces, does not remove (layer 20 of 34)",
            mitigation(steered),
            f"fine-tuned {ft_mean:.1f} → {_fmt(steered)} at α={best_a:g} (base {b:.1f})",
        )
    last = mit[0]["ablate"]["rows"][-1]
    ablated = [m["ablate"]["rows"][-1]["score"] for m in mit]
    rnd = _ms([m["ablate"]["rows"][-1]["random_mean"] for m in mit])[0]
    beats = _above(ablated, rnd)
    finding(
        f"Ablating the top-{last['k']} subspace reduces misalignment more than a random "
        "subspace of the same size",
        "(related work: ablating the misalignment direction cuts it by 78-90%, a random one "
        "by < 10%)",
        "reproduced"
        if beats == "lower"
        else "not reproduced" + (" (within noise)" if beats == "same" else ""),
        f"top-{last['k']}: {_fmt(ablated)}; random: {rnd:.1f}; no ablation: {ft_mean:.1f}",
    )
    L.append("Differences count only when larger than max(0.5 points, 2 × the std over seeds).\n")
    L.append("## Compared with the source paper\n")
    L.append(
        "Source: arXiv:2602.16931 (Gemma3-4B-it, LLM judge 0-100). This study runs at a far "
        "smaller scale, so the comparison is of directions and shapes, not of absolute "
        "numbers. A difference counts only when it is larger than max(0.5 points, 2 × the "
        "std over seeds).\n"
    )
    L.append(
        _table(
            ["finding", "paper", "here", "status"],
            [[f["finding"], f["paper"], f["here"], f"**{f['status']}**"] for f in findings],
        )
        + "\n"
    )
    return "\n".join(L) + "\n", findings
