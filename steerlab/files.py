"""Files and fingerprints, shared by every writer in steerlab.

- :func:`atomic_path`: write a file under a temporary name, rename it into place on success.
- :func:`refuse_pickle`: check a file is safetensors without ever unpickling it.
- :func:`current_umask`: the process umask, for files and directories made 0600 / 0700.
- Digests (sha256, hex): :func:`digest` of a JSON-serialisable object (cache keys),
  :func:`text_digest` of a string, :func:`file_digest` of a file or directory,
  :func:`file_sha256` of a file's bytes (``sha256sum``), :func:`adapter_digest` of a saved
  LoRA adapter's weights and :func:`tensors_digest` of named in-memory tensors.

The digests name cached results and answer files on disk: their bytes must never change, so
each keeps the canonical form it was introduced with (see each docstring).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Zip archives (torch.save) and the pickle protocol-2+ opcode.
_PICKLE_MAGICS = (b"PK\x03\x04", b"\x80")


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file is fsynced before the rename, so a crash leaves either the old file
    or the complete new one, never a partial file under the final name.

    Raises:
        PermissionError / FileNotFoundError: the directory is not writable or missing.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; honour the umask
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def refuse_pickle(path: str | os.PathLike) -> None:
    """Raise if ``path`` is not a safetensors file, without ever unpickling it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is a pickle / ``torch.save`` archive, or not safetensors at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len <= size - 8:
            return  # a safetensors header: 8-byte length, then JSON
    if head.startswith(_PICKLE_MAGICS) or path.suffix in {
        ".pt",
        ".pth",
        ".pkl",
        ".pickle",
        ".ckpt",
    }:
        raise ValueError(
            f"{path} looks like a pickle / torch.save file; steerlab never unpickles files it is "
            "given. Expected a .safetensors file (convert with safetensors.torch.save_file)."
        )
    raise ValueError(f"{path} is not a safetensors file (bad header)")


# --------------------------------------------------------------------------- digests

_BLOCK = 1 << 20


def digest(
    obj: Any,
    *,
    chars: int | None = 16,
    ensure_ascii: bool = True,
    separators: tuple[str, str] | None = None,
) -> str:
    """sha256 (hex, first ``chars`` characters; all 64 when ``None``) of ``obj``'s canonical
    JSON: ``json.dumps(obj, sort_keys=True, default=str, ensure_ascii=..., separators=...)``.

    The study's cache keys use the defaults; the judge caches keep their own forms
    (``ensure_ascii=False``, compact ``separators``), so existing keys stay valid.
    Objects JSON cannot encode are written as ``str(obj)``.
    """
    text = json.dumps(
        obj, sort_keys=True, default=str, ensure_ascii=ensure_ascii, separators=separators
    )
    return text_digest(text, chars=chars)


def text_digest(text: str, *, chars: int | None = 16) -> str:
    """sha256 (hex, first ``chars`` characters; all when ``None``) of ``text`` in UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()[:chars]


def _update(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex, 64 characters) of a file's bytes, as ``sha256sum`` prints it.

    Raises:
        FileNotFoundError: no such file.
    """
    h = hashlib.sha256()
    _update(h, Path(path))
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (hex, 16 characters) of a file, or of every file under a directory: for each
    file in sorted order, its name (relative to the directory; the bare name for a file)
    then its bytes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        _update(h, f)
    return h.hexdigest()[:16]


def adapter_digest(adapter_dir: str | os.PathLike | None) -> str | None:
    """:func:`file_digest` of a saved LoRA adapter's weights
    (``adapter_dir/adapter_model.safetensors``), or ``None`` for no adapter.

    Raises:
        FileNotFoundError: the directory holds no ``adapter_model.safetensors``.
    """
    if adapter_dir is None:
        return None
    return file_digest(Path(adapter_dir) / "adapter_model.safetensors")


def tensors_digest(named: Iterable[tuple[str, torch.Tensor]], *, chars: int = 16) -> str:
    """sha256 (hex, first ``chars`` characters) of named tensors, in the given order: each
    name in UTF-8, then the tensor's values as float32 bytes (any dtype or device)."""
    h = hashlib.sha256()
    for name, tensor in named:
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:chars]
