"""Paired, interleaved timing rounds shared by the benchmarks (see README.md).

Each round runs every variant once (order rotated round to round); ratios are taken inside a
round, so a machine-wide slowdown during one round cancels out. The first round is a warm-up
and is discarded.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def paired_rounds(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each variant, ``rounds`` paired rounds after one warm-up round."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds + 1):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            variants[name]()
            if r:
                times[name].append(time.perf_counter() - start)
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(p25, median, p75) of ``values``."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[1], q[2]


def ratio_line(
    label: str,
    before: list[float],
    after: list[float],
    names: tuple[str, str] = ("before", "after"),
) -> str:
    """``before / after`` per round: median [IQR], and each side's median time (labelled
    ``names``)."""
    ratios = [b / a for b, a in zip(before, after, strict=True)]
    lo, med, hi = quartiles(ratios)
    b, a = statistics.median(before) * 1e3, statistics.median(after) * 1e3
    return (
        f"  {label:32s} {med:5.2f}x [{lo:.2f}-{hi:.2f}]"
        f"  {names[0]} {b:7.0f} ms  {names[1]} {a:7.0f} ms"
        f"  ({len(ratios)} rounds)"
    )


def machine_line() -> str:
    """Load average and thread count, to print beside every result."""
    import torch  # lazy: keeps this helper importable without torch for --help

    load = os.getloadavg()
    return (
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
