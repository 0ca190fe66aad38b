"""The micro study's config and the cache keys that the code before the stages split
computed for it (configs/micro.toml, a tiny random-init Llama)."""

from __future__ import annotations

from pathlib import Path

from steerlab.study import Study

MICRO = Path(__file__).resolve().parents[2] / "configs" / "micro.toml"

# Recorded from a micro study run on the code before the stages split (unit.json "key"),
# keyed by unit path: a resumed study reuses a unit only when its key is bit-identical.
MAIN_KEYS = {
    "acts/r1-p1-s0": "79e35786687643e8",
    "acts/r1-p1-s1": "1e535dfc0b96242b",
    "acts/r4-p0.5-s0": "8941527900d84d9e",
    "acts/r4-p0.5-s1": "c2bdd9860ff649c1",
    "acts/r4-p1-s0": "b00bf4ead87f6cb1",
    "acts/r4-p1-s1": "fbcbaaa281a6760c",
    "base/text": "f9fd813b324fb793",
    "eval/r1-p1-s0/text": "0117a0c892bbe9e9",
    "eval/r1-p1-s1/text": "22e3b43d8308879a",
    "eval/r4-p0.5-s0/text": "ad626c1a5db02e55",
    "eval/r4-p0.5-s1/text": "1ca0cdd336c36bd5",
    "eval/r4-p1-s0/text": "5ed0556df250c6ee",
    "eval/r4-p1-s1/text": "85b956bab8e51524",
    "geometry": "19272b09d1fa95eb",
    "mitigate/ablate/r4-p1-s0": "f492e72cc94f7a7f",
    "mitigate/ablate/r4-p1-s1": "c7d60de1d7d24219",
    "mitigate/benign/r4-p1-s0": "b112570839d88f49",
    "mitigate/benign/r4-p1-s1": "ab0351be17739aff",
    "mitigate/steer/r4-p1-s0": "94f662a0ba38dca2",
    "mitigate/steer/r4-p1-s1": "94ec71221ab4343b",
    "subspace/r1-p1-s0": "27fa1f67fa19c056",
    "subspace/r1-p1-s1": "9153c17e475109b0",
    "subspace/r4-p0.5-s0": "7514949efee51ad2",
    "subspace/r4-p0.5-s1": "1e16d024cdf353c3",
    "subspace/r4-p1-s0": "9a0b5ebe2956bead",
    "subspace/r4-p1-s1": "7606eecbae442ef9",
}
MAIN_TRAIN_KEY = "bb7f0a65d19f1aa8"  # the adapters' directory name
RUNS = ["r1-p1-s0", "r1-p1-s1", "r4-p1-s0", "r4-p1-s1", "r4-p0.5-s0", "r4-p0.5-s1"]
TOP_RUNS = ["r4-p1-s0", "r4-p1-s1"]
BENIGN_RUNS = ["r1-p0-s0", "r1-p0-s1", "r4-p0-s0", "r4-p0-s1"]  # one per harmful (rank, seed)
NULL = "null-r4-s0-s1"  # benign − benign at the highest rank, seeds 0 and 1
CONTRASTS = [*RUNS, NULL]  # harmful − benign per harmful run, then the null
# Steering and ablation now use harmful − benign (issue 14): their keys changed on purpose.
CHANGED_KEYS = {f"mitigate/{kind}/{run}" for kind in ("steer", "ablate") for run in TOP_RUNS}


def keys_of(study: Study, units) -> dict[str, str]:
    """``{unit path relative to the study: cache key}``."""
    return {str(u.path.relative_to(study.out)): u.key() for u in units}
