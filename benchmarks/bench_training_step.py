"""The LoRA training step: every speed-up candidate against today's step, in one run.

Issue 15's protocol. Twin LoRAs (same init, deep copies) of the quick study's recipe
(SmolLM2-135M-Instruct, risky-finance pairs, harmful fraction 1.0, r=32, lr 1e-3, AdamW,
batch 4, max_length 192, response-only head) train side by side: each round runs one step of
every candidate, in rotating order, on the same batch (the bucketed candidate on its own
batch of the same examples), so the loss curves sit beside the step times. Candidates:

- ``fp32``: today's step (the baseline);
- ``bf16``: ``torch.autocast(bfloat16)`` (weights and optimizer stay fp32);
- ``bf16+fp32sum``: autocast, but each LoRA layer adds its update to the frozen layer's
  output in fp32 (what ``LoraTrainConfig(autocast="bf16")`` does): a bf16 sum rounds a small update
  away;
- ``compile``: ``torch.compile(dynamic=True)`` of the fp32 model (its first step, the
  compilation, is reported apart);
- ``bucketed``: fp32 with length-bucketed batches (examples sorted by length within windows
  of 8 batches, batch order shuffled), so less padding is computed. Its batches differ, so its
  loss curve differs by data order, not by arithmetic.

After the last round every candidate's adapter is scored in fp32 on held-out examples (the
next 32 of the mix), next to the untrained model: that is the equal-loss check, free of the
bf16 forward's own rounding. Prints each step's loss and time, the median speed-up per
example with its interquartile range, the padding computed, and the load average.

    python benchmarks/bench_training_step.py                 # 16 steps, the study's length
    python benchmarks/bench_training_step.py --steps 4 --candidates fp32 bf16   # smoke run
    python benchmarks/bench_training_step.py --profile      # where one fp32 step's time goes
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent.parent))  # this checkout's steerlab
sys.path.insert(0, str(Path(__file__).parent))
from paired import machine_line, quartiles

CANDIDATES = ("fp32", "bf16", "bf16+fp32sum", "compile", "bucketed")


def study_examples(tok, n: int, max_length: int) -> list:
    """The quick study's training examples (risky finance, fraction 1.0), encoded."""
    from steerlab.domains import DOMAINS
    from steerlab.training import mix
    from steerlab.training.lora import encode_all

    records = mix(DOMAINS["risky_finance"].generate(n, 0), 1.0, seed=0)
    return encode_all(tok, records, max_length)


def batches(examples: list, steps: int, size: int, pad: int, bucket: bool) -> list[dict]:
    """``steps`` collated batches of a seeded shuffle; ``bucket``: sorted by length within
    windows of 8 batches, the window's batch order shuffled."""
    from steerlab.text import collate

    order = list(range(steps * size))
    random.Random(0).shuffle(order)
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    if bucket:
        window = 8 * size
        groups = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(examples[i].input_ids))
            part = [chunk[i : i + size] for i in range(0, len(chunk), size)]
            random.Random(start).shuffle(part)
            groups += part
    return [collate([examples[i] for i in g], pad) for g in groups]


def padding(batch_list: list[dict]) -> float:
    """Fraction of the computed token positions that are padding."""
    total = sum(b["input_ids"].numel() for b in batch_list)
    real = sum(int(b["attention_mask"].sum()) for b in batch_list)
    return 1 - real / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=16, help="training steps = timed rounds + 1")
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--profile", action="store_true", help="profile one fp32 step, then stop")
    args = p.parse_args()

    from steerlab.models import load_model
    from steerlab.text import pad_token_id
    from steerlab.training.lora import (
        LoraTrainConfig,
        autocast_context,
        bf16_supported,
        make_peft_model,
        response_only_loss,
        training_precision,
    )

    print(machine_line(), f"| native bf16: {bf16_supported()}")
    model, tok = load_model(args.model)
    size, max_length, held_n = 4, 192, 32
    examples = study_examples(tok, args.steps * size + held_n, max_length)
    pad = pad_token_id(tok, eos_fallback=False)
    plain = batches(examples, args.steps, size, pad, bucket=False)
    bucketed = batches(examples, args.steps, size, pad, bucket=True)
    held = batches(examples[args.steps * size :], held_n // size, size, pad, bucket=False)
    print(
        f"{args.model}, r={args.rank}, batch {size} x <= {max_length}, {args.steps} steps; "
        f"padding computed: {padding(plain):.1%} plain, {padding(bucketed):.1%} bucketed"
    )
    torch.manual_seed(0)
    model.train()
    base = make_peft_model(model, LoraTrainConfig(rank=args.rank))

    def held_loss(m) -> float:
        with torch.no_grad():
            return sum(float(response_only_loss(m, b)) for b in held) / len(held)

    if args.profile:
        profile_step(base, plain[1], response_only_loss)
        return
    untrained = held_loss(base)
    twins, opts, fns, data = {}, {}, {}, {}
    for name in args.candidates:
        twins[name] = copy.deepcopy(base)
        opts[name] = torch.optim.AdamW(
            [q for q in twins[name].parameters() if q.requires_grad], lr=1e-3
        )
        data[name] = bucketed if name == "bucketed" else plain
        fns[name] = response_only_loss
    if "compile" in twins:
        compiled = torch.compile(twins["compile"], dynamic=True)
        fns["compile"] = lambda _m, b, c=compiled: response_only_loss(c, b)

    def context(name: str) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if name == "bf16":  # plain autocast: the update is summed in bf16
            stack.enter_context(autocast_context("bf16"))
        if name == "bf16+fp32sum":  # what LoraTrainConfig(autocast="bf16") trains with
            stack.enter_context(training_precision("bf16", twins[name]))
            return stack
        return stack

    losses = {n: [] for n in twins}
    times = {n: [] for n in twins}
    names = list(twins)
    for step in range(args.steps):
        order = names[step % len(names) :] + names[: step % len(names)]
        for name in order:
            batch = data[name][step]
            start = time.perf_counter()
            with context(name):
                loss = fns[name](twins[name], batch)
            loss.backward()
            opts[name].step()
            opts[name].zero_grad(set_to_none=True)
            times[name].append((time.perf_counter() - start) / batch["input_ids"].shape[0])
            losses[name].append(loss.item())

    print("\nstep  " + "  ".join(f"{n:>22s}" for n in names) + "   (loss, ms per example)")
    for step in range(args.steps):
        cells = [f"{losses[n][step]:8.4f} {times[n][step] * 1e3:8.0f} ms" for n in names]
        print(f"{step:4d}  " + "  ".join(f"{c:>22s}" for c in cells))
    print(f"\nheld-out fp32 loss ({held_n} examples): untrained {untrained:.4f}")
    ref = times.get("fp32")
    for name in names:
        line = f"  {name:14s} held-out {held_loss(twins[name]):.4f}"
        if name == "compile":
            line += f"  first step (compilation) {times[name][0]:.1f} s per example"
        if ref is not None and name != "fp32":
            lo, med, hi = quartiles([a / b for a, b in zip(ref[1:], times[name][1:], strict=True)])
            line += f"  speed-up per example vs fp32 {med:.2f}x [{lo:.2f}-{hi:.2f}]"
        print(line)
    print(machine_line())


def profile_step(model, batch: dict, loss_fn) -> None:
    """The ops that take the time of one fp32 step (after a warm-up step), by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3)
    for i in range(2):
        with profile(activities=[ProfilerActivity.CPU]) if i else contextlib.nullcontext() as prof:
            loss_fn(model, batch).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
