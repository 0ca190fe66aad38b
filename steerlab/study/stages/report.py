"""Stage ``report``: ``report/report.md``, ``report/report.json`` and PNG plots, from the
stored units (read as :class:`~steerlab.study.results.StudyResults`).

Every entry over seeds is mean ± std (sample std, ``ddof=1``; 0 with one seed). The report
opens with the instrument's sensitivity (the positive control and the resolvable difference)
and the benign control (:mod:`steerlab.study.controls_report`), then states, finding by
finding, what reproduced the source paper (arXiv:2602.16931) at this scale and what did not,
with the numbers (:mod:`steerlab.study.findings`); the detail sections follow. Each section
of ``report.md`` is one function.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from steerlab.eval.sweeps import AblationRow
from steerlab.files import atomic_path
from steerlab.study.context import StudyContext
from steerlab.study.contrast_report import contrast_section, organism
from steerlab.study.controls_report import benign_section, controls, sensitivity_section
from steerlab.study.findings import findings
from steerlab.study.results import (
    FitResult,
    Measurement,
    Mitigations,
    RecordResult,
    RunResults,
    StudyResults,
)
from steerlab.study.stages import baseline, control, fit, mitigate, record
from steerlab.study.stages import eval as eval_stage
from steerlab.study.summary import Summary, clean, fmt, table

NAME = "report"


def gather(ctx: StudyContext) -> StudyResults:
    """Every stage's stored results, typed.

    Raises:
        FileNotFoundError: a stage has not run (the message names it).
    """
    arms = ctx.arms()
    metric = ctx.config.eval.metric
    stored = {}
    for stage in (baseline, control, eval_stage, record, fit, mitigate):
        stored[stage.NAME] = ctx.stored(stage.NAME, stage.units(ctx))

    def at(stage: str, path: Path) -> dict[str, Any]:
        return stored[stage][str(path.relative_to(ctx.out))]

    runs = []
    for r in ctx.runs():
        m = json.loads((ctx.adapter(r) / "manifest.json").read_text())
        runs.append(
            RunResults(
                r.name,
                r.rank,
                r.fraction,
                r.seed,
                m.get("losses") or m.get("loss_curve"),
                m.get("wall_time_s"),
                {
                    a: Measurement.from_dict(at("eval", ctx.paths.eval(r.name, a)), metric)
                    for a in arms
                },
                RecordResult(**at("record", ctx.paths.acts(r.name))),
                FitResult(**at("fit", ctx.paths.subspace_dir(r.name))),
            )
        )
    mit = {
        r.name: Mitigations.from_stored(
            {
                k: at("mitigate", ctx.paths.mitigate(k, r.name))
                for k in ("benign", "steer", "ablate")
            },
            arms,
            metric,
        )
        for r in ctx.top_runs()
    }
    contrasts = list(ctx.contrasts())
    return StudyResults(
        control={n: at("control", ctx.paths.control(n)) for n in control.unit_names(ctx)},
        benign={
            r.name: {
                a: Measurement.from_dict(at("eval", ctx.paths.eval(r.name, a)), metric)
                for a in arms
            }
            for r in ctx.benign_runs()
        },
        contrast={n: at("fit", ctx.paths.contrast_fit(n)) for n in contrasts},
        contrast_geometry=at("fit", ctx.paths.contrast_geometry) if contrasts else {},
        config=ctx.config.to_dict(),
        metric=metric,
        arms=arms,
        runs=runs,
        base={a: Measurement.from_dict(at("baseline", ctx.paths.base(a)), metric) for a in arms},
        geometry=at("fit", ctx.paths.geometry),
        mitigate=mit,
        top_runs=[r.name for r in ctx.top_runs()],
    )


def metric_name(ctx: StudyContext) -> str:
    if ctx.config.eval.metric == "preference":
        return "preference misalignment (judge-free)"
    return "judge"


# -- plots ----------------------------------------------------------------------------------
def _plot_sweeps(ctx: StudyContext, res: StudyResults, summ: Summary, out: Path) -> dict[str, str]:
    from steerlab.study import plots  # lazy: matplotlib is needed only to draw

    t = ctx.config.train
    base_score = {arm: res.base[arm].score for arm in res.arms}
    plots.plot_score_sweep(
        out / "misalignment_vs_rank.png",
        t.ranks,
        {arm: [summ.rank[arm][r] for r in t.ranks] for arm in res.arms},
        base_score,
        f"LoRA rank (harmful fraction {t.rank_sweep_fraction:g})",
    )
    plots.plot_score_sweep(
        out / "misalignment_vs_fraction.png",
        t.harmful_fractions,
        {arm: [summ.fraction[arm][p] for p in t.harmful_fractions] for arm in res.arms},
        base_score,
        f"harmful fraction (LoRA rank {t.fraction_sweep_rank})",
    )
    return {"rank": "misalignment_vs_rank.png", "fraction": "misalignment_vs_fraction.png"}


def _plot_subspace(ctx: StudyContext, res: StudyResults, out: Path) -> dict[str, str]:
    from steerlab.study import plots  # lazy: matplotlib is needed only to draw

    t, k = ctx.config.train, ctx.config.analysis.k
    top = res.top_runs[0]
    best = res.run(top).fit.best_layer
    done = {}
    plots.plot_explained_variance(
        fit.load_subspace(ctx, top),
        out / "explained_variance.png",
        title=f"Explained variance, {top} (fine-tuned − base)",
    )
    done["evr"] = "explained_variance.png"
    rank_runs = [
        x.name for x in res.runs if x.fraction == t.rank_sweep_fraction and x.seed == t.seeds[0]
    ]
    if len(rank_runs) >= 2:
        plots.plot_principal_angles(
            {n.split("-")[0]: fit.load_subspace(ctx, n) for n in rank_runs},
            out / "principal_angles_ranks.png",
            layer=best,
            k=k,
            title=f"Principal angles across LoRA ranks, layer {best}, top-{k}",
        )
        done["angles"] = "principal_angles_ranks.png"
    sep = res.run(top).record.separation
    if len(sep) >= 2:
        plots.plot_layer_sweep(
            {int(layer): v for layer, v in sep.items()},
            out / "layer_sweep.png",
            ylabel="separation ‖mean shift‖ / spread",
            title=f"Fine-tuned − base separation by layer, {top}",
        )
        done["layers"] = "layer_sweep.png"
    return done


def _nan(value: float | None) -> float:
    return value if value is not None else math.nan


def _plot_ablation(res: StudyResults, out: Path) -> dict[str, str]:
    from steerlab.study import plots  # lazy: matplotlib is needed only to draw

    top = res.top_runs[0]
    rows = [
        AblationRow(
            k=r.k,
            misalignment=r.score,
            coherence=_nan(r.coherence_measure),
            random_mean=_nan(r.random_mean),
            random_std=_nan(r.random_std),
            random_coherence=math.nan,
            random_values=(),
        )
        for r in res.mitigate[top].ablate
    ]
    if rows[0].k != 0:  # k = 0 is the adapter's own evaluation (no ablation)
        plain = res.run(top).eval["text"]
        rows.insert(
            0,
            AblationRow(
                k=0,
                misalignment=plain.score,
                coherence=_nan(plain.coherence_measure),
                random_mean=plain.score,
                random_std=0.0,
                random_coherence=math.nan,
                random_values=(),
            ),
        )
    plots.plot_ablation_curve(
        rows,
        out / "ablation.png",
        metric_name="misalignment (text)",
        title=f"Top-k ablation at layers {res.mitigate[top].ablate_layers}, {top}",
    )
    return {"ablation": "ablation.png"}


def write_plots(ctx: StudyContext, res: StudyResults, summ: Summary) -> dict[str, str]:
    """Every PNG of the report (into ``report/``); ``{plot id: file name}``."""
    out = ctx.paths.report
    return {
        **_plot_sweeps(ctx, res, summ, out),
        **_plot_subspace(ctx, res, out),
        **_plot_ablation(res, out),
    }


# -- report.md sections ---------------------------------------------------------------------
def intro_section(ctx: StudyContext, res: StudyResults) -> list[str]:
    cfg = ctx.config
    lines = [f"# steerlab study: {cfg.name}\n"]
    if cfg.description:
        lines.append(cfg.description.strip() + "\n")
    lines.append(
        f"Model `{cfg.model.name}`; domain `{cfg.data.domain}` ({cfg.data.n} paired records); "
        f"metric: {metric_name(ctx)}, on {res.base['text'].n} questions of "
        f"`{cfg.eval.questions}`. Scores are 0-100, higher is more misaligned; entries over "
        f"seeds ({', '.join(map(str, cfg.train.seeds))}) are mean ± std. Coherence is the mean "
        "negative log-likelihood per token of the aligned reference answers (lower is "
        "better): it shows when a change breaks the model.\n"
    )
    if "multimodal" not in res.arms:
        lines.append(
            "The model takes no images, so there is no multimodal arm in this study; run a "
            "vision-language model (e.g. `configs/gemma3.toml`) for it.\n"
        )
    return lines


def _base_row(res: StudyResults, label: str) -> list[str]:
    return [label, *[f"{res.base[a].score:.1f}" for a in res.arms]]


def rank_section(
    ctx: StudyContext, res: StudyResults, summ: Summary, plots: dict[str, str]
) -> list[str]:
    t = ctx.config.train
    header = ["model", *res.arms, "coherence (text NLL)", "final train loss"]
    rows = [[*_base_row(res, "base"), f"{_nan(res.base['text'].coherence_measure):.3f}", "—"]]
    for r in t.ranks:
        group = summ.by_rank[r]
        rows.append(
            [
                f"r={r}",
                *[fmt(summ.scores(group, a)) for a in res.arms],
                fmt(summ.coherence(group), 3),
                fmt([g.final_loss for g in group], 3),
            ]
        )
    return [
        f"## Misalignment vs LoRA rank (harmful fraction {t.rank_sweep_fraction:g})\n",
        table(header, rows) + "\n",
        f"![misalignment vs rank]({plots['rank']})\n",
    ]


def fraction_section(
    ctx: StudyContext, res: StudyResults, summ: Summary, plots: dict[str, str]
) -> list[str]:
    t = ctx.config.train
    rows = [[*_base_row(res, "base (0 examples)"), "—"]]
    for p in t.harmful_fractions:
        group = summ.by_fraction[p]
        rows.append(
            [
                f"p={p:g}",
                *[fmt(summ.scores(group, a)) for a in res.arms],
                fmt(summ.coherence(group), 3),
            ]
        )
    return [
        f"## Misalignment vs harmful fraction (LoRA rank {t.fraction_sweep_rank})\n",
        table(["training mix", *res.arms, "coherence (text NLL)"], rows) + "\n",
        f"![misalignment vs fraction]({plots['fraction']})\n",
    ]


def _subspace_rows(ctx: StudyContext, res: StudyResults, summ: Summary) -> list[list[str]]:
    rows = []
    for r in ctx.config.train.ranks:
        group = summ.by_rank[r]
        for layer in res.runs[0].fit.layers:
            rows.append(
                [
                    f"r={r}",
                    str(layer),
                    *[
                        fmt([g.fit.k_at[f][str(layer)] for g in group])
                        for f in ("50", "80", "90", "95")
                    ],
                    fmt([g.fit.evr[str(layer)][0] for g in group], 3),
                    fmt([g.record.separation[str(layer)] for g in group], 3),
                ]
            )
    return rows


def geometry_lines(geo: dict[str, Any], what: str = "") -> list[str]:
    """Principal angles across ranks, seeds and fractions (``geo`` as
    :func:`stages.fit.geometry` returns it) as Markdown bullets."""
    k = geo["k"]
    lines = [
        f"Principal angles between the top-{k} {what + ' ' if what else ''}subspaces (mean "
        "angle in degrees; 0° = the "
        f"same subspace, 90° = orthogonal; random {k}-dim subspaces of this d_model sit near "
        "90°):\n"
    ]
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
            lines.append(f"- {title}, layer {layer}: " + "; ".join(pairs))
    return lines


def subspace_section(
    ctx: StudyContext, res: StudyResults, summ: Summary, plots: dict[str, str]
) -> list[str]:
    cfg = ctx.config
    header = ["rank", "layer", "k@50%", "k@80%", "k@90%", "k@95%", "EVR of PC1", "separation"]
    lines = [
        "## Fine-tuned − base, per run (the comparison)\n",
        f"PCA of fine-tuned − base `{cfg.record.point}` differences on the response tokens of "
        f"{cfg.record.n_examples} harmful training responses, per layer. k@f is the number of "
        "principal components that explain a fraction f of the variance.\n",
        table(header, _subspace_rows(ctx, res, summ)) + "\n",
        f"![explained variance]({plots['evr']})\n",
    ]
    if "layers" in plots:
        lines.append(f"![layer sweep]({plots['layers']})\n")
    lines += geometry_lines(res.geometry, "fine-tuned − base")
    lines.append("")
    if "angles" in plots:
        lines.append(f"![principal angles]({plots['angles']})\n")
    return lines


def _source(mit: list[Mitigations]) -> str:
    return mit[0].source or "fine-tuned − base"


def _mitigation_rows(ctx: StudyContext, res: StudyResults) -> list[list[str]]:
    ft = [res.run(n) for n in res.top_runs]
    mit = [res.mitigate[n] for n in res.top_runs]
    base = res.base["text"]
    rows = [
        ["base model", f"{base.score:.1f}", "—", f"{_nan(base.coherence_measure):.3f}"],
        [
            "fine-tuned (no mitigation)",
            fmt([r.eval["text"].score for r in ft]),
            "—",
            fmt([r.eval["text"].coherence_measure for r in ft], 3),
        ],
        [
            f"+ benign narrow fine-tuning ({ctx.config.mitigate.benign_steps} steps)",
            fmt([m.benign.eval["text"].score for m in mit]),
            "—",
            fmt([m.benign.eval["text"].coherence_measure for m in mit], 3),
        ],
    ]
    for i, alpha in enumerate(ctx.config.mitigate.steer_alphas):
        if alpha == 0:
            continue
        rows.append(
            [
                f"steering −{alpha:g} × {_source(mit)} mean difference",
                fmt([m.steer[i].score for m in mit]),
                "—",
                fmt([m.steer[i].coherence_measure for m in mit], 3),
            ]
        )
    for i, row in enumerate(mit[0].ablate):
        if row.k == 0:
            continue
        rows.append(
            [
                f"ablate top-{row.k} {_source(mit)} subspace",
                fmt([m.ablate[i].score for m in mit]),
                fmt([m.ablate[i].random_mean for m in mit]),
                fmt([m.ablate[i].coherence_measure for m in mit], 3),
            ]
        )
    return rows


def mitigation_section(ctx: StudyContext, res: StudyResults, plots: dict[str, str]) -> list[str]:
    t = ctx.config.train
    header = ["model", "misalignment (text)", "random-subspace control", "coherence"]
    return [
        f"## Mitigations (on r={max(t.ranks)}, harmful fraction {t.rank_sweep_fraction:g})\n",
        table(header, _mitigation_rows(ctx, res)) + "\n",
        f"![ablation]({plots['ablation']})\n",
    ]


def comparison_section(found: list[dict[str, str]]) -> list[str]:
    rows = [[f["finding"], f["paper"], f["here"], f"**{f['status']}**"] for f in found]
    return [
        "## Compared with the source paper\n",
        "Source: arXiv:2602.16931 (Gemma3-4B-it, LLM judge 0-100). This study runs at a far "
        "smaller scale, so the comparison is of directions and shapes, not of absolute "
        "numbers. Emergent misalignment counts when harmful − benign exceeds max(the "
        "resolvable difference above, 2 × its std over seeds); the other comparisons "
        "count a difference only when it is larger than max(0.5 points, 2 × the std over "
        'seeds). Each "not reproduced" gives the '
        "resolvable difference and the positive control's effect.\n",
        table(["finding", "paper", "here", "status"], rows) + "\n",
    ]


def markdown(
    ctx: StudyContext, res: StudyResults, summ: Summary, plots: dict[str, str]
) -> tuple[str, list[dict[str, str]]]:
    """``report.md``'s text and the findings (also in ``report.json``): the header, the
    positive control, the benign control, the findings, then the detail sections."""
    ctl = controls(ctx, res)
    found = findings(ctx, res, summ, ctl)
    lines = [
        *intro_section(ctx, res),
        *sensitivity_section(ctx, ctl),
        *benign_section(ctx, ctl),
        *comparison_section(found),
        *rank_section(ctx, res, summ, plots),
        *fraction_section(ctx, res, summ, plots),
        *contrast_section(ctx, res),
        *subspace_section(ctx, res, summ, plots),
        *mitigation_section(ctx, res, plots),
    ]
    return "\n".join(lines) + "\n", found


def write_report(ctx: StudyContext) -> dict[str, Any]:
    """Write ``report/report.md``, ``report/report.json`` and the PNGs; return
    ``{"report": path of report.md, "findings"}``.

    Raises:
        FileNotFoundError: an earlier stage has not run.
    """
    res = gather(ctx)
    out = ctx.paths.report
    out.mkdir(parents=True, exist_ok=True)
    summ = Summary.of(ctx.config.train, res)
    plots = write_plots(ctx, res, summ)
    md, found = markdown(ctx, res, summ, plots)
    report = {
        "name": ctx.config.name,
        "metric": metric_name(ctx),
        "data": res.to_dict(),
        "summary": summ.to_dict(res.arms),
        "findings": found,
        **controls(ctx, res),
        "organism": organism(ctx, res),
        "plots": plots,
    }
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(clean(report), indent=1, sort_keys=True))
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(md)
    return {"report": str(out / "report.md"), "findings": found}


def run(ctx: StudyContext) -> dict[str, Any]:
    return write_report(ctx)
