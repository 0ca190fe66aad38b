"""Put a judged study's misalignment beside the judge-free preference metric.

Reads a study run with ``metric = "judge"`` (at least its baseline, train and eval stages,
e.g. ``configs/judged.toml``), computes the preference metric of the same models (base and
every adapter) on the same questions, and writes ``<out>/report/judged_vs_preference.md``
and ``.json``: per model the judged score, misaligned rate, mean coherence and unparsed
count beside the preference score, with their Spearman rank correlation across models
(and, finer, across (model, question) pairs).

    python examples/judged_vs_preference.py runs/judged [--config configs/judged.toml]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from steerlab.eval.preference import preference_misalignment
from steerlab.eval.result import EvalResult
from steerlab.study import Study, load_config
from steerlab.study.metrics import question_set


def _judged(path: Path) -> dict[str, Any]:
    result = EvalResult.from_json(path / "result.json")
    per_q: dict[str, list[float]] = {}
    for u in result.units:
        if u.value is not None:
            per_q.setdefault(u.question_id, []).append(u.value)
    misaligned = [u.extra.get("misaligned") for u in result.units]
    return {
        "judged": result.mean,
        "judged_ci": list(result.ci),
        "misaligned_rate": sum(bool(m) for m in misaligned) / max(len(misaligned), 1),
        "n_unparsed": result.n_unparsed,
        "per_question": {q: sum(v) / len(v) for q, v in per_q.items()},
    }


def _preference(study: Study, adapter: Path | None) -> dict[str, Any]:
    model, tok = study.load_model(adapter)
    qs = question_set(study.config.eval, "text")
    result = preference_misalignment(model, tok, qs, batch_size=study.config.eval.batch_size)
    return {
        "preference": result.mean,
        "preference_per_question": {u.question_id: u.value for u in result.units},
    }


def compare(out: Path, config: Path | None) -> dict[str, Any]:
    """Judged vs preference per model, with rank correlations (see the module docstring)."""
    cfg = load_config(config or out / "config.toml")
    study = Study(cfg, out, progress=False)
    rows = {"base": {**_judged(out / "base" / "text"), **_preference(study, None)}}
    for run in study.runs():
        rows[run.name] = {
            **_judged(out / "eval" / run.name / "text"),
            **_preference(study, study.adapter(run)),
        }
    judged = [r["judged"] for r in rows.values()]
    pref = [r["preference"] for r in rows.values()]
    pairs = [
        (r["per_question"][q], r["preference_per_question"][q])
        for r in rows.values()
        for q in r["per_question"]
    ]
    rho_models = float(spearmanr(judged, pref).statistic) if len(rows) > 1 else None
    rho_pairs = spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) > 2 else None
    return {
        "models": rows,
        "spearman_models": rho_models,
        "n_models": len(rows),
        "spearman_model_question_pairs": None if rho_pairs is None else float(rho_pairs),
        "n_pairs": len(pairs),
    }


def to_markdown(data: dict[str, Any], header: str) -> str:
    lines = [header, "", "| model | judged misalignment (0-100) | 95% CI | misaligned rate |"]
    lines[-1] += " unparsed | preference (0-100) |"
    lines.append("|---|---:|---|---:|---:|---:|")
    for name, r in data["models"].items():
        lo, hi = r["judged_ci"]
        lines.append(
            f"| {name} | {r['judged']:.1f} | [{lo:.1f}, {hi:.1f}] | {r['misaligned_rate']:.2f} "
            f"| {r['n_unparsed']} | {r['preference']:.1f} |"
        )
    rho, n = data["spearman_models"], data["n_models"]
    rho_q, n_q = data["spearman_model_question_pairs"], data["n_pairs"]
    lines += [
        "",
        f"Spearman rank correlation across models: {rho if rho is None else f'{rho:+.2f}'} "
        f"(n = {n} models; with 2 models it can only be +1 or -1).",
        f"Across (model, question) pairs: {rho_q if rho_q is None else f'{rho_q:+.2f}'} "
        f"(n = {n_q}; judged = mean over the samples of a question).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the study's output directory")
    p.add_argument("--config", type=Path, default=None, help="default: <out>/config.toml")
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
