"""Writes the legacy-format fixtures in this folder. Run once, on main at 5c1e2fd, before
hook names became ``blocks.{layer}.hook_{point}``:

    python tests/hooks/data/make_legacy_fixtures.py

It used that commit's own writers (``ShardWriter``, ``SteeringVector.save``,
``Subspace.save``), so the files are exactly what steerlab wrote then: store tensors named
``L{layer}.{point}`` and untyped ``hook_point`` metadata on vectors. Re-running it on newer
code writes the new format, so don't; ``test_names.py`` rebuilds the expected tensors from
the same formulas (:func:`expected_store`, :func:`expected_vectors`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

HERE = Path(__file__).parent
KEYS = [(0, "resid_post"), (2, "resid_pre"), (2, "mlp_out")]
D_MODEL = 8
CALLS = 3  # appends of 5 tokens each; 1 KiB shards give shards of 10 and 5 tokens
TOKENS = 5


def expected_store() -> dict:
    """Per call: ``{key: [5, 8] float32, "example_index": [5], "position": [5]}``."""
    calls = []
    for c in range(CALLS):
        tensors = {}
        for i, key in enumerate(KEYS):
            base = torch.arange(TOKENS * D_MODEL, dtype=torch.float32).view(TOKENS, D_MODEL)
            tensors[key] = base / 8 + 100 * c + 10 * i
        tensors["example_index"] = torch.full((TOKENS,), c, dtype=torch.long)
        tensors["position"] = torch.arange(TOKENS, dtype=torch.long)
        calls.append(tensors)
    return {
        **{k: torch.cat([t[k] for t in calls]) for k in KEYS},
        "example_index": torch.cat([t["example_index"] for t in calls]),
        "position": torch.cat([t["position"] for t in calls]),
        "calls": calls,
    }


def expected_vectors() -> tuple[dict, dict]:
    """(SteeringVector kwargs, Subspace kwargs) of the legacy vector files."""
    vec = {
        "directions": {3: torch.linspace(-1, 1, D_MODEL), -1: torch.arange(D_MODEL) / 7.0},
        "metadata": {"hook_point": "resid_post", "method": "mean_diff", "model": "tiny"},
    }
    sub = {
        "bases": {1: torch.eye(D_MODEL)[:3], 2: torch.eye(D_MODEL)[2:4]},
        "explained_variance_ratio": {1: torch.tensor([0.5, 0.25, 0.125])},
        "mean": {1: torch.arange(D_MODEL, dtype=torch.float32)},
        "metadata": {"hook_point": "mlp_out", "method": "pca"},
    }
    return vec, sub


def main() -> None:  # pragma: no cover - run by hand on the old code
    from steerlab.hooks.store import ShardWriter, key_name
    from steerlab.vectors import SteeringVector, Subspace

    exp = expected_store()
    for name, finish in (("legacy_store", True), ("legacy_store_interrupted", False)):
        shutil.rmtree(HERE / name, ignore_errors=True)
        writer = ShardWriter(HERE / name, shard_bytes=1024)
        for call in exp["calls"]:
            writer.append({key_name(k) if isinstance(k, tuple) else k: v for k, v in call.items()})
        if finish:
            writer.close(KEYS, D_MODEL, torch.float32, {"positions": "all"})
        else:
            writer.flush()
    vec, sub = expected_vectors()
    SteeringVector(vec["directions"], **vec["metadata"], created="2026-12-03T00:00:00Z").save(
        HERE / "legacy_vector.safetensors"
    )
    Subspace(
        sub["bases"],
        sub["explained_variance_ratio"],
        sub["mean"],
        **sub["metadata"],
        created="2026-12-03T00:00:00Z",
    ).save(HERE / "legacy_subspace.safetensors")


if __name__ == "__main__":
    main()
