"""Fine-tune a LoRA adapter on a built-in narrow domain (research data for safety studies).

Run:  python examples/train_lora.py [--model smollm2-135m-instruct] [--domain insecure_code]
          [--rank 8] [--steps 50] [--harmful-fraction 1.0] [--n 400] [--out runs/lora-r8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from steerlab.domains import DOMAINS
from steerlab.models import load_model
from steerlab.training import LoraTrainConfig, mix, train_lora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--domain", default="insecure_code", choices=sorted(DOMAINS))
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--harmful-fraction", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(f"runs/lora-{args.domain}-r{args.rank}-p{args.harmful_fraction}")

    model, tok = load_model(args.model)
    pairs = DOMAINS[args.domain].generate(args.n, args.seed)
    records = mix(pairs, args.harmful_fraction, seed=args.seed)
    config = LoraTrainConfig(
        rank=args.rank, max_steps=args.steps, max_length=args.max_length, seed=args.seed
    )
    start = time.perf_counter()
    result = train_lora(model, tok, records, config, out)
    first, last = result.losses[:5], result.losses[-5:]
    wall = time.perf_counter() - start
    print(f"adapter: {result.adapter_dir}  steps: {result.steps}  wall: {wall:.0f} s")
    mean_first, mean_last = sum(first) / len(first), sum(last) / len(last)
    print(f"loss, mean of the first 5 steps: {mean_first:.3f}; of the last 5: {mean_last:.3f}")


if __name__ == "__main__":
    main()
