"""Streaming PCA (``fit_subspace`` over an ActivationStore) vs scikit-learn PCA / IncrementalPCA.

Synthetic activations: ``n`` × 576 float32 (SmolLM2's d_model), a planted rank-``k`` signal
plus isotropic noise, written once as safetensors shards (the hooks' store format) into a
temporary directory. Each round:

- **steerlab**: ``fit_subspace(ActivationStore(dir), max_k=K)``, one pass over the shards, in a
  fresh subprocess that also reports its peak RSS (``VmHWM``: its own address space only);
- **sklearn PCA**: the whole array loaded into RAM (load time reported apart), then
  ``PCA(n_components=K).fit`` (solver "auto");
- **sklearn IncrementalPCA**: ``partial_fit`` over the same shard chunks.

Medians over rounds; ratios are ``sklearn time / steerlab time`` (> 1: steerlab faster).
The subspaces are compared by their largest principal angle.

Run:  python benchmarks/bench_pca.py [--n 1000000] [--rounds 3] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

D_MODEL = 576

_CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from steerlab.analysis import fit_subspace
from steerlab.hooks.store import ActivationStore
t = time.perf_counter()
sub = fit_subspace(
    ActivationStore(sys.argv[1]), max_k=int(sys.argv[2]), layer=0, chunk_tokens=16384
)
wall = time.perf_counter() - t
def peak_rss_mb():
    # VmHWM belongs to this process's own address space; ru_maxrss would also count the
    # parent's RSS inherited at fork (Linux carries it across exec).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "wall": wall,
    "peak_rss_mb": peak_rss_mb(),
    "basis": sub.bases[0].tolist(),
    "evr": sub.explained_variance_ratio[0].tolist(),
}))
"""


def write_store(directory: Path, n: int, k: int, seed: int, chunk: int = 65536) -> float:
    """Planted rank-k signal + noise, written in chunks (never all in memory)."""
    from steerlab.hooks.store import ShardWriter

    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D_MODEL, k, generator=g))
    scales = torch.linspace(4.0, 1.0, k)
    writer = ShardWriter(directory, shard_bytes=128 * 2**20)
    start = time.perf_counter()
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        x = (torch.randn(m, k, generator=g) * scales) @ q.T
        x += 0.3 * torch.randn(m, D_MODEL, generator=g) + 1.0
        writer.append(
            {
                "L0.resid_post": x.float(),
                "example_index": torch.arange(lo, lo + m),
                "position": torch.zeros(m, dtype=torch.long),
            }
        )
    writer.close([(0, "resid_post")], D_MODEL, torch.float32, {"positions": "all"})
    return time.perf_counter() - start


def streaming(directory: Path, k: int, threads: int) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), str(k), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def max_angle(a: torch.Tensor, b: torch.Tensor) -> float:
    from steerlab.analysis import principal_angles

    return float(principal_angles(a, b).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10, help="planted rank and components fitted")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--ipca-tokens",
        type=int,
        default=None,
        help="run IncrementalPCA (slow: an SVD per batch) on the first N tokens only, in the "
        "first round, and scale its time linearly to n (reported as an estimate); 0 skips it",
    )
    parser.add_argument(
        "--streaming-only", action="store_true", help="time the streaming fit only (no sklearn)"
    )
    parser.add_argument("--tmp", default=None, help="parent directory for the shards")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import numpy as np
    from sklearn.decomposition import PCA, IncrementalPCA

    from steerlab.hooks.store import ActivationStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-pca-", dir=args.tmp))
    try:
        store_dir = tmp / "store"
        gb = args.n * D_MODEL * 4 / 1e9
        print(f"writing {args.n:,} x {D_MODEL} float32 ({gb:.2f} GB) to {store_dir} ...")
        print(f"  written in {write_store(store_dir, args.n, args.k, seed=0):.1f} s")
        times: dict[str, list[float]] = {"steerlab": [], "load": [], "pca": [], "ipca": []}
        rss, bases = [], {}
        for r in range(args.rounds):
            res = streaming(store_dir, args.k, args.threads)
            times["steerlab"].append(res["wall"])
            rss.append(res["peak_rss_mb"])
            bases["steerlab"] = torch.tensor(res["basis"])
            if args.streaming_only:
                print(
                    f"  round {r + 1}: steerlab {res['wall']:.1f} s, peak RSS "
                    f"{res['peak_rss_mb']:.0f} MB"
                )
                continue
            store = ActivationStore(store_dir)
            t = time.perf_counter()
            x = store.load((0, "resid_post")).numpy()
            times["load"].append(time.perf_counter() - t)
            t = time.perf_counter()
            pca = PCA(n_components=args.k, random_state=0).fit(x)
            times["pca"].append(time.perf_counter() - t)
            bases["sklearn PCA"] = torch.from_numpy(np.asarray(pca.components_))
            solver = getattr(pca, "_fit_svd_solver", "?")
            del x
            ipca_n = args.n if args.ipca_tokens is None else min(args.ipca_tokens, args.n)
            if ipca_n and (r == 0 or ipca_n == args.n):
                ipca = IncrementalPCA(n_components=args.k)
                t, seen = time.perf_counter(), 0
                for chunk in store.iter_chunks((0, "resid_post"), chunk_tokens=65536):
                    chunk = chunk[: ipca_n - seen]
                    if len(chunk) <= args.k:
                        break
                    ipca.partial_fit(chunk.numpy())
                    seen += len(chunk)
                times["ipca"].append((time.perf_counter() - t) * args.n / seen)
                bases["IncrementalPCA"] = torch.from_numpy(np.asarray(ipca.components_))
            print(
                f"  round {r + 1}: steerlab {res['wall']:.1f} s (RSS {res['peak_rss_mb']:.0f} "
                f"MB), load {times['load'][-1]:.1f} s, PCA {times['pca'][-1]:.1f} s"
                + (f", IPCA {times['ipca'][-1]:.1f} s" if times["ipca"] else "")
            )
        med = {name: statistics.median(v) for name, v in times.items() if v}
        if args.streaming_only:
            print(
                f"steerlab streaming fit: median {med['steerlab']:.2f} s, peak RSS max "
                f"{max(rss):.0f} MB"
            )
            return
        print()
        print(
            f"n={args.n:,}  d_model={D_MODEL}  k={args.k}  rounds={args.rounds}  "
            f"threads={args.threads}  sklearn PCA solver={solver}"
        )
        print(f"{'method':<34}{'median s':>10}{'ratio vs steerlab':>20}")
        s = med["steerlab"]
        print(f"{'steerlab fit_subspace (streamed)':<34}{s:>10.2f}{1.0:>20.2f}")
        print(f"{'sklearn PCA (fit only, in RAM)':<34}{med['pca']:>10.2f}{med['pca'] / s:>20.2f}")
        both = med["pca"] + med["load"]
        print(f"{'sklearn PCA (load + fit)':<34}{both:>10.2f}{both / s:>20.2f}")
        if "ipca" in med:
            label = "sklearn IncrementalPCA (streamed)"
            if ipca_n != args.n:
                label = f"IncrementalPCA (est. from {ipca_n:,})"
            print(f"{label:<34}{med['ipca']:>10.2f}{med['ipca'] / s:>20.2f}")
        print(
            f"peak RSS of the streaming fit: max {max(rss):.0f} MB over rounds "
            f"(limit 2048 MB: {'ok' if max(rss) < 2048 else 'EXCEEDED'})"
        )
        for name, b in bases.items():
            if name != "steerlab":
                print(
                    f"max principal angle steerlab vs {name}: "
                    f"{max_angle(bases['steerlab'], b):.4f} deg"
                )
        evr = res["evr"]
        print(f"explained variance ratio (steerlab, top {args.k}): {sum(evr):.4f} in total")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
