"""On-disk cache of judge completions, so that a rerun does not pay for a request twice.

One JSON file per request under ``<cache_dir>/<key[:2]>/<key>.json``, where ``key`` is the
SHA-256 of the canonical JSON of ``{"model", "messages", "params"}``. Files are written
atomically (:func:`steerlab.files.atomic_path`). A file that does not parse, or whose stored
key or fields do not match, is ignored (and later overwritten), never trusted. Only
successful completions are stored, and never any header or API key.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from steerlab.eval.judges.backends import Completion
from steerlab.files import atomic_path, digest

__all__ = ["CompletionCache", "cache_key"]

logger = logging.getLogger(__name__)
_VERSION = 1


def cache_key(model: str, messages: Any, params: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of (model, messages, params)."""
    return digest(
        {"model": model, "messages": messages, "params": params},
        chars=None,
        ensure_ascii=False,
        separators=(",", ":"),
    )


class CompletionCache:
    """A directory of cached completions (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        """The cached completion, or ``None`` when missing or corrupt."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["version"] != _VERSION or data["key"] != key:
                raise ValueError("key or version mismatch")
            text = data["text"]
            top = data["top_logprobs"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            if top is not None:
                if not isinstance(top, dict):
                    raise TypeError("top_logprobs is not an object")
                top = {str(k): float(v) for k, v in top.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("ignoring corrupt judge cache entry %s (%s)", path, exc)
            return None
        return Completion(text=text, top_logprobs=top)

    def put(self, key: str, completion: Completion) -> None:
        """Store a successful completion atomically (failed ones are never cached)."""
        if completion.error is not None:
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        record = {
            "version": _VERSION,
            "key": key,
            "text": completion.text,
            "top_logprobs": completion.top_logprobs,
        }
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
