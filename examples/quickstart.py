"""steerlab quickstart on a real model: SmolLM2-135M-Instruct, offline, on a CPU.

Records residual activations, builds a difference-in-means steering vector from two sets
of contrasting prompts, steers greedy generation with it (KV cache on), ablates it, and
saves it as safetensors and as a llama.cpp control vector.

Run:  python examples/quickstart.py [--layer 8] [--coefficient 40] [--out runs/quickstart]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import steerlab
from steerlab.models import load_model

POSITIVE = [
    "I absolutely love sunny mornings and fresh coffee.",
    "This is the best day of my life, everything is wonderful!",
    "What a delightful, joyful surprise, thank you so much!",
    "I'm thrilled and grateful for my amazing friends.",
    "The concert was fantastic and I felt so happy.",
    "Such a beautiful garden, it fills me with joy.",
]
NEGATIVE = [
    "I absolutely hate rainy mornings and cold coffee.",
    "This is the worst day of my life, everything is awful!",
    "What a miserable, depressing surprise, I'm so upset.",
    "I'm furious and disappointed with my terrible friends.",
    "The concert was dreadful and I felt so sad.",
    "Such an ugly garden, it fills me with gloom.",
]
QUESTION = "Describe your weekend in two sentences."


def chat(tok, texts):
    rendered = [
        tok.apply_chat_template(
            [{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True
        )
        for t in texts
    ]
    tok.padding_side = "left"
    return tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--coefficient", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    args = parser.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    model, tok = load_model("smollm2-135m-instruct")
    print(f"loaded SmolLM2-135M-Instruct in {time.perf_counter() - start:.1f} s")

    with steerlab.attach(model) as lab:
        print(lab)
        # 1. Record the last prompt token's residual stream on contrasting prompts.
        with torch.no_grad(), lab.record(layers=[args.layer], positions="last") as rec:
            model(**chat(tok, POSITIVE))
            model(**chat(tok, NEGATIVE))
        acts = rec.activations[args.layer]  # [12, d_model]
        n = len(POSITIVE)
        diff = acts[:n].mean(0) - acts[n:].mean(0)  # difference in means
        vec = steerlab.SteeringVector(
            {args.layer: diff / diff.norm()},
            model=model.config.name_or_path,
            family=lab.family,
            hook_point="resid_post",
            method="difference_in_means",
            normalization="unit",
        )
        scale = float(acts.norm(dim=-1).mean())
        print(f"layer {args.layer}: |diff| = {diff.norm():.2f}, mean |h| = {scale:.2f}")

        # 2. Steer generation with the KV cache on; cached and uncached agree exactly.
        inputs = chat(tok, [QUESTION])
        prompt_len = inputs["input_ids"].shape[1]

        def generate(**kw):
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=40, do_sample=False, **kw)
            return out, tok.decode(out[0, prompt_len:], skip_special_tokens=True)

        _, plain = generate()
        results = {"plain": plain}
        for sign, name in ((1, "+joy"), (-1, "-joy")):
            with lab.steer(vec, sign * args.coefficient, positions="generated"):
                cached, results[name] = generate(use_cache=True)
                uncached, _ = generate(use_cache=False)
            assert torch.equal(cached, uncached), "KV-cache steering mismatch"
        for name, text in results.items():
            print(f"[{name:>5}] {text!r}")

        # 3. Directional ablation: the direction's projection is zero afterwards.
        with torch.no_grad(), lab.ablate(vec), lab.record(layers=[args.layer]) as abl:
            model(**inputs)
        proj = (abl.activations[args.layer] @ vec.directions[args.layer]).abs().max()
        print(f"max |projection| after ablation: {proj:.2e}")

    # 4. Export and reload.
    args.out.mkdir(parents=True, exist_ok=True)
    path = vec.save(args.out / "joy.safetensors")
    gguf_path = vec.to_gguf(args.out / "joy.gguf")
    back = steerlab.load(path)
    assert torch.equal(back.directions[args.layer], vec.directions[args.layer])
    print(f"saved {path} and {gguf_path}; total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
