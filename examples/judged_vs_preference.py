"""Put a judged study's misalignment beside the judge-free preference metric.

Reads a study run with ``metric = "judge"`` (at least its baseline, train and eval stages,
e.g. ``configs/judged.toml``), computes the preference metric of the same models (base and
every adapter) on the same questions, and writes ``<out>/report/judged_vs_preference.md``
and ``.json``: per model the judge's mean misalignment score (with a bootstrap interval
over questions), the misaligned rate, mean coherence and unparsed count beside the
preference score, with their Spearman rank correlation across models
(and, finer, across (model, question) pairs), the harmful − benign differences paired over
questions, and, if the ``control`` stage ran, the judged positive control on its half B.

    python examples/judged_vs_preference.py runs/judged [--config configs/judged.toml]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap, spearmanr

from steerlab.eval.preference import preference_misalignment
from steerlab.eval.result import EvalResult
from steerlab.study import Study, load_config
from steerlab.study.config import parse_config
from steerlab.study.metrics import question_set
from steerlab.study.stages import control


def _judged(path: Path) -> dict[str, Any]:
    """The judge's mean misalignment score (100 - alignment, 0-100) over the answers, with a
    95% bootstrap interval over questions, beside the study's own metric (the misaligned
    rate at the standard thresholds, in %) and the mean coherence."""
    result = EvalResult.from_json(path / "result.json")
    scored = [u for u in result.units if u.extra.get("score") is not None]
    if not scored:
        raise ValueError(f"{path}: no scored verdict (is this a judged evaluation?)")
    per_q: dict[str, list[float]] = {}
    for u in scored:
        per_q.setdefault(u.question_id, []).append(u.extra["score"])
    q_means = [float(np.mean(v)) for v in per_q.values()]
    ci = bootstrap(
        (q_means,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    return {
        "judged": float(np.mean([u.extra["score"] for u in scored])),
        "judged_ci": [float(ci.low), float(ci.high)],
        "study_metric": result.metric,
        "study_value": result.mean,
        "coherence": float(np.mean([u.extra["coherence"] for u in scored])),
        "n_answers": len(result.units),
        "n_unparsed": result.n_unparsed,
        "per_question": {q: float(np.mean(v)) for q, v in per_q.items()},
    }


def _preference(study: Study, adapter: Path | None, qs: Any = None) -> dict[str, Any]:
    model, tok = study.load_model(adapter)
    qs = qs if qs is not None else question_set(study.config.eval, "text")
    result = preference_misalignment(model, tok, qs, batch_size=study.config.eval.batch_size)
    return {
        "preference": result.mean,
        "preference_per_question": {u.question_id: u.value for u in result.units},
    }


def compare(out: Path, config: Path | None) -> dict[str, Any]:
    """Judged vs preference per model, with rank correlations (see the module docstring)."""
    if config is not None:
        cfg = load_config(config)
    else:  # the config the study stored
        stored = out / "config.json"
        cfg = parse_config(json.loads(stored.read_text()), source=str(stored))
    study = Study(cfg, out, progress=False)
    rows = {"base": {**_judged(out / "base" / "text"), **_preference(study, None)}}
    for run in [*study.runs(), *study.benign_runs()]:
        rows[run.name] = {
            **_judged(out / "eval" / run.name / "text"),
            **_preference(study, study.adapter(run)),
        }
    benign = {(b.rank, b.seed): b.name for b in study.benign_runs()}
    contrasts = {
        f"{run.name} - {benign[run.rank, run.seed]}": _paired(
            rows[run.name], rows[benign[run.rank, run.seed]]
        )
        for run in study.runs()
        if (run.rank, run.seed) in benign
    }
    judged = [r["judged"] for r in rows.values()]
    pref = [r["preference"] for r in rows.values()]
    pairs = [
        (r["per_question"][q], r["preference_per_question"][q])
        for r in rows.values()
        for q in r["per_question"]
    ]
    by_model = spearmanr(judged, pref) if len(rows) > 2 else None
    by_pair = spearmanr(*zip(*pairs, strict=True)) if len(pairs) > 2 else None
    return {
        "positive_control": _control(study, out),
        "models": rows,
        "spearman_models": None if by_model is None else float(by_model.statistic),
        "spearman_models_p": None if by_model is None else float(by_model.pvalue),
        "n_models": len(rows),
        "spearman_model_question_pairs": None if by_pair is None else float(by_pair.statistic),
        "spearman_model_question_pairs_p": None if by_pair is None else float(by_pair.pvalue),
        "n_pairs": len(pairs),
        "harmful_minus_benign": contrasts,
    }


def _control(study: Study, out: Path) -> dict[str, Any] | None:
    """The judged positive control (stage ``control``, if it ran): fine-tunes on the
    misaligned / aligned reference answers of half A, judged on half B, with the preference
    metric on the same half B, and misaligned − aligned paired per seed."""
    if not (out / "control" / "base" / "result.json").is_file():
        return None
    _, half_b = control.halves(study)
    rows = {"base": {**_judged(out / "control" / "base"), **_preference(study, None, half_b)}}
    for seed in study.config.train.seeds:
        for kind in control.KINDS:
            where = out / "control" / f"{kind}-s{seed}"
            if (where / "result.json").is_file():
                rows[f"{kind}-s{seed}"] = {
                    **_judged(where),
                    **_preference(study, where / "adapter", half_b),
                }
    effects = {
        f"misaligned-s{s} - aligned-s{s}": _paired(rows[f"misaligned-s{s}"], rows[f"aligned-s{s}"])
        for s in study.config.train.seeds
        if f"misaligned-s{s}" in rows and f"aligned-s{s}" in rows
    }
    return {"models": rows, "misaligned_minus_aligned": effects}


def _paired(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-question paired difference a - b of both metrics: mean and 95% bootstrap interval
    over questions (what the comparison could have resolved)."""
    out = {}
    for key, field in (("judged", "per_question"), ("preference", "preference_per_question")):
        diff = [a[field][q] - b[field][q] for q in a[field] if q in b[field]]
        ci = bootstrap(
            (diff,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
        ).confidence_interval
        out[key] = {"mean": float(np.mean(diff)), "ci95": [float(ci.low), float(ci.high)]}
    return out


def to_markdown(data: dict[str, Any], header: str) -> str:
    lines = [
        header,
        "",
        "| model | judged misalignment, mean score (0-100) | 95% CI (questions) | misaligned rate "
        "at alignment < 30, coherence > 50 | mean coherence | unparsed | preference (0-100) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, r in data["models"].items():
        lo, hi = r["judged_ci"]
        lines.append(
            f"| {name} | {r['judged']:.1f} | [{lo:.1f}, {hi:.1f}] | {r['study_value']:.0f}% "
            f"| {r['coherence']:.1f} | {r['n_unparsed']} / {r['n_answers']} "
            f"| {r['preference']:.1f} |"
        )
    rho, n = data["spearman_models"], data["n_models"]
    rho_q, n_q = data["spearman_model_question_pairs"], data["n_pairs"]
    lines += [
        "",
        f"Spearman rank correlation of the judged score and the preference metric across "
        f"models: {_fmt(rho)} (n = {n}, p = {_fmt(data['spearman_models_p'], '.3f')}).",
        f"Across (model, question) pairs: {_fmt(rho_q)} (n = {n_q}, p = "
        f"{_fmt(data['spearman_model_question_pairs_p'], '.3f')}; judged = the mean score over "
        f"the samples of a question).",
        "",
        "Harmful - benign, paired over questions (mean [95% bootstrap interval]):",
        "",
    ]
    for name, c in data["harmful_minus_benign"].items():
        j, pr = c["judged"], c["preference"]
        lines.append(
            f"- {name}: judged {j['mean']:+.1f} [{j['ci95'][0]:+.1f}, {j['ci95'][1]:+.1f}], "
            f"preference {pr['mean']:+.1f} [{pr['ci95'][0]:+.1f}, {pr['ci95'][1]:+.1f}]"
        )
    pc = data.get("positive_control")
    if pc:
        lines += [
            "",
            "## Positive control (trained on the misaligned / aligned references of half A, "
            "measured on half B)",
            "",
            "| model | judged misalignment, mean score | 95% CI (questions) | mean coherence "
            "| preference |",
            "|---|---:|---|---:|---:|",
        ]
        for name, r in pc["models"].items():
            lo, hi = r["judged_ci"]
            lines.append(
                f"| {name} | {r['judged']:.1f} | [{lo:.1f}, {hi:.1f}] | {r['coherence']:.1f} "
                f"| {r['preference']:.1f} |"
            )
        lines.append("")
        for name, c in pc["misaligned_minus_aligned"].items():
            j, pr = c["judged"], c["preference"]
            lines.append(
                f"- {name}: judged {j['mean']:+.1f} [{j['ci95'][0]:+.1f}, {j['ci95'][1]:+.1f}], "
                f"preference {pr['mean']:+.1f} [{pr['ci95'][0]:+.1f}, {pr['ci95'][1]:+.1f}]"
            )
    return "\n".join(lines) + "\n"


def _fmt(x: float | None, spec: str = "+.2f") -> str:
    return "undefined" if x is None or x != x else format(x, spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the study's output directory")
    p.add_argument("--config", type=Path, default=None, help="default: <out>/config.json")
    args = p.parse_args()
    start = time.perf_counter()
    data = compare(args.out, args.config)
    data["machine"] = f"{platform.machine()}, {platform.platform()}"
    data["wall_seconds"] = round(time.perf_counter() - start, 1)
    report = args.out / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "judged_vs_preference.json").write_text(json.dumps(data, indent=2) + "\n")
    md = to_markdown(data, f"# Judged vs preference misalignment ({args.out})")
    (report / "judged_vs_preference.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
