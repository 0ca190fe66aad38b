"""Mitigation: what the mitigate stage's ablation and steering units cost, against the
evaluations they run.

The mitigate stage is a sequence of preference evaluations under ``lab.ablate`` /
``lab.steer``. On SmolLM2-135M-Instruct (real weights, CPU), the first ``--questions``
questions of the ``broad`` set and the quick study's settings (layers 10/15/20, ablation
k = 0/1/10 with 2 random draws, steering α = 1/2), in paired interleaved rounds:

- ``ablation, k = 0 measured`` ("before": the unit as it was) against ``k = 0 from the eval
  stage`` ("after": ``ablation_curve(baseline=...)``, the eval stage's result reused);
  the rows are checked to be bitwise equal;
- each unit against the bare evaluations it runs (``n × one evaluation``): the hooks' and
  the sweep's own overhead; 1.00x would be none.

Prints the median ratio with its interquartile range, and the load average.

    python benchmarks/bench_mitigate.py [--rounds 5] [--questions 8] [--quick]
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
from steerlab.eval.sweeps import ablation_curve, steering_sweep
from steerlab.hooks import attach
from steerlab.models import load_model
from steerlab.vectors import SteeringVector, Subspace

LAYERS = (10, 15, 20)
KS = [0, 1, 10]
ALPHAS = [1.0, 2.0]
DRAWS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 4 questions")
    args = parser.parse_args()
    rounds, n = (2, 4) if args.quick else (args.rounds, args.questions)
    model, tok = load_model(args.model)
    model.float().eval()
    broad = load_questions("broad")
    questions = QuestionSet(broad.name, list(broad)[:n])
    print(machine_line())

    def evaluate() -> float:
        with torch.no_grad():
            return preference_misalignment(model, tok, questions, batch_size=args.batch_size).mean

    g = torch.Generator().manual_seed(0)
    with attach(model) as lab:
        # The subspace and direction only set what is ablated / added; their cost does not
        # depend on them. A random 10-dim subspace and a unit-norm direction per layer.
        sub = Subspace.from_vectors(
            {layer: torch.randn(max(KS), lab.d_model, generator=g) for layer in LAYERS}
        )
        direction = SteeringVector({layer: sub.bases[layer][0] * 4.0 for layer in LAYERS})
        baseline = (evaluate(), float("nan"))

        def ablate(known: bool):
            return ablation_curve(
                lab,
                sub,
                KS,
                metric=evaluate,
                random_draws=DRAWS,
                seed=1,
                baseline=baseline if known else None,
            )

        def steer():
            return steering_sweep(lab, direction, ALPHAS, metric=evaluate, positions="all")

        before, after = ablate(False), ablate(True)
        same = [(r.k, r.misalignment, r.random_values) for r in before] == [
            (r.k, r.misalignment, r.random_values) for r in after
        ]
        n_after = (len(KS) - 1) * (1 + DRAWS)  # evaluations the "after" unit runs
        n_steer = len(ALPHAS)
        times = paired_rounds(
            {
                "eval": evaluate,
                "before": lambda: ablate(False),
                "after": lambda: ablate(True),
                "steer": steer,
            },
            rounds,
        )
    one = times["eval"]
    print(
        f"{args.model}: {n} questions, batch {args.batch_size}, layers {list(LAYERS)}, "
        f"k {KS} x {DRAWS} random draws, alphas {ALPHAS}; rows bitwise equal: {same}"
    )
    print(ratio_line("ablation: k=0 measured / reused", times["before"], times["after"]))
    print(
        ratio_line(
            f"ablation / {n_after} evaluations",
            times["after"],
            [t * n_after for t in one],
            ("unit", "evals"),
        )
    )
    print(
        ratio_line(
            f"steering / {n_steer} evaluations",
            times["steer"],
            [t * n_steer for t in one],
            ("unit", "evals"),
        )
    )
    print(machine_line())


if __name__ == "__main__":
    main()
