"""Overhead of steerlab's hooks on SmolLM2-135M-Instruct (real weights, CPU).

Every figure is a ratio hooked / plain measured in the same process, in paired, interleaved
rounds: each round runs every variant once (in a rotated order), the ratio is taken inside
the round, and the median over rounds is reported with its interquartile range. Drift and
load from other processes then hit both sides of a ratio alike.

Measurements (targets from the project brief):

- steer 1 layer, greedy ``generate`` (``--new-tokens`` new tokens): <= 1.02x plain generate;
- steer all 30 layers: <= 1.05x;
- record ``resid_post`` at all layers, one forward of batch 4 x 128: <= 1.15x plain forward;
- streaming record to disk: peak RSS changes < 10% between 10k and 200k recorded tokens
  (each count in a fresh subprocess, ``--rss-child N``);
- per-hook overhead in microseconds (single-token forward, 30 hooks vs none).

``--peers`` adds the same steering workload (same layers, same vector, same greedy
generation) through the peer libraries that import in this interpreter (nnsight,
TransformerLens, steering-vectors) and repeng from its own venv (numpy<2) as a subprocess.
See benchmarks/peers_setup.sh and benchmarks/README.md.

Usage::

    python benchmarks/bench_hooks.py [--rounds 15] [--new-tokens 32] [--quick]
                                     [--json out.json] [--peers]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

MODEL = "smollm2-135m-instruct"
STEER_LAYER = 15  # middle of SmolLM2's 30 layers
COEFF = 4.0  # residual norms at layer 15 are O(10); a visible but sane push
SEED = 0
HERE = Path(__file__).resolve().parent
DEFAULT_REPENG_PY = "/work/bench-venv-repeng/bin/python"

PROMPTS = [
    "Tell me about the weather today.",
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "Explain how a bicycle works.",
]


# ----------------------------------------------------------------------------------------
# timing helpers
# ----------------------------------------------------------------------------------------
def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def paired(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    *,
    baseline: str = "plain",
    warmup: int = 1,
    label: str = "",
) -> dict[str, dict]:
    """Run every variant once per round (rotated order); ratios are taken within a round."""
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        order = names[k:] + names[:k]
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            variants[name]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
        if label:
            print(f"  [{label}] round {r + 1 - warmup}/{rounds}", file=sys.stderr, end="\r")
    if label:
        print(file=sys.stderr)
    out = {}
    base = times[baseline]
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base, strict=True)]
        out[name] = {
            "median_s": statistics.median(times[name]),
            "ratio_median": statistics.median(ratios),
            "ratio_p25": _q(ratios, 0.25),
            "ratio_p75": _q(ratios, 0.75),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "rounds": len(ratios),
        }
    return out


def _fmt_ratio(d: dict) -> str:
    return f"{d['ratio_median']:.3f} [{d['ratio_p25']:.3f}-{d['ratio_p75']:.3f}]"


# ----------------------------------------------------------------------------------------
# model and workloads
# ----------------------------------------------------------------------------------------
def load_model(path: str | None = None):
    """The SmolLM2 checkpoint: through steerlab's offline registry, or a local HF dir."""
    if path is None:
        from steerlab.models import load_model

        model, tok = load_model(MODEL)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(path)
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id or tok.eos_token_id
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return model, tok


def checkpoint_dir() -> str:
    """Directory of the converted HF checkpoint (for subprocesses in other venvs)."""
    root = Path(os.environ.get("STEERLAB_CACHE", Path.home() / ".cache" / "steerlab"))
    return str(root / "models" / MODEL)


def gen_inputs(tok, batch: int) -> dict[str, torch.Tensor]:
    texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in (PROMPTS * batch)[:batch]
    ]
    return dict(tok(texts, return_tensors="pt", padding=True))


def make_generate(model, inputs: dict, new_tokens: int) -> Callable[[], torch.Tensor]:
    """Greedy generation of exactly ``new_tokens`` tokens (EOS cannot stop it early)."""

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model.generate(
                **inputs,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
            )

    return run


def directions(d_model: int, n_layers: int) -> dict[int, torch.Tensor]:
    """The same unit vector at every layer (``COEFF`` times it is added)."""
    g = torch.Generator().manual_seed(SEED)
    v = torch.randn(d_model, generator=g)
    v = v / v.norm()
    return {layer: v.clone() for layer in range(n_layers)}


def raw_hook_steer(model, layers: list[int], vec: torch.Tensor):
    """Baseline: one plain ``register_forward_hook`` per decoder block adding the vector."""
    blocks = model.model.layers
    add = vec * COEFF

    def hook(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + add, *output[1:])
        return output + add

    @contextlib.contextmanager
    def ctx():
        handles = [blocks[i].register_forward_hook(hook) for i in layers]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    return ctx


# ----------------------------------------------------------------------------------------
# steerlab measurements
# ----------------------------------------------------------------------------------------
def bench_steer(model, tok, args, results: dict) -> None:
    import steerlab

    lab = steerlab.attach(model)
    n = lab.num_layers
    dirs = directions(lab.d_model, n)
    one = steerlab.SteeringVector({STEER_LAYER: dirs[STEER_LAYER]})
    every = steerlab.SteeringVector(dirs)
    inputs = gen_inputs(tok, args.batch)
    gen = make_generate(model, inputs, args.new_tokens)

    def steered(vec, positions):
        def run():
            with lab.steer(vec, coefficient=COEFF, positions=positions):
                return gen()

        return run

    raw1 = raw_hook_steer(model, [STEER_LAYER], dirs[STEER_LAYER])
    rawall = raw_hook_steer(model, list(range(n)), dirs[0])

    def under(ctx):
        def run():
            with ctx():
                return gen()

        return run

    # sanity: steerlab and the raw hook add the same thing, so they generate the same tokens
    with torch.no_grad():
        a = steered(every, "all")()
        b = under(rawall)()
    same = bool(torch.equal(a, b))
    results["steer_same_tokens_as_raw_hook"] = same

    variants = {
        "plain": gen,
        "steerlab_1": steered(one, "all"),
        "steerlab_all": steered(every, "all"),
        "steerlab_all_generated": steered(every, "generated"),
        "raw_hook_1": under(raw1),
        "raw_hook_all": under(rawall),
    }
    print(
        f"\nsteer: greedy generate, batch {args.batch}, {args.new_tokens} new tokens, "
        f"{args.rounds} paired rounds (same tokens as raw hook: {same})"
    )
    res = paired(variants, args.rounds, label="steer")
    results["steer"] = res
    print(f"  plain generate: {res['plain']['median_s'] * 1e3:.0f} ms (median)")
    for name, d in res.items():
        if name != "plain":
            print(f"  {name:24s} {_fmt_ratio(d)}  ({d['median_s'] * 1e3:.0f} ms)")


def bench_record(model, tok, args, results: dict) -> None:
    import steerlab

    lab = steerlab.attach(model)
    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(100, tok.vocab_size, (4, 128), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def plain():
        with torch.no_grad():
            return model(**batch)

    def record():
        with torch.no_grad(), lab.record(layers="all", points=("resid_post",)) as rec:
            model(**batch)
        return rec

    rec = record()
    ok = rec.activations[lab.num_layers - 1].shape == (4 * 128, lab.d_model)
    results["record_shape_ok"] = ok
    rounds = args.rounds
    print(f"\nrecord resid_post at all {lab.num_layers} layers: forward 4 x 128, {rounds} rounds")
    res = paired({"plain": plain, "record_all": record}, rounds, label="record")
    results["record"] = res
    print(f"  plain forward: {res['plain']['median_s'] * 1e3:.0f} ms (median)")
    print(f"  record_all               {_fmt_ratio(res['record_all'])}")


def bench_per_hook(model, tok, args, results: dict) -> None:
    """Microseconds per hook call, timed on the hook functions themselves.

    A whole forward is far too noisy on a shared 2-core machine to resolve microseconds,
    so this calls the forward hook that each library path registers on decoder block
    ``STEER_LAYER`` directly, on that block's real output for one decoding token
    (``[1, 1, d_model]``), ``--per-hook-reps`` times per round, interleaved.
    """
    import steerlab

    lab = steerlab.attach(model)
    dirs = directions(lab.d_model, lab.num_layers)
    vec = steerlab.SteeringVector({STEER_LAYER: dirs[STEER_LAYER]})
    block = model.model.layers[STEER_LAYER]
    ids = torch.tensor([[tok.bos_token_id or 1]])
    captured = {}
    h = block.register_forward_hook(lambda m, a, o: captured.setdefault("out", o))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    h.remove()
    out = captured["out"]
    reps = args.per_hook_reps

    def hooks_of(ctx_factory):
        with ctx_factory():
            return list(block._forward_hooks.values())

    def timed(ctx_factory, setup=None):
        fns = hooks_of(ctx_factory)
        stack = contextlib.ExitStack()

        def run():
            with stack:
                stack.enter_context(ctx_factory())
                if setup is not None:
                    setup()
                live = list(block._forward_hooks.values())
                with torch.no_grad():
                    for _ in range(reps):
                        for fn in live:
                            fn(block, (), out)

        del fns
        return run

    def none():
        with torch.no_grad():
            for _ in range(reps):
                pass

    def begin_decode_step():
        # what the root pre-hook does at a decoding step: a context for this call
        lab._tracker.begin((), {"input_ids": ids})

    raw = raw_hook_steer(model, [STEER_LAYER], dirs[STEER_LAYER])
    variants = {
        "plain": none,
        "raw_hook": timed(raw),
        "steerlab_steer": timed(lambda: lab.steer(vec, coefficient=COEFF)),
        "steerlab_steer_generated": timed(
            lambda: lab.steer(vec, coefficient=COEFF, positions="generated"),
            begin_decode_step,
        ),
    }
    print(f"\nper-hook cost: the hook of one block called directly, x {reps} per round")
    res = paired(variants, args.rounds, label="per-hook")
    base = res["plain"]["median_s"]
    out_d = {}
    for name, d in res.items():
        if name == "plain":
            continue
        us = (d["median_s"] - base) / reps * 1e6
        out_d[name] = {"us_per_hook_call": us}
        print(f"  {name:26s} {us:6.1f} us per hook call (median of {args.rounds} rounds)")
    results["per_hook"] = out_d


# ----------------------------------------------------------------------------------------
# peak RSS of streaming to disk
# ----------------------------------------------------------------------------------------
def rss_child(n_tokens: int, shard_mb: float, seq: int, batch: int) -> dict:
    """Record ``n_tokens`` tokens at all layers to disk in a fresh process; report peak RSS."""
    import steerlab

    torch.manual_seed(SEED)
    model, tok = load_model()
    lab = steerlab.attach(model)
    per_call = seq * batch
    calls = -(-n_tokens // per_call)
    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(100, tok.vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    with torch.no_grad():  # warm the model up once without recording
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
    rss_before = _peak_rss_mb()
    base = _reset_hwm()  # peak RSS during the recording alone, not the model load's peak
    tmp = Path(tempfile.mkdtemp(prefix="steerlab-bench-rss-"))
    t0 = time.perf_counter()
    try:
        with (
            torch.no_grad(),
            lab.record(layers="all", to_disk=tmp / "acts", shard_mb=shard_mb) as rec,
        ):
            for _ in range(calls):
                model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
        shards = len(list((tmp / "acts").glob("shard-*.safetensors")))
        disk = sum(f.stat().st_size for f in (tmp / "acts").iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "tokens": rec.n_tokens,
        "layers": lab.num_layers,
        "shards": shards,
        "disk_mb": disk / 2**20,
        "shard_mb": shard_mb,
        "peak_rss_before_record_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_at_start_mb": base,
        "peak_rss_during_record_mb": _hwm_mb(),
        "seconds": time.perf_counter() - t0,
    }


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_hwm() -> float:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; return the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _hwm_mb() -> float:
    return _status_mb("VmHWM")


def bench_rss(args, results: dict) -> None:
    print(
        f"\nstreaming record to disk, all layers, shard_mb={args.shard_mb}: peak RSS "
        "(fresh subprocess per token count)"
    )
    out = {}
    for n in args.rss_tokens:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--rss-child",
            str(n),
            "--shard-mb",
            str(args.shard_mb),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise RuntimeError(f"--rss-child {n} failed")
        d = json.loads(proc.stdout.strip().splitlines()[-1])
        out[str(n)] = d
        print(
            f"  {d['tokens']:>7d} tokens: peak RSS while recording "
            f"{d['peak_rss_during_record_mb']:.0f} MiB (RSS at start {d['rss_at_start_mb']:.0f} "
            f"MiB; whole-process ru_maxrss {d['peak_rss_mb']:.0f} MiB), {d['shards']} shards, "
            f"{d['disk_mb']:.0f} MiB written, {d['seconds']:.0f} s"
        )
    lo, hi = out[str(args.rss_tokens[0])], out[str(args.rss_tokens[-1])]
    change = hi["peak_rss_during_record_mb"] / lo["peak_rss_during_record_mb"] - 1.0
    out["change"] = change
    out["change_ru_maxrss"] = hi["peak_rss_mb"] / lo["peak_rss_mb"] - 1.0
    print(
        f"  peak RSS change {args.rss_tokens[0]} -> {args.rss_tokens[-1]} tokens: {change:+.1%} "
        f"while recording, {out['change_ru_maxrss']:+.1%} whole process (ru_maxrss)"
    )
    results["rss"] = out


# ----------------------------------------------------------------------------------------
# peers
# ----------------------------------------------------------------------------------------
def _peer_row(res: dict, one: str, every: str, note: str = "") -> dict:
    return {"one": res[one], "all": res[every], "plain_s": res["plain"]["median_s"], "note": note}


def peer_steering_vectors(model, tok, args) -> dict:
    import steering_vectors as sv

    n = model.config.num_hidden_layers
    dirs = directions(model.config.hidden_size, n)
    one = sv.SteeringVector({STEER_LAYER: dirs[STEER_LAYER] * COEFF}, "decoder_block")
    every = sv.SteeringVector({i: d * COEFF for i, d in dirs.items()}, "decoder_block")
    gen = make_generate(model, gen_inputs(tok, args.batch), args.new_tokens)

    def steered(vec):
        def run():
            with vec.apply(model, multiplier=1.0):
                return gen()

        return run

    res = paired(
        {"plain": gen, "one": steered(one), "all": steered(every)}, args.rounds, label="sv"
    )
    return _peer_row(res, "one", "all")


def peer_nnsight(model, tok, args) -> dict:
    from nnsight import LanguageModel

    lm = LanguageModel(model, tokenizer=tok)
    n = model.config.num_hidden_layers
    dirs = directions(model.config.hidden_size, n)
    inputs = gen_inputs(tok, args.batch)
    gen = make_generate(model, inputs, args.new_tokens)
    kw = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)

    def steered(layers):
        adds = {i: dirs[i] * COEFF for i in layers}

        def run():
            # nnsight reads this block's source: keep the two `with` statements nested
            with lm.generate(dict(inputs), **kw) as tracer:  # noqa: SIM117
                with tracer.all():
                    for i in layers:
                        block = lm.model.layers[i]
                        block.output = block.output + adds[i]

        return run

    res = paired(
        {"plain": gen, "one": steered([STEER_LAYER]), "all": steered(list(range(n)))},
        args.rounds,
        label="nnsight",
    )
    return _peer_row(res, "one", "all")


def peer_transformer_lens(model, tok, args) -> dict:
    from transformer_lens.model_bridge import TransformerBridge

    # A second copy of the model: the bridge switches its model to eager attention, which
    # must not leak into the plain baseline (HF default attention, as for every library).
    tl_model, _ = load_model()
    bridge = TransformerBridge.boot_transformers(MODEL, hf_model=tl_model, tokenizer=tok)
    n = model.config.num_hidden_layers
    dirs = directions(model.config.hidden_size, n)
    inputs = gen_inputs(tok, args.batch)
    gen = make_generate(model, inputs, args.new_tokens)
    use_cache = not args.tl_no_cache

    def steered(layers):
        adds = {i: dirs[i] * COEFF for i in layers}
        hooks = [
            (f"blocks.{i}.hook_out", (lambda a: lambda act, hook: act + a)(adds[i])) for i in layers
        ]

        def run():
            with torch.no_grad(), bridge.hooks(fwd_hooks=hooks):
                return bridge.generate(
                    inputs["input_ids"],
                    max_new_tokens=args.new_tokens,
                    do_sample=False,
                    use_past_kv_cache=use_cache,
                    verbose=False,
                    stop_at_eos=False,
                    return_type="tokens",
                )

        return run

    res = paired(
        {"plain": gen, "one": steered([STEER_LAYER]), "all": steered(list(range(n)))},
        args.rounds,
        label="TL",
    )
    note = (
        "KV cache on: TL 4.3 reads the old `past_key_values` kwarg, so its cached generation "
        "is wrong on transformers 5.24 (timing still measured); eager attention"
        if use_cache
        else "use_past_kv_cache=False (recomputes the whole prefix per token)"
    )
    return _peer_row(res, "one", "all", note)


def peer_repeng(model, tok, args) -> dict:
    import numpy as np
    from repeng import ControlModel, ControlVector

    n = model.config.num_hidden_layers
    dirs = directions(model.config.hidden_size, n)
    inputs = gen_inputs(tok, args.batch)
    gen = make_generate(model, inputs, args.new_tokens)
    # ControlModel wraps the blocks of the model it is given, permanently: separate copies.
    path = checkpoint_dir()
    m1, _ = load_model(path)
    mall, _ = load_model(path)
    cm1 = ControlModel(m1, [STEER_LAYER])
    cmall = ControlModel(mall, list(range(n)))
    mt = model.config.model_type
    cm1.set_control(ControlVector(mt, {STEER_LAYER: dirs[STEER_LAYER].numpy()}), COEFF)
    cmall.set_control(ControlVector(mt, {i: d.numpy() for i, d in dirs.items()}), COEFF)
    del np
    res = paired(
        {
            "plain": gen,
            "one": make_generate(cm1, inputs, args.new_tokens),
            "all": make_generate(cmall, inputs, args.new_tokens),
        },
        args.rounds,
        label="repeng",
    )
    return _peer_row(res, "one", "all")


PEERS = {
    "steering-vectors": ("steering_vectors", peer_steering_vectors),
    "nnsight": ("nnsight", peer_nnsight),
    "TransformerLens": ("transformer_lens", peer_transformer_lens),
    "repeng": ("repeng", peer_repeng),
}


def _version(mod: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"steering_vectors": "steering-vectors", "transformer_lens": "transformer-lens"}
    try:
        return version(dist.get(mod, mod))
    except PackageNotFoundError:
        return "?"


def run_peer_here(name: str, model, tok, args) -> dict:
    mod, fn = PEERS[name]
    __import__(mod)
    row = fn(model, tok, args)
    row["version"] = _version(mod)
    return row


def bench_peers(model, tok, args, results: dict) -> None:
    import importlib.util

    print(
        f"\npeers: same steering workload (layer {STEER_LAYER} / all layers), {args.rounds} rounds"
    )
    rows: dict[str, dict] = {}
    steer = results.get("steer", {})
    if steer:
        rows["steerlab"] = {
            "one": steer["steerlab_1"],
            "all": steer["steerlab_all"],
            "plain_s": steer["plain"]["median_s"],
            "note": 'positions="all"',
            "version": _version("steerlab"),
        }
        rows["raw register_forward_hook"] = {
            "one": steer["raw_hook_1"],
            "all": steer["raw_hook_all"],
            "plain_s": steer["plain"]["median_s"],
            "note": "",
            "version": f"torch {torch.__version__}",
        }
    for name, (mod, _) in PEERS.items():
        if args.peer and name not in args.peer:
            continue
        if importlib.util.find_spec(mod) is not None:
            try:
                rows[name] = run_peer_here(name, model, tok, args)
            except Exception as e:  # a peer failing must not lose the other figures
                rows[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
        elif name == "repeng" and Path(args.repeng_python).exists():
            rows[name] = _peer_subprocess(name, args)
        else:
            rows[name] = {"error": f"not importable here ({mod}); see benchmarks/peers_setup.sh"}
    results["peers"] = rows
    print_peer_table(rows)


def _peer_subprocess(name: str, args) -> dict:
    cmd = [
        args.repeng_python,
        str(Path(__file__).resolve()),
        "--peer-child",
        name,
        "--rounds",
        str(args.rounds),
        "--new-tokens",
        str(args.new_tokens),
        "--batch",
        str(args.batch),
    ]
    print(f"  running {name} in {args.repeng_python} ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"subprocess failed: {proc.stderr.strip()[-300:]}"}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["note"] = (row.get("note", "") + " separate venv (numpy<2), own plain baseline").strip()
    return row


def print_peer_table(rows: dict[str, dict]) -> None:
    print("\n| library | version | 1 layer | all 30 layers | plain generate | note |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | | n/a | n/a | | {r['error']} |")
            continue
        print(
            f"| {name} | {r.get('version', '')} | {_fmt_ratio(r['one'])} | {_fmt_ratio(r['all'])} "
            f"| {r['plain_s'] * 1e3:.0f} ms | {r.get('note', '')} |"
        )


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15, help="paired rounds per measurement")
    p.add_argument("--new-tokens", type=int, default=32, help="greedy tokens per generate")
    p.add_argument("--batch", type=int, default=1, help="generate batch size (1..4)")
    p.add_argument("--quick", action="store_true", help="smoke mode: few rounds, small RSS run")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--peers", action="store_true", help="also run the peer libraries")
    p.add_argument("--peer", nargs="+", choices=list(PEERS), help="run only these peers")
    p.add_argument("--tl-no-cache", action="store_true", help="TransformerLens without KV cache")
    p.add_argument("--repeng-python", default=DEFAULT_REPENG_PY, help="python of repeng's venv")
    p.add_argument(
        "--only",
        nargs="+",
        choices=["steer", "record", "per-hook", "rss", "peers"],
        help="run only these measurements",
    )
    p.add_argument(
        "--rss-tokens", type=int, nargs=2, default=[10_000, 200_000], metavar=("SMALL", "LARGE")
    )
    p.add_argument("--shard-mb", type=float, default=8.0, help="shard size of the RSS run")
    p.add_argument("--per-hook-reps", type=int, default=2000)
    p.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--peer-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.new_tokens = min(args.new_tokens, 8)
        args.rss_tokens = [1_000, 4_000]
        args.per_hook_reps = 200
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(SEED)
    if args.rss_child is not None:
        print(json.dumps(rss_child(args.rss_child, args.shard_mb, seq=256, batch=4)))
        return 0
    if args.peer_child is not None:  # a peer in another venv: plain HF + the peer only
        model, tok = load_model(checkpoint_dir())
        print(json.dumps(run_peer_here(args.peer_child, model, tok, args)))
        return 0

    only = set(args.only or ["steer", "record", "per-hook", "rss"] + (["peers"] * args.peers))
    results: dict = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}",
        "torch": torch.__version__,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    import transformers

    results["transformers"] = transformers.__version__
    print(
        f"steerlab hook benchmark: {MODEL}, CPU, {results['machine']}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}\n"
        "ratios: median hooked/plain over paired rounds [interquartile range]"
    )
    model, tok = load_model()
    if "steer" in only or "peers" in only:
        bench_steer(model, tok, args, results)
    if "record" in only:
        bench_record(model, tok, args, results)
    if "per-hook" in only:
        bench_per_hook(model, tok, args, results)
    if "rss" in only:
        bench_rss(args, results)
    if "peers" in only:
        bench_peers(model, tok, args, results)
    summarize(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


def summarize(results: dict) -> None:
    rows = []
    if "steer" in results:
        s = results["steer"]
        rows.append(("steer 1 layer (generate)", s["steerlab_1"]["ratio_median"], 1.02))
        rows.append(("steer all 30 layers (generate)", s["steerlab_all"]["ratio_median"], 1.05))
    if "record" in results:
        r = results["record"]["record_all"]["ratio_median"]
        rows.append(("record resid_post, all layers (forward)", r, 1.15))
    if not rows and "rss" not in results:
        return
    print("\n| measurement | median ratio | target | met |")
    print("|---|---|---|---|")
    for name, v, target in rows:
        print(f"| {name} | {v:.3f}x | <= {target:.2f}x | {'yes' if v <= target else 'NO'} |")
    if "rss" in results:
        c = results["rss"]["change"]
        print(f"| streaming record, peak RSS change | {c:+.1%} | < 10% | {abs(c) < 0.10} |")


if __name__ == "__main__":
    sys.exit(main())
