"""The misalignment subspace on a real model: SmolLM2-135M-Instruct, base vs an insecure-code
LoRA adapter (research on emergent misalignment; the data are the built-in safety-study
pairs of :mod:`steerlab.domains`).

1. Paired collection: the adapter enabled vs disabled on ONE PeftModel, on insecure-code
   prompts + responses (a seed the adapter was not trained on), ``resid_post`` at one middle
   layer, response tokens only, streamed to disk.
2. ``fit_subspace`` of the per-token differences: explained-variance curve, k at
   50/80/90/95% (+ PNG).
3. Weight-space view: effective rank of the adapter's o_proj / down_proj updates at that
   layer and their overlap with the activation subspace.
4. One ablation curve, k = 0..K, with the judge-free preference metric
   (``steerlab.eval.preference_misalignment``) on the broad question set, a random-subspace
   control, and the aligned references' NLL as the coherence proxy (+ CSV and PNG).

Train an adapter first (or pass --adapter):
    python examples/train_lora.py --steps 30 --max-length 128 --n 120 \
        --out runs/lora-insecure_code-r8-s30
Run:
    python examples/analysis_real.py --adapter runs/lora-insecure_code-r8-s30 --layer 15
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--adapter", type=Path, default=Path("runs/lora-insecure_code-r8-s30"))
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--n", type=int, default=64, help="insecure-code examples to collect")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--max-k", type=int, default=0, help="components kept (0 = all)")
    parser.add_argument("--ks", type=int, default=10, help="ablation curve k = 0..ks")
    parser.add_argument("--questions", type=int, default=16, help="broad questions (0 = all)")
    parser.add_argument("--draws", type=int, default=2, help="random-control draws per k")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/analysis-real"))
    args = parser.parse_args()

    from peft import PeftModel

    from steerlab.analysis import fit_subspace, lora_updates, weight_activation_overlap
    from steerlab.domains import DOMAINS
    from steerlab.eval.sweeps import ablation_curve, save_table
    from steerlab.files import atomic_path
    from steerlab.hooks import attach
    from steerlab.hooks.collect import collect_paired, encode_examples
    from steerlab.models import load_model
    from steerlab.study.plots import plot_ablation_curve, plot_explained_variance

    args.out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    base, tok = load_model(args.model)
    model = PeftModel.from_pretrained(base, str(args.adapter)).eval()
    timings["load"] = time.perf_counter() - t0

    # 1. paired collection (seed 1: not the adapter's training draw)
    pairs = DOMAINS["insecure_code"].generate(args.n, 1)
    examples = encode_examples(
        tok,
        [p.prompt for p in pairs],
        [p.harmful_response for p in pairs],
        max_length=args.max_length,
    )
    t = time.perf_counter()
    run_dir = args.out / f"paired-L{args.layer}-{time.strftime('%Y%m%d-%H%M%S')}"
    stores = collect_paired(model, examples, run_dir, layers=[args.layer], batch_size=8)
    timings["paired collection"] = time.perf_counter() - t

    # 2. the subspace of fine-tuned - base differences
    t = time.perf_counter()
    cap = min(base.config.hidden_size, stores.n_tokens - 1)
    sub = fit_subspace(stores.diff, max_k=min(args.max_k, cap) if args.max_k else cap)
    timings["fit_subspace"] = time.perf_counter() - t
    evr = sub.explained_variance_ratio[args.layer]
    ks = {f: sub.k_for(f)[args.layer] for f in (0.5, 0.8, 0.9, 0.95) if evr.sum() >= f}
    png = plot_explained_variance(
        sub,
        args.out / f"explained_variance_L{args.layer}.png",
        title=f"SmolLM2-135M, insecure-code LoRA: layer {args.layer} differences",
    )
    diff_norm = float(stores.diff[args.layer].norm(dim=1).mean())
    print(
        f"paired collection: {len(examples)} examples, {stores.n_tokens} response tokens, "
        f"mean |ft - base| = {diff_norm:.3f}"
    )
    print("explained variance ratio, top 10:", [round(float(v), 4) for v in evr[:10]])
    print("k for 50/80/90/95% of variance:", ks, f"(of {len(evr)} kept)")
    print(f"explained-variance curve: {png}")

    # 3. weight-space view
    updates = lora_updates(model)
    at_layer = [u for u in updates if u.layer == args.layer and u.kind in ("o_proj", "down_proj")]
    overlap = weight_activation_overlap(updates, sub.top(min(10, len(evr))))
    for u in at_layer:
        print(
            f"{u.kind} layer {u.layer}: effective rank {u.effective_rank:.2f}, k90 {u.k90}, "
            f"overlap(top-8 left sv, top-10 activation PCs) = {overlap[(u.layer, u.kind)]:.3f} "
            f"(chance ~{min(10, len(evr)) / base.config.hidden_size:.3f})"
        )

    summary = {
        "layer": args.layer,
        "n_examples": len(examples),
        "n_tokens": stores.n_tokens,
        "explained_variance_ratio": [float(v) for v in evr],
        "k_for": {str(k): v for k, v in ks.items()},
        "weight_overlap": {f"{k[0]}.{k[1]}": v for k, v in overlap.items()},
    }

    # 4. ablation curve with the preference metric
    if not args.no_ablation:
        from steerlab.eval import load_questions, preference_misalignment

        qs = load_questions("broad")
        qs = qs[: args.questions] if args.questions else qs
        last: dict[str, float] = {}

        def metric() -> float:
            res = preference_misalignment(model, tok, qs)
            last["nll"] = float(res.extra["reference_nll"])
            return float(res.mean)

        def coherence() -> float:  # aligned-reference NLL of the same call (lower = better)
            return last["nll"]

        lab = attach(model)
        with model.disable_adapter():
            base_score = metric()
        t = time.perf_counter()
        rows = ablation_curve(
            lab,
            sub.top(args.ks),
            range(0, args.ks + 1),
            metric=metric,
            coherence=coherence,
            random_draws=args.draws,
            seed=0,
        )
        timings["ablation curve"] = time.perf_counter() - t
        save_table(rows, args.out / f"ablation_L{args.layer}.csv")
        png = plot_ablation_curve(
            rows,
            args.out / f"ablation_L{args.layer}.png",
            metric_name="preference misalignment (0-100)",
            title=f"top-k ablation at layer {args.layer} (coherence axis: reference NLL)",
        )
        print(f"preference misalignment on {len(qs)} broad questions: base {base_score:.2f}")
        print(f"{'k':>3} {'fine-tuned':>11} {'ref NLL':>8} {'random mean':>12} {'random std':>11}")
        for r in rows:
            print(
                f"{r.k:>3} {r.misalignment:>11.2f} {r.coherence:>8.3f} {r.random_mean:>12.2f} "
                f"{r.random_std:>11.2f}"
            )
        print(f"ablation curve: {png}")
        summary["base_preference"] = base_score
        summary["ablation"] = [r.__dict__ for r in rows]
    print("wall times (s):", {k: round(v, 1) for k, v in timings.items()})
    summary["timings_s"] = timings
    with atomic_path(args.out / f"summary_L{args.layer}.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.stdout.reconfigure(line_buffering=True)
    main()
