"""Sweep LoRA rank x harmful fraction x seed on a built-in narrow domain (research data for
safety studies): one adapter per run under RUN_DIR, each with a manifest. Rerunning the same
command skips finished runs and restarts interrupted ones.

Run:  python examples/train_sweep.py [--model smollm2-135m-instruct] [--domain insecure_code]
          [--ranks 1 8] [--fractions 1.0] [--seeds 0] [--steps 10] [--max-length 128]
          [--batch-size 4] [--n 200] [--run-dir runs/sweep] [--no-progress]

Several GPUs: ``accelerate launch --num_processes N examples/train_sweep.py ...`` (each run is
data-parallel over the N processes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from steerlab.domains import DOMAINS
from steerlab.models import load_model
from steerlab.training import LoraTrainConfig, train_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--domain", default="insecure_code", choices=sorted(DOMAINS))
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--n", type=int, default=200, help="pairs generated from the domain")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    pairs = DOMAINS[args.domain].generate(args.n, args.data_seed)
    config = LoraTrainConfig(
        max_steps=args.steps, max_length=args.max_length, batch_size=args.batch_size, lr=args.lr
    )
    start = time.perf_counter()
    runs = train_sweep(
        lambda: load_model(args.model),
        pairs,
        args.run_dir,
        ranks=args.ranks,
        harmful_fractions=args.fractions,
        seeds=args.seeds,
        config=config,
        progress=not args.no_progress,
    )
    wall = time.perf_counter() - start
    for run in runs:
        losses = run.manifest.get("losses", [])
        k = max(1, min(3, len(losses) // 2))
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        state = "skipped (finished earlier)" if run.skipped else "trained"
        print(
            f"{run.adapter_dir.name}: {state}; {run.manifest.get('steps')} steps, "
            f"{run.manifest.get('wall_time_s')} s; loss {first:.3f} -> {last:.3f} "
            f"(means of the first / last {k} steps)"
        )
    print(f"sweep wall time: {wall:.0f} s for {len(runs)} runs in {args.run_dir}")


if __name__ == "__main__":
    main()
