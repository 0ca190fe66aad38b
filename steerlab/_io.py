"""Safe file I/O shared by every writer in steerlab: atomic writes and pickle refusal."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Zip archives (torch.save) and the pickle protocol-2+ opcode.
_PICKLE_MAGICS = (b"PK\x03\x04", b"\x80")


def _umask() -> int:
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
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; honour the umask
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
