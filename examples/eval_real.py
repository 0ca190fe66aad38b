"""Real-input evaluation: SmolLM2-135M-Instruct and the Gemma 3 270M hybrid VLM.

1. SmolLM2-135M-Instruct (base) with the judge-free preference metric on the broad text set.
2. The Gemma 3 270M hybrid (real decoder, RANDOM vision tower: its vision features are
   meaningless) with the preference metric on the broad text set and the broad-multimodal
   set, side by side, plus a short sampling run on multimodal questions.
3. A quick sampling setting on SmolLM2 (default 20 questions x 3 samples x 64 new tokens),
   timed, answers written resumably.

Every stage writes its result / answers under --out and prints its wall time.

Run:  python examples/eval_real.py [--out runs/eval-real] [--questions N]
          [--hybrid-questions N] [--sample-questions 20]
          [--skip smol-pref,hybrid-pref,hybrid-sample,smol-sample]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from steerlab.eval import (
    SamplingConfig,
    compare,
    load_questions,
    preference_misalignment,
    sample_answers,
)
from steerlab.models import load_model

STAGES = ("smol-pref", "hybrid-pref", "hybrid-sample", "smol-sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/eval-real"))
    parser.add_argument("--questions", type=int, default=None, help="first N questions only")
    parser.add_argument("--hybrid-questions", type=int, default=None, help="hybrid: first N")
    parser.add_argument("--sample-questions", type=int, default=20)
    parser.add_argument("--skip", default="", help=f"comma-separated stages of {STAGES}")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STAGES):
        parser.error(f"unknown stages {sorted(skip - set(STAGES))}; expected {STAGES}")
    args.out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    summary: dict[str, object] = {"torch_threads": torch.get_num_threads()}

    text = load_questions("broad")
    mm = load_questions("broad-multimodal")
    if args.questions:
        text, mm = text.take(args.questions), mm.take(args.questions)

    def timed(stage: str, fn):
        start = time.perf_counter()
        value = fn()
        timings[stage] = round(time.perf_counter() - start, 1)
        print(f"[{stage}] {timings[stage]:.1f} s", flush=True)
        return value

    if {"smol-pref", "smol-sample"} - skip:
        smol, smol_tok = timed("smol-load", lambda: load_model("smollm2-135m-instruct"))
    if "smol-pref" not in skip:
        r = timed("smol-pref", lambda: preference_misalignment(smol, smol_tok, text))
        r.save(args.out / "smollm2-preference-broad.json")
        print(r.to_markdown())
        summary["smollm2_preference_broad"] = {
            "mean": r.mean,
            "ci": r.ci,
            "n": r.n,
            "reference_nll": r.extra["reference_nll"],
        }

    h_text, h_mm = text, mm
    if args.hybrid_questions:
        h_text, h_mm = text.take(args.hybrid_questions), mm.take(args.hybrid_questions)
    if {"hybrid-pref", "hybrid-sample"} - skip:
        hybrid, processor = timed("hybrid-load", lambda: load_model("gemma3-270m-hybrid"))
    if "hybrid-pref" not in skip:
        r_text = timed(
            "hybrid-pref-text",
            lambda: preference_misalignment(hybrid, processor, h_text, batch_size=4),
        )
        r_mm = timed(
            "hybrid-pref-mm", lambda: preference_misalignment(hybrid, processor, h_mm, batch_size=4)
        )
        r_text.save(args.out / "hybrid-preference-broad.json")
        r_mm.save(args.out / "hybrid-preference-broad-multimodal.json")
        table = compare(
            r_text, r_mm, labels=["hybrid, text-only", "hybrid, multimodal (random vision)"]
        )
        (args.out / "hybrid-text-vs-mm.md").write_text(table)
        print(table)
        summary["hybrid_preference"] = {
            "text": {
                "mean": r_text.mean,
                "ci": r_text.ci,
                "reference_nll": r_text.extra["reference_nll"],
            },
            "multimodal": {
                "mean": r_mm.mean,
                "ci": r_mm.ci,
                "reference_nll": r_mm.extra["reference_nll"],
            },
        }
    if "hybrid-sample" not in skip:
        cfg = SamplingConfig(n_samples=1, max_new_tokens=32, batch_size=5)
        answers = timed(
            "hybrid-sample",
            lambda: sample_answers(
                hybrid,
                processor,
                mm.take(5),
                sampling=cfg,
                out_path=args.out / "hybrid-answers.jsonl",
            ),
        )
        for a in answers:
            print(f"  {a.question_id}: {a.answer[:100]!r}")

    if "smol-sample" not in skip:
        cfg = SamplingConfig(n_samples=3, max_new_tokens=64, batch_size=10)
        qs = load_questions("broad").take(args.sample_questions)
        answers = timed(
            "smol-sample",
            lambda: sample_answers(
                smol, smol_tok, qs, sampling=cfg, out_path=args.out / "smollm2-answers.jsonl"
            ),
        )
        summary["smollm2_sampling"] = {
            "questions": len(qs),
            "samples": len(answers),
            "max_new_tokens": 64,
            "finished_with_eos": sum(a.finished for a in answers),
        }
    summary["wall_seconds"] = timings
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
