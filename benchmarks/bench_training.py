"""LoRA training step: response-only LM head against the naive full-logit head.

Times forward + backward + optimizer step of a rank-8 LoRA on real weights (SmolLM2-135M and,
if installed, Gemma 3 270M), batch 4 x 128 tokens with the loss on the last 32 tokens of each
row, in paired interleaved rounds, and prints the median ratio naive / response-only and the
training tokens/s of each. Peak RSS of each variant is measured in a fresh subprocess, during
training steps only (the peak mark is reset after the model is loaded).

    python benchmarks/bench_training.py [--rounds 7] [--models smollm2-135m-instruct gemma3-270m]

The other step candidates (bf16 autocast, torch.compile, length bucketing) are measured on the
study's real batches by ``benchmarks/bench_training_step.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent.parent))  # this checkout's steerlab
sys.path.insert(0, str(Path(__file__).parent))


def _batch(vocab: int, batch: int = 4, seq: int = 128, response: int = 32) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab, (batch, seq), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, -response:] = ids[:, -response:]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _setup(name: str):
    from steerlab.models import load_model
    from steerlab.training.lora import LoraTrainConfig, make_peft_model

    model, _ = load_model(name)
    model.train()
    model = make_peft_model(model, LoraTrainConfig(rank=8))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, opt, _batch(model.config.get_text_config().vocab_size)


def _step(model, opt, batch, loss_fn) -> float:
    start = time.perf_counter()
    loss = loss_fn(model, batch)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def _rss_child(name: str, variant: str) -> None:
    from steerlab.training.lora import full_logit_loss, response_only_loss

    model, opt, batch = _setup(name)
    fn = response_only_loss if variant == "response_only" else full_logit_loss
    _step(model, opt, batch, fn)  # optimizer state allocated
    try:  # reset the kernel's peak-RSS mark so loading the model does not set the peak
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    for _ in range(3):
        _step(model, opt, batch, fn)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with open("/proc/self/status") as fh:
            hwm = next(line for line in fh if line.startswith("VmHWM"))
        peak = int(hwm.split()[1]) / 1024
    except (OSError, StopIteration):
        pass
    print(json.dumps({"peak_rss_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma3-270m"])
    parser.add_argument("--rss-child", nargs=2, metavar=("MODEL", "VARIANT"))
    args = parser.parse_args()
    if args.rss_child:
        _rss_child(*args.rss_child)
        return

    from steerlab.models.offline import ModelNotInstalledError
    from steerlab.training.lora import full_logit_loss, response_only_loss

    print(
        f"LoRA r=8 training step, batch 4 x 128, loss on 32 tokens/row, torch {torch.__version__}"
    )
    for name in args.models:
        try:
            model, opt, batch = _setup(name)
        except ModelNotInstalledError as err:
            print(f"{name}: skipped ({err})")
            continue
        with torch.no_grad():
            a, b = response_only_loss(model, batch), full_logit_loss(model, batch)
        assert torch.allclose(a, b, rtol=1e-4), (a, b)
        _step(model, opt, batch, response_only_loss)  # warm-up
        _step(model, opt, batch, full_logit_loss)
        times = {"response_only": [], "full_logits": []}
        for r in range(args.rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for variant in order:
                fn = response_only_loss if variant == "response_only" else full_logit_loss
                times[variant].append(_step(model, opt, batch, fn))
        ratios = [f / r for f, r in zip(times["full_logits"], times["response_only"], strict=True)]
        tokens = batch["input_ids"].numel()
        print(f"\n{name}")
        for variant, ts in times.items():
            med = statistics.median(ts)
            rss = json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--rss-child", name, variant],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )["peak_rss_mib"]
            print(
                f"  {variant:14s} step {med * 1000:7.0f} ms  {tokens / med:7.0f} tokens/s  "
                f"peak RSS {rss:6.0f} MiB"
            )
        print(
            f"  speed-up (full / response-only), median of {args.rounds} paired rounds: "
            f"{statistics.median(ratios):.2f}x"
        )
        del model, opt


if __name__ == "__main__":
    main()
