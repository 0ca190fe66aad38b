"""steerlab.files: the digests keep their canonical forms (cache keys on disk depend on it)."""

from __future__ import annotations

import hashlib
import os

import torch

from steerlab.files import (
    adapter_digest,
    current_umask,
    digest,
    file_digest,
    file_sha256,
    tensors_digest,
    text_digest,
)

OBJ = {"b": [1, 2.5, "é"], "a": None}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_digest_is_the_sha256_of_sorted_json_cut_to_16_chars():
    assert digest(OBJ) == _sha('{"a": null, "b": [1, 2.5, "\\u00e9"]}')[:16]
    assert digest({"x": 1, "y": 2}) == digest({"y": 2, "x": 1})


def test_digest_forms_used_by_the_judge_caches():
    compact = digest(OBJ, chars=None, ensure_ascii=False, separators=(",", ":"))
    assert compact == _sha('{"a":null,"b":[1,2.5,"é"]}')
    assert digest(OBJ, chars=None, ensure_ascii=False) == _sha('{"a": null, "b": [1, 2.5, "é"]}')


def test_digest_writes_unencodable_objects_as_str():
    assert digest({"p": os.path.sep}) != digest({"p": 1})
    assert digest({"t": torch.float32}) == digest({"t": "torch.float32"})


def test_text_digest():
    assert text_digest("abc") == _sha("abc")[:16]
    assert text_digest("abc", chars=None) == _sha("abc")


def test_file_sha256_matches_sha256sum(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"\x00\x01" * 1000)
    assert file_sha256(f) == hashlib.sha256(b"\x00\x01" * 1000).hexdigest()


def test_file_digest_hashes_names_then_bytes(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_bytes(b"B")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"A")
    expected = hashlib.sha256(b"b.txtB" + f"sub{os.sep}a.txt".encode() + b"A").hexdigest()
    assert file_digest(tmp_path / "d") == expected[:16]
    assert file_digest(tmp_path / "d" / "b.txt") == hashlib.sha256(b"b.txtB").hexdigest()[:16]


def test_adapter_digest_is_the_digest_of_the_weights_file(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    (tmp_path / "manifest.json").write_text("{}")
    assert adapter_digest(tmp_path) == file_digest(tmp_path / "adapter_model.safetensors")
    assert adapter_digest(None) is None


def test_tensors_digest_hashes_names_and_float32_values():
    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    expected = hashlib.sha256(b"w" + torch.tensor([1.0, 2.0]).numpy().tobytes()).hexdigest()
    assert tensors_digest([("w", t)]) == expected[:16]
    assert tensors_digest([("w", t.half())]) == expected[:16]


def test_current_umask_reads_without_changing_it():
    before = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        assert current_umask() == 0o022
    finally:
        os.umask(before)
