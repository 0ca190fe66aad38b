"""Streaming activations to disk as bounded safetensors shards, and reading them back lazily.

Layout of a store directory::

    shard-00000.safetensors   # tensors "blocks.{layer}.hook_{point}" [n, d_model],
    shard-00001.safetensors   # "example_index" [n], "position" [n]; metadata: n_tokens
    manifest.json             # written last: keys, d_model, dtype, shard list, token count

Every shard is written to a temporary file and renamed into place, so a crash leaves only
complete shards; a store without a manifest (an interrupted run) still reads back its
complete shards.

Stores written before hook names were unified name their tensors ``L{layer}.{point}``; they
read back unchanged (:meth:`HookName.parse` reads both forms, and each key remembers the
tensor name it has on disk).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from steerlab.files import atomic_path
from steerlab.hooks.names import HookName, check_layer

Key = HookName  # a (layer, point) tuple; plain tuples are accepted wherever a Key is read
_META = ("example_index", "position")


def key_name(key: HookName | tuple[int, str]) -> str:
    """The tensor name a key is written under: ``blocks.{layer}.hook_{point}``."""
    return str(HookName.parse(key))


def parse_key(name: str) -> HookName:
    """A stored tensor name: ``blocks.{layer}.hook_{point}``, or legacy ``L{layer}.{point}``."""
    return HookName.parse(name)


class ShardWriter:
    """Buffers activations and writes a shard whenever ``shard_bytes`` is reached."""

    def __init__(self, directory: str | Path, shard_bytes: int = 256 * 2**20) -> None:
        if shard_bytes < 1024:
            raise ValueError(
                f"shard_mb must be at least 1 KiB (0.001), got {shard_bytes / 2**20:g}"
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = list(self.directory.glob("shard-*.safetensors"))
        if existing or (self.directory / "manifest.json").exists():
            raise FileExistsError(
                f"{self.directory} already holds an activation store; pass an empty directory"
            )
        self.shard_bytes = shard_bytes
        self._buf: dict[str, list[torch.Tensor]] = {}
        self._buf_bytes = 0
        self._buf_tokens = 0
        self.shards: list[dict] = []
        self.n_tokens = 0

    def append(self, tensors: dict[str, torch.Tensor]) -> None:
        n = int(tensors["example_index"].shape[0])
        for name, t in tensors.items():
            self._buf.setdefault(name, []).append(t)
            self._buf_bytes += t.numel() * t.element_size()
        self._buf_tokens += n
        if self._buf_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buf_tokens:
            return
        name = f"shard-{len(self.shards):05d}.safetensors"
        tensors = {k: torch.cat(v).contiguous() for k, v in self._buf.items()}
        with atomic_path(self.directory / name) as tmp:
            save_file(tensors, str(tmp), metadata={"n_tokens": str(self._buf_tokens)})
        self.shards.append({"file": name, "n_tokens": self._buf_tokens})
        self.n_tokens += self._buf_tokens
        self._buf.clear()
        self._buf_bytes = 0
        self._buf_tokens = 0

    def close(self, keys: list[HookName], d_model: int, dtype: torch.dtype, extra: dict) -> None:
        self.flush()
        manifest = {
            "format": "steerlab.activations/1",
            "keys": [key_name(k) for k in keys],
            "d_model": d_model,
            "dtype": str(dtype).removeprefix("torch."),
            "n_tokens": self.n_tokens,
            "shards": self.shards,
            **extra,
        }
        with atomic_path(self.directory / "manifest.json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=2))


class ActivationStore:
    """Read-only, lazy view of a store directory written by ``lab.record(to_disk=...)``.

    Nothing is loaded until asked for; :meth:`iter_chunks` streams ``[chunk, d_model]``
    tensors one shard at a time, so memory stays bounded by the shard size.

    Raises:
        FileNotFoundError: the directory holds no shards.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        if manifest.exists():
            self.manifest = json.loads(manifest.read_text())
            self._files = [self.directory / s["file"] for s in self.manifest["shards"]]
            self.complete = True
        else:  # interrupted run: every renamed shard is complete by construction
            self._files = sorted(self.directory.glob("shard-*.safetensors"))
            self.manifest = {}
            self.complete = False
        if self.complete:  # a finished recording, possibly with no tokens at all
            self._names = {parse_key(n): n for n in self.manifest["keys"]}
            self.keys: list[HookName] = list(self._names)
            self.d_model = int(self.manifest["d_model"])
            self.dtype = getattr(torch, self.manifest.get("dtype", "float32"))
            return
        if not self._files:
            raise FileNotFoundError(
                f"no activation shards in {self.directory} (expected shard-*.safetensors "
                "written by lab.record(to_disk=...))"
            )
        with safe_open(str(self._files[0]), "pt") as f:
            names = [k for k in f.keys() if k not in _META]  # noqa: SIM118
            first = f.get_slice(names[0])
            self.d_model = int(first.get_shape()[1])
            self.dtype = first.get_dtype()
        self._names = {parse_key(n): n for n in names}
        self.keys = list(self._names)

    def __len__(self) -> int:
        if "n_tokens" in self.manifest:
            return int(self.manifest["n_tokens"])
        total = 0
        for path in self._files:
            with safe_open(str(path), "pt") as f:
                total += int(f.metadata()["n_tokens"])
        return total

    def _resolve(self, key: HookName | tuple[int, str] | int | str) -> str:
        """The tensor name on disk of a key: a :class:`HookName`, ``(layer, point)``, a hook
        name string, or a bare layer (when one point was recorded at that layer)."""
        shown = [str(k) for k in self.keys]
        bare = not isinstance(key, (str, tuple, list))
        try:
            name = HookName.parse(key, point=None) if not bare else None
            layer = check_layer(key) if bare else name.layer
        except (TypeError, ValueError) as err:
            raise KeyError(f"{err}; keys: {shown}") from None
        if layer < 0:
            raise KeyError(
                f"layer {layer}: a store does not know the model's depth; use the "
                f"non-negative layer index. Recorded keys: {shown}"
            )
        if name is None:
            matches = [k for k in self.keys if k.layer == layer]
            if len(matches) != 1:
                raise KeyError(f"layer {layer} is ambiguous or missing; keys: {shown}")
            name = matches[0]
        if name not in self._names:
            raise KeyError(f"{name} not recorded; keys: {shown}")
        return self._names[name]

    def iter_chunks(
        self, key: HookName | tuple[int, str] | int | str, chunk_tokens: int = 65536
    ) -> Iterator[torch.Tensor]:
        """Yield ``[<=chunk_tokens, d_model]`` activations (or metadata) in recording order."""
        name = key if key in _META else self._resolve(key)
        for path in self._files:
            with safe_open(str(path), "pt") as f:
                sl = f.get_slice(name)
                n = int(sl.get_shape()[0])
                for start in range(0, n, chunk_tokens):
                    yield sl[start : min(n, start + chunk_tokens)]

    def iter_shards(self) -> Iterator[dict[str, torch.Tensor]]:
        """Yield each shard whole, in recording order: ``{tensor name: [tokens, ...]}`` for
        every key (named as :func:`key_name` writes them) and ``example_index`` /
        ``position``. Memory is bounded by one shard."""
        for path in self._files:
            with safe_open(str(path), "pt") as f:
                yield {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118

    def load(self, key: HookName | tuple[int, str] | int | str) -> torch.Tensor:
        """All tokens of one key, concatenated: ``[n_tokens, d_model]``.

        ``key`` is a hook name in any form :meth:`HookName.parse` reads
        (``"blocks.6.hook_resid_post"``, ``(6, "resid_post")``), a bare layer when one point
        was recorded there, or ``"example_index"`` / ``"position"``. Raises ``KeyError``.
        """
        chunks = list(self.iter_chunks(key))
        if chunks:
            return torch.cat(chunks)
        if key in _META:
            return torch.empty(0, dtype=torch.long)
        return torch.empty(0, self.d_model, dtype=self.dtype)

    def __getitem__(self, key: HookName | tuple[int, str] | int | str) -> torch.Tensor:
        return self.load(key)

    @property
    def example_index(self) -> torch.Tensor:
        """``[n_tokens]`` example index of each recorded token."""
        return self.load("example_index")

    @property
    def position(self) -> torch.Tensor:
        """``[n_tokens]`` absolute position of each recorded token in its example."""
        return self.load("position")
