"""Validate a local LLM judge on labelled answers: AUROC, score distributions, unparsed rate.

The labelled answers:

- ``aligned`` / ``misaligned``: the hand-written reference answers of a question set
  (default ``broad``, 64 + 64);
- ``base``: answers sampled from base SmolLM2-135M-Instruct (expected aligned: every one
  the judge calls misaligned is a false alarm). Two samples per question: sample 0 is the
  rubric judge's base answer, sample 1 the answer judged.

For each judge kind (``alignment``: alignment + coherence; ``rubric``: only where a base
answer exists) it reports AUROC aligned vs misaligned (of the misalignment score), the
score distributions, the unparsed rate, the misaligned rate at the standard thresholds and
the seconds per verdict. Verdicts are appended to ``<out>/verdicts-<kind>-<tag>.jsonl`` as
they come (a rerun resumes), so an interrupted run still gives a summary of what it judged.
Questions are taken round-robin over the categories, so a partial run stays balanced.

    python examples/validate_judge.py                      # the committed run
    python examples/validate_judge.py --dtype bfloat16 --questions 8 --base-questions 0
    python examples/validate_judge.py --set examples/judge-validation/tuning.jsonl \\
        --prefill "Score: " --tag prefix                    # a prompt variant, tuning set

Never tune a prompt on the validation references: use a separate set (``--set``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import roc_auc_score

from steerlab.eval import SamplingConfig, load_questions, sample_answers
from steerlab.eval.judges import JUDGE_KINDS, make_judge
from steerlab.eval.types import JudgeItem
from steerlab.models import load_model

HERE = Path(__file__).resolve().parent / "judge-validation"
LABELS = ("aligned", "misaligned", "base")


def round_robin(questions: Any) -> list[Any]:
    """Questions ordered by (rank within category, category): every prefix is balanced."""
    seen: dict[str, int] = {}
    keyed = []
    for q in questions:
        seen[q.category] = seen.get(q.category, 0) + 1
        keyed.append((seen[q.category], q.category, q))
    return [q for *_, q in sorted(keyed, key=lambda t: (t[0], t[1]))]


def base_answers(questions: list[Any], out: Path, max_new_tokens: int) -> dict[str, list[str]]:
    """Two SmolLM2 answers per question (cached in ``out``), by question id."""
    if not questions:
        return {}
    model, tok = load_model("smollm2-135m-instruct")
    qs = type(load_questions("broad"))("validation", questions)
    sampling = SamplingConfig(n_samples=2, max_new_tokens=max_new_tokens, batch_size=4)
    answers = sample_answers(
        model, tok, qs, sampling=sampling, out_path=out / "base_answers.jsonl", progress=False
    )
    by_q: dict[str, list[str]] = {}
    for a in answers:
        by_q.setdefault(a.question_id, []).append(a.answer)
    return by_q


def build_items(kind: str, questions: list[Any], base: dict[str, list[str]]) -> list[tuple]:
    """``(label, JudgeItem)`` pairs; the rubric judge only gets questions with a base answer."""
    pairs = []
    for q in questions:
        ref = base.get(q.id, [None, None])
        if kind == "rubric" and ref[0] is None:
            continue
        base_answer = ref[0] if kind == "rubric" else None
        for label, answer in (("aligned", q.aligned), ("misaligned", q.misaligned)):
            pairs.append((label, JudgeItem(q.id, q.question, answer, base_answer, None, 0)))
        if ref[1] is not None:
            pairs.append(("base", JudgeItem(q.id, q.question, ref[1], base_answer, None, 1)))
    return pairs


def run_kind(judge: Any, pairs: list[tuple], path: Path, batch: int) -> None:
    """Judge ``pairs`` in batches, appending one JSON line per verdict to ``path``."""
    done = set()
    if path.is_file():
        done = {(r["label"], r["id"]) for r in map(json.loads, path.read_text().splitlines())}
    todo = [(lab, it) for lab, it in pairs if (lab, it.question_id) not in done]
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        t0 = time.perf_counter()
        verdicts = judge.judge([it for _, it in chunk])
        per = (time.perf_counter() - t0) / len(chunk)
        with open(path, "a", encoding="utf-8") as fh:
            for (label, item), v in zip(chunk, verdicts, strict=True):
                row = {"label": label, "id": item.question_id, "score": v.score}
                row |= {"misaligned": v.misaligned, "coherence": v.coherence, "seconds": per}
                row |= {"reason": v.reason, "flags": list(v.flags)}
                fh.write(json.dumps(row) + "\n")
        print(f"{path.name}: {start + len(chunk)}/{len(todo)} ({per:.1f} s/verdict)", flush=True)


def summarize(path: Path) -> dict[str, Any]:
    """AUROC, distributions, unparsed and misaligned rates of one verdicts file."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    out: dict[str, Any] = {"n": len(rows)}
    for label in LABELS:
        sub = [r for r in rows if r["label"] == label]
        if not sub:
            continue
        scores = np.array([r["score"] for r in sub if r["score"] is not None], dtype=float)
        stats: dict[str, Any] = {"n": len(sub), "unparsed_rate": 1 - len(scores) / len(sub)}
        stats["misaligned_rate"] = sum(bool(r["misaligned"]) for r in sub) / len(sub)
        if len(scores):
            q = np.quantile(scores, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
            stats["mean"] = float(scores.mean())
            stats["quantiles_0_10_25_50_75_90_100"] = [round(float(x), 1) for x in q]
            stats["histogram_0_20_40_60_80_100"] = np.histogram(scores, bins=5, range=(0, 100))[
                0
            ].tolist()
        out[label] = stats
    pos = [r["score"] for r in rows if r["label"] == "misaligned" and r["score"] is not None]
    neg = [r["score"] for r in rows if r["label"] == "aligned" and r["score"] is not None]
    if pos and neg:
        y = [1] * len(pos) + [0] * len(neg)
        out["auroc_aligned_vs_misaligned"] = float(roc_auc_score(y, pos + neg))
        if len(pos) > 1 and len(neg) > 1:  # resampling misaligned and aligned separately
            ci = bootstrap(
                (pos, neg),
                lambda a, b: roc_auc_score([1] * len(a) + [0] * len(b), [*a, *b]),
                vectorized=False,
                n_resamples=2000,
                method="percentile",
                rng=np.random.default_rng(0),
            ).confidence_interval
            out["auroc_ci95_bootstrap"] = [float(ci.low), float(ci.high)]
    seconds = [r["seconds"] for r in rows]
    out["seconds_per_verdict"] = float(np.mean(seconds)) if rows else None
    out["seconds_per_verdict_median"] = float(np.median(seconds)) if rows else None
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--judge-model", default=None, help="default: make_judge's default")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--kinds", default="alignment,rubric")
    p.add_argument("--set", default="broad", help="question set name or JSONL path")
    p.add_argument("--questions", type=int, default=64, help="questions (2 references each)")
    p.add_argument("--base-questions", type=int, default=16, help="questions with SmolLM2 answers")
    p.add_argument("--base-max-new-tokens", type=int, default=96)
    p.add_argument("--prefill", default="", help="forced start of the judge's reply")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--tag", default="default", help="names the verdict files of this variant")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument(
        "--summarize-only", action="store_true", help="summarize the verdict files; judge nothing"
    )
    return p.parse_args()


def write_summary(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    """Summarize every kind's verdict file of ``args.tag`` into ``summary-<tag>.json``."""
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, **extra}
    summary["machine"] = f"{platform.machine()}, {platform.platform()}"
    for kind in args.kinds.split(","):
        path = args.out / f"verdicts-{kind}-{args.tag}.jsonl"
        if path.is_file():
            summary[kind] = summarize(path)
    (args.out / f"summary-{args.tag}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summarize_only:
        print(json.dumps(write_summary(args, {}), indent=2))
        return
    start = time.perf_counter()
    questions = round_robin(load_questions(args.set))[: args.questions]
    base = base_answers(questions[: args.base_questions], args.out, args.base_max_new_tokens)
    spec: dict[str, Any] = {"backend": "local", "dtype": args.dtype, "prefill": args.prefill}
    if args.judge_model:
        spec["model"] = args.judge_model
    t0 = time.perf_counter()
    judge = make_judge({**spec, "kind": "alignment"})
    load_s = round(time.perf_counter() - t0, 1)
    for kind in args.kinds.split(","):
        judge = JUDGE_KINDS[kind](judge.backend)  # same model, dtype and prefill
        path = args.out / f"verdicts-{kind}-{args.tag}.jsonl"
        run_kind(judge, build_items(kind, questions, base), path, args.batch_size)
    extra = {"judge": judge.backend.name, "judge_load_seconds": load_s}
    extra["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(write_summary(args, extra), indent=2))


if __name__ == "__main__":
    main()
