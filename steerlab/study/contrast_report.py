"""The report's section on the misalignment subspace as the design card defines it:
harmful − benign fine-tunes on identical inputs, beside fine-tuned − base and the
benign − benign null (:mod:`steerlab.study.contrast`)."""

from __future__ import annotations

from typing import Any

from steerlab.study.context import StudyContext
from steerlab.study.contrast import BB, FB, HB, IMAGE_SETS, INPUT_SETS
from steerlab.study.controls_report import harmful_minus_benign
from steerlab.study.results import StudyResults
from steerlab.study.summary import fmt, ms, table


def organism(ctx: StudyContext, res: StudyResults) -> dict[str, Any] | None:
    """Harmful − benign misalignment (text arm) over the top runs' seeds, and whether it is
    above noise: mean > max(the resolvable difference, 2 × std over seeds)
    (:func:`steerlab.study.controls_report.harmful_minus_benign`); ``None`` without benign
    controls."""
    entry = harmful_minus_benign(ctx, res, max(ctx.config.train.ranks))
    if entry is None:
        return None
    d = entry["harmful_minus_benign"]
    return {
        "diffs": d["values"],
        "mean": d["mean"],
        "std": d["std"],
        "n": d["n"],
        "noise": entry["threshold"],
        "resolvable": entry["resolvable"]["value"],
        "found": entry["found"],
    }


def _organism_line(org: dict[str, Any] | None) -> str:
    if org is None:
        return "No benign control in this study (`[train] benign_control = false`).\n"
    what = f"{org['mean']:+.1f} ± {org['std']:.1f} points over {org['n']} seed(s)"
    if org["found"]:
        return (
            f"Harmful − benign misalignment (text) is {what}, above the noise threshold "
            f"{org['noise']:.1f}: this config has an organism.\n"
        )
    return (
        f"**No organism in this config**: harmful − benign misalignment (text) is {what}, not "
        f"above the noise threshold max(resolvable difference, 2 × std) = {org['noise']:.1f}. "
        "The subspace below "
        "is fitted all the same, but it describes how two fine-tunes differ, not "
        "misalignment.\n"
    )


def _stats(fits: list[dict[str, Any]], contrast: str, layer: str, level: str) -> list[dict]:
    return [f["contrasts"][contrast]["inputs"]["all"][level][layer] for f in fits]


def _row(label: str, fits: list[dict[str, Any]], contrast: str, layer: str, k: int) -> list[str]:
    tok, ex = _stats(fits, contrast, layer, "token"), _stats(fits, contrast, layer, "example")
    return [
        label,
        fmt([s["k_at"]["90"] for s in tok]),
        fmt([s["k_at"]["90"] for s in ex]),
        " / ".join(fmt([s["k_at"][f] for s in tok]) for f in ("50", "80", "95")),
        fmt([sum(s["evr"][:k]) for s in tok], 3),
        fmt([s["separation"] for s in tok], 3),
    ]


def _concentration_lines(hb: list[dict], null: dict, layer: str, k: int) -> list[str]:
    lines = []
    for level in ("token", "example"):
        h = _stats(hb, HB, layer, level)
        nl = null["contrasts"][BB]["inputs"]["all"][level][layer]
        rnd = [f["contrasts"][HB]["random"][level][layer]["k_at"]["90"] for f in hb]
        k90 = ms([s["k_at"]["90"] for s in h])[0]
        topk = ms([sum(s["evr"][:k]) for s in h])[0]
        lines.append(
            f"- {level} level: k@90% is {k90:.1f} for harmful − benign against "
            f"{nl['k_at']['90']} for the benign − benign null (ratio "
            f"{nl['k_at']['90'] / max(k90, 1e-9):.2f}×) and {ms(rnd)[0]:.1f} for random "
            f"directions at matched norm; the top-{k} components carry {topk:.3f} of the "
            f"variance against {sum(nl['evr'][:k]):.3f} for the null (ratio "
            f"{topk / max(sum(nl['evr'][:k]), 1e-12):.2f}×)."
        )
    return lines


def _inputs_lines(hb: list[dict], layer: str) -> list[str]:
    parts = []
    for s in (*INPUT_SETS, *IMAGE_SETS):
        if s not in hb[0]["contrasts"][HB]["inputs"]:
            continue
        by = [f["contrasts"][HB]["inputs"][s] for f in hb]
        tok = fmt([b["token"][layer]["k_at"]["90"] for b in by])
        ex = fmt([b["example"][layer]["k_at"]["90"] for b in by])
        sep = fmt([b["token"][layer]["separation"] for b in by], 3)
        parts.append(f"`{s}` {tok} / {ex} (separation {sep})")
    return [
        "By input set (harmful − benign, k@90% token / example level): " + "; ".join(parts) + ".\n"
    ]


def _modality_lines(ctx: StudyContext, hb: list[dict], layer: str) -> list[str]:
    """Text-only vs image + text harmful − benign subspaces (vision-language models)."""
    modality = [f["contrasts"][HB].get("modality") for f in hb]
    if not all(modality):
        return []
    angle = fmt([m[layer]["mean_angle"] for m in modality])
    overlap = fmt([m[layer]["overlap"] for m in modality], 3)
    k = modality[0][layer]["k"]
    lines = [
        f"Text-only vs image + text inputs, fitted apart (top-{k}, layer {layer}): mean "
        f"principal angle {angle}°, overlap {overlap}."
    ]
    name = ctx.config.model.name
    if name.endswith("-hybrid"):
        lines.append(
            f"`{name}` is a hybrid: its decoder is real but its vision tower is random-init "
            "(no vision-language weights are available offline), so the image + text "
            "subspace says nothing about a trained vision tower."
        )
    elif name.startswith("tiny-"):
        lines.append(f"`{name}` is random-init, vision tower included.")
    return [*lines, ""]


def _geometry_lines(geo: dict[str, Any], tops: list[str], layer: str) -> list[str]:
    runs = geo.get("per_run", {})
    lines = [f"Overlap (mean cos² of the principal angles; chance ≈ {geo['chance_overlap']:.3f}):"]
    for name in tops:
        g = runs.get(name, {}).get(layer)
        if g is None:
            continue
        fb = g["finetuned_minus_base"]
        w = ", ".join(f"{kind} {v:.3f}" for kind, v in sorted(g["lora_weights"].items()))
        lines.append(
            f"- {name}, layer {layer}: with fine-tuned − base (top-{fb['k']}) "
            f"{fb['overlap']:.3f} (mean angle {fb['mean_angle']:.1f}°); with the LoRA "
            f"weight-space output directions: {w or '—'}"
        )
    return lines


def contrast_section(ctx: StudyContext, res: StudyResults) -> list[str]:
    """The subspace section: organism check, the three rows (harmful − benign, fine-tuned −
    base, benign − benign null) with k@90% at the example and token level, the random
    control, the concentration ratio, the input sets and the geometry."""
    # lazy: circular (the report stage imports this module)
    from steerlab.study.stages.report import geometry_lines

    org = organism(ctx, res)
    lines = [
        "## The misalignment subspace: harmful − benign, against a null\n",
        _organism_line(org),
    ]
    null_name = ctx.null_name()
    hb = [res.contrast[n] for n in res.top_runs if n in res.contrast]
    if not hb:
        return lines
    k, layer = ctx.config.analysis.k, str(hb[0]["contrasts"][HB]["best_layer"])
    cfg = ctx.config
    lines.append(
        "PCA of the differences between two LoRA adapters loaded on one base model and "
        "switched, on identical tokens: the training domain's "
        f"{min(cfg.record.n_examples, cfg.data.n)} prompts with their harmful responses and "
        "the broad questions with the aligned and the misaligned reference answers "
        "teacher-forced, pooled (each model's own sampled answers are not recorded). Token "
        "level: every response token; example level: the mean over an example's response "
        f"tokens. `{cfg.record.point}`, layer {layer} (the strongest harmful − benign "
        f"separation), on the top runs {', '.join(res.top_runs)} (mean ± std over seeds).\n"
    )
    header = ["difference", "k@90% token", "k@90% example", "k@50/80/95% token"]
    header += [f"EVR top-{k} token", "separation"]
    rows = [_row("harmful − benign", hb, HB, layer, k), _row("fine-tuned − base", hb, FB, layer, k)]
    if null_name is not None:
        null = res.contrast[null_name]
        rows.append(_row(f"benign − benign null ({null_name})", [null], BB, layer, k))
    lines.append(table(header, rows) + "\n")
    if null_name is not None:
        lines.append("How much more concentrated harmful − benign is than the null:\n")
        lines += _concentration_lines(hb, res.contrast[null_name], layer, k)
        lines.append("")
    else:
        lines.append("No benign − benign null: it needs two seeds.\n")
    lines += _inputs_lines(hb, layer)
    lines += _modality_lines(ctx, hb, layer)
    geo = res.contrast_geometry
    if geo:
        lines += geometry_lines(geo, "harmful − benign")
        lines.append("")
        lines += _geometry_lines(geo, res.top_runs, layer)
        lines.append("")
    return lines
