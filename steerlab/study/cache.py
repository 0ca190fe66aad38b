"""Resumable study units: a directory per unit of work, trusted only when complete.

A unit (one adapter's evaluation, one subspace fit, ...) is computed into a hidden
temporary sibling directory and renamed into place only after its ``unit.json`` (the cache
key and the unit's JSON result) has been written, so a killed run or a full disk never
leaves a directory that looks finished. A unit directory whose key differs from the current
one (the config or an input changed) is recomputed; hidden leftovers of interrupted attempts
are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlab.files import current_umask

UNIT_FILE = "unit.json"


def _write_unit(path: Path, payload: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def cached_result(unit_dir: Path, key: str) -> dict[str, Any] | None:
    """The stored result of a finished unit with this key, else ``None``."""
    meta = unit_dir / UNIT_FILE
    if not meta.is_file():
        return None
    try:
        stored = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("key") != key:
        return None
    return stored.get("result")


def run_unit(
    unit_dir: str | os.PathLike, key: str, compute: Callable[[Path], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """Return ``(result, reused)`` for the unit at ``unit_dir``, computing it if needed.

    ``compute(tmp_dir)`` writes any files into ``tmp_dir`` and returns a JSON-serialisable
    result; the directory is renamed to ``unit_dir`` only after ``unit.json`` is written.

    Raises:
        Whatever ``compute`` raises (the temporary directory is removed first), and
        ``OSError`` from the file system (a full disk: nothing partial is left behind).
    """
    unit_dir = Path(unit_dir)
    result = cached_result(unit_dir, key)
    if result is not None:
        return result, True
    unit_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in unit_dir.parent.glob(f".{unit_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = unit_dir.parent / f".{unit_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o777 & ~current_umask())
    try:
        result = compute(tmp)
        _write_unit(tmp / UNIT_FILE, {"key": key, "result": result})
        if unit_dir.exists():
            shutil.rmtree(unit_dir)
        os.replace(tmp, unit_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return result, False
