"""Compare two study ``report.json`` files value by value, wall times excluded.

Used for issue 15's check that the speed work changes no result: run the micro study at a
commit before the change and at HEAD, then compare (values present in only one report are
counted, not compared)::

    git worktree add /tmp/before <commit>
    (cd /tmp/before && PYTHONPATH=. python -m steerlab.cli study configs/micro.toml --out /tmp/mb)
    python -m steerlab.cli study configs/micro.toml --out /tmp/ma
    python benchmarks/compare_reports.py /tmp/mb/report/report.json /tmp/ma/report/report.json

Exits 1 when a shared numeric value differs by more than ``--atol``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, leaf)`` for every leaf of a JSON value, paths like ``/a/b[0]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def is_timing(path: str) -> bool:
    """Whether a report path holds a wall time (allowed to differ)."""
    leaf = path.rsplit("/", 1)[-1]
    return "wall_time" in leaf or leaf.endswith("_s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--atol", type=float, default=1e-5, help="allowed numeric difference")
    args = parser.parse_args()
    before = dict(flatten(json.loads(args.before.read_text())))
    after = dict(flatten(json.loads(args.after.read_text())))
    shared = sorted(set(before) & set(after))
    print(
        f"{len(before)} values before, {len(after)} after: {len(shared)} shared, "
        f"{len(set(before) - set(after))} removed, {len(set(after) - set(before))} added"
    )
    numeric_bad, worst, text_diffs = 0, 0.0, 0
    for path in shared:
        old, new = before[path], after[path]
        if old == new or is_timing(path):
            continue
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
        if numbers:
            worst = max(worst, abs(new - old))
            numeric_bad += abs(new - old) > args.atol
        else:
            text_diffs += 1
        print(f"  {path}: {str(old)[:80]!r} -> {str(new)[:80]!r}")
    print(
        f"numeric values differing by more than {args.atol:g}: {numeric_bad} "
        f"(largest difference {worst:.3g}); text values differing: {text_diffs}"
    )
    return 1 if numeric_bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
