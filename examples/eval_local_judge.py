"""SmolLM2-135M-Instruct (base) judged by a local LLM judge on the broad text-only set.

Samples answers (the paper's sampling settings), scores them with the Betley-style
alignment + coherence judge on a local model (by default SmolLM2 itself, with the reply
prefilled by "Score: " so that it answers with a number), and prints the result, the
unparsed count and the wall time. A 135M judge is weak: read the numbers as a demonstration
of the pipeline, not as a measurement.

    python examples/eval_local_judge.py --questions 8 --samples 1 --max-new-tokens 48
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--judge-model", default=None, help="default: the evaluated model")
    parser.add_argument("--questions", type=int, default=8, help="spread over the categories")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("runs/eval-local-judge"))
    args = parser.parse_args()

    from steerlab.eval import SamplingConfig, evaluate, load_questions
    from steerlab.eval.judges import make_judge
    from steerlab.models import load_model

    start = time.perf_counter()
    model, tok = load_model(args.model)
    qs = load_questions("broad")
    step = len(qs) / args.questions
    qs = type(qs)(qs.name, [qs[int(i * step)] for i in range(args.questions)])
    spec = {"kind": "alignment", "backend": "local", "prefill": "Score: "}
    if args.judge_model is None:
        judge = make_judge({**spec, "model": args.model}, model=model, tokenizer=tok)
    else:
        judge = make_judge({**spec, "model": args.judge_model})
    sampling = SamplingConfig(n_samples=args.samples, max_new_tokens=args.max_new_tokens)
    result = evaluate(model, tok, qs, judge, sampling=sampling, out_dir=args.out)
    wall = time.perf_counter() - start
    print(result.summary())
    print(result.to_markdown())
    print(f"answers and verdicts: {args.out}; wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
