"""Record stage: early-stopped recording (``lab.stop_early()``) against the full forward.

On SmolLM2-135M-Instruct (real weights, CPU): records ``resid_post`` at the record stage's
layers (default 10, 15, 20 of 30) over one forward of batch 4 x 128, with and without
``lab.stop_early()``, in paired interleaved rounds; then the same for ``collect_paired``
(adapter on and off, streamed to disk) on a rank-8 LoRA, whose "before" path is
``stop_early=False``. Checks the recordings are bitwise equal, then prints the median ratio
before / after with its interquartile range, and the load average.

    python benchmarks/bench_record.py [--rounds 9] [--layers 10 15 20] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent.parent))  # this checkout's steerlab
sys.path.insert(0, str(Path(__file__).parent))
from paired import machine_line, paired_rounds, ratio_line

from steerlab.hooks import attach
from steerlab.hooks.collect import Example, collect_paired
from steerlab.models import load_model


def _batch(vocab: int, batch: int, seq: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab, (batch, seq), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _record(model, lab, batch, layers, stop: bool) -> dict:
    with torch.no_grad(), lab.record(layers, "resid_post") as rec:
        if stop:
            with lab.stop_early():
                model(**batch)
        else:
            model(**batch)
    return {k: rec.activations[k] for k in rec.keys}


def bench_lab(model, layers, rounds: int, batch: int, seq: int) -> None:
    inputs = _batch(model.config.vocab_size, batch, seq)
    lab = attach(model)
    full = _record(model, lab, inputs, layers, stop=False)
    early = _record(model, lab, inputs, layers, stop=True)
    same = all(torch.equal(full[k], early[k]) for k in full)
    times = paired_rounds(
        {
            "full": lambda: _record(model, lab, inputs, layers, stop=False),
            "early": lambda: _record(model, lab, inputs, layers, stop=True),
        },
        rounds,
    )
    print(f"lab.record layers {layers}, batch {batch} x {seq} (bitwise equal: {same})")
    print(ratio_line("full / stop_early", times["full"], times["early"]))


def bench_paired(model, layers, rounds: int, batch: int, seq: int) -> None:
    from peft import LoraConfig, get_peft_model  # lazy: optional dependency

    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    peft_model.eval()
    g = torch.Generator().manual_seed(1)
    examples = [
        Example(tuple(torch.randint(10, 1000, (seq,), generator=g).tolist()), seq // 2)
        for _ in range(batch * 2)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        count = iter(range(10**6))

        def run(stop: bool) -> None:
            out = Path(tmp) / str(next(count))
            collect_paired(
                peft_model, examples, out, layers=layers, batch_size=batch, stop_early=stop
            )

        times = paired_rounds({"full": lambda: run(False), "early": lambda: run(True)}, rounds)
    print(f"collect_paired layers {layers}, {len(examples)} examples x {seq}, batch {batch}")
    print(ratio_line("full / stop_early", times["full"], times["early"]))
    peft_model.unload()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--layers", type=int, nargs="+", default=[10, 15, 20])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quick", action="store_true", help="3 rounds, batch 2 x 64")
    args = parser.parse_args()
    rounds, batch, seq = (3, 2, 64) if args.quick else (args.rounds, 4, 128)
    model, _ = load_model(args.model)
    model.float().eval()
    print(machine_line())
    bench_lab(model, args.layers, rounds, batch, seq)
    bench_paired(model, args.layers, rounds, batch, seq)
    print(machine_line())


if __name__ == "__main__":
    main()
