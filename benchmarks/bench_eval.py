"""Evaluation / mitigation: the preference metric, fused (both references in one forward)
against the original two passes (``fused=False``).

The mitigate stage is a sequence of preference evaluations under ``lab.steer`` /
``lab.ablate``, so this is its unit of work. On SmolLM2-135M-Instruct (real weights, CPU),
the first ``--questions`` questions of the ``broad`` set, with and without a steering
vector at layer 15, in paired interleaved rounds. Checks the scores agree to 1e-5, then
prints the median ratio before / after with its interquartile range, and the load average.

    python benchmarks/bench_eval.py [--rounds 7] [--questions 16] [--batch-size 8] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent.parent))  # this checkout's steerlab
sys.path.insert(0, str(Path(__file__).parent))
from paired import machine_line, paired_rounds, ratio_line

from steerlab.eval import QuestionSet, load_questions, preference_misalignment
from steerlab.hooks import attach
from steerlab.models import load_model
from steerlab.vectors import SteeringVector


def bench(model, tok, questions, batch_size: int, rounds: int, label: str) -> None:
    def run(fused: bool):
        return preference_misalignment(model, tok, questions, batch_size=batch_size, fused=fused)

    old, new = run(False), run(True)
    diff = max(abs(a.value - b.value) for a, b in zip(old.units, new.units, strict=True))
    times = paired_rounds({"before": lambda: run(False), "after": lambda: run(True)}, rounds)
    print(f"{label}: {len(questions)} questions, batch {batch_size}, max |score diff| {diff:.1e}")
    print(ratio_line("two passes / fused", times["before"], times["after"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 4 questions")
    args = parser.parse_args()
    rounds, n = (3, 4) if args.quick else (args.rounds, args.questions)
    model, tok = load_model(args.model)
    model.float().eval()
    broad = load_questions("broad")
    questions = QuestionSet(broad.name, list(broad)[:n])
    print(machine_line())
    bench(model, tok, questions, args.batch_size, rounds, "preference, plain")
    with attach(model) as lab:
        vec = SteeringVector({15: torch.ones(lab.d_model) / lab.d_model**0.5})
        with lab.steer(vec, 4.0):
            bench(model, tok, questions, args.batch_size, rounds, "preference, steered")
    print(machine_line())


if __name__ == "__main__":
    main()
