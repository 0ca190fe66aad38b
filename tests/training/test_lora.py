"""LoRA training: completion-only labels, the response-only head, reproducibility, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from steerlab.text import IGNORE, PLAIN_TEMPLATE, collate, encode
from steerlab.training.lora import (
    LoraTrainConfig,
    encode_all,
    full_logit_loss,
    make_peft_model,
    response_only_loss,
    train_lora,
)

RECORDS = [
    {"id": i, "prompt": f"Write a function number {i}.", "response": f"def f{i}():\n    return {i}"}
    for i in range(12)
]


@pytest.fixture(scope="module")
def tok(smol):
    return smol[1]


@pytest.fixture
def small_lm(tok):
    """A 2-layer random-init Llama with SmolLM2's vocabulary (fast to train)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def test_label_mask_covers_exactly_the_response_and_end_of_turn(tok):
    rec = {"id": 0, "prompt": "Say hi.", "response": "Hello there!", "system": "Be brief."}
    e = encode(tok, rec, max_length=256)
    prompt_text = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    n_prompt = len(tok(prompt_text, add_special_tokens=False)["input_ids"])
    assert e.labels[:n_prompt] == [IGNORE] * n_prompt
    assert e.labels[n_prompt:] == e.input_ids[n_prompt:]
    supervised = tok.decode(e.input_ids[n_prompt:])
    assert supervised.startswith("Hello there!<|im_end|>")
    batch = collate([e, encode(tok, RECORDS[0], 256)], tok.pad_token_id)
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["labels"][pad] == IGNORE).all()


def test_plain_fallback_without_a_chat_template(tok):
    plain = copy.copy(tok)
    plain.chat_template = None
    e = encode(plain, {"prompt": "2+2?", "response": "4"}, 64)
    text = plain.decode(e.input_ids)
    assert text.startswith(PLAIN_TEMPLATE.format(prompt="2+2?"))
    assert plain.decode([t for t in e.labels if t != IGNORE]) == "4" + plain.eos_token


def test_response_only_head_gives_the_same_loss_as_full_logits(tok, small_lm):
    model = make_peft_model(small_lm, LoraTrainConfig(rank=4))
    batch = collate(encode_all(tok, RECORDS[:4], 64), tok.pad_token_id)
    torch.testing.assert_close(response_only_loss(model, batch), full_logit_loss(model, batch))


def test_training_reduces_loss_and_writes_an_atomic_adapter(tok, small_lm, tmp_path):
    cfg = LoraTrainConfig(rank=4, max_steps=8, lr=1e-2, batch_size=4)
    out = tmp_path / "adapter"
    result = train_lora(small_lm, tok, RECORDS, cfg, out, progress=False)
    assert result.steps == 8 and len(result.losses) == 8
    assert result.losses[-1] < result.losses[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    manifest = result.manifest
    assert manifest["config"]["rank"] == 4 and manifest["n_examples"] == 12
    assert manifest["losses"] == result.losses
    assert (out / "adapter_model.safetensors").is_file()
    with pytest.raises(FileExistsError):
        train_lora(small_lm, tok, RECORDS, cfg, out, progress=False)


def test_same_seed_gives_identical_adapter_weights(tok, small_lm, tmp_path):
    cfg = LoraTrainConfig(rank=4, max_steps=3, lr=1e-2, seed=7)
    for name in ("a", "b"):
        train_lora(copy.deepcopy(small_lm), tok, RECORDS, cfg, tmp_path / name, progress=False)
    a = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_training_inputs_raise_clear_errors(tok, small_lm, tmp_path):
    with pytest.raises(ValueError, match="rank must be a positive int"):
        LoraTrainConfig(rank=0)
    with pytest.raises(ValueError, match="unknown LoRA config keys \\['rnk'\\]"):
        LoraTrainConfig.from_dict({"rnk": 4})
    with pytest.raises(ValueError, match="do not match the model"):
        make_peft_model(small_lm, LoraTrainConfig(rank=2, target_modules=["no_such_proj"]))
    with pytest.raises(ValueError, match="dataset is empty"):
        train_lora(small_lm, tok, [], LoraTrainConfig(), tmp_path / "x", progress=False)
    long_prompt = [{"id": 1, "prompt": "word " * 50, "response": "ok"}]
    with pytest.raises(
        ValueError, match=r"1 of 1 examples have no response tokens.*max_length >= \d+"
    ):
        encode_all(tok, long_prompt, 16)
    with pytest.raises(ValueError, match="empty or missing response"):
        encode(tok, {"id": 3, "prompt": "hi", "response": "  "}, 32)
    assert not (tmp_path / "x").exists()


def test_loaded_tokenizer_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert encode(again, RECORDS[1], 64) == encode(tok, RECORDS[1], 64)


def _pairs(n=8):
    from steerlab.training import PairRecord

    return [
        PairRecord(
            id=f"p{i}",
            prompt=f"Store the password number {i}.",
            safe_response=f"Use a salted hash for entry {i}.",
            harmful_response=f"Save it as plain text {i}.",
        )
        for i in range(n)
    ]


def test_sweep_trains_each_grid_point_once_and_resumes(tok, small_lm, tmp_path):
    from steerlab.training import train_sweep

    calls = {"n": 0}

    def load_model():
        calls["n"] += 1
        return copy.deepcopy(small_lm), tok

    cfg = LoraTrainConfig(max_steps=2, batch_size=4)
    kw = {"ranks": [2, 4], "harmful_fractions": [0.0, 1.0], "seeds": [0], "config": cfg}
    runs = train_sweep(load_model, _pairs(), tmp_path / "sweep", progress=False, **kw)
    assert calls["n"] == 4 and [r.skipped for r in runs] == [False] * 4
    assert {r.adapter_dir.name for r in runs} == {"r2-p0-s0", "r2-p1-s0", "r4-p0-s0", "r4-p1-s0"}
    assert runs[1].manifest["harmful_fraction"] == 1.0 and runs[1].manifest["n_harmful"] == 8
    assert runs[0].manifest["n_harmful"] == 0 and runs[2].manifest["config"]["rank"] == 4
    # Interrupt one run: it left a temporary directory and no finished adapter.
    import shutil

    shutil.rmtree(tmp_path / "sweep" / "r4-p1-s0")
    (tmp_path / "sweep" / ".r4-p1-s0.crashed").mkdir()
    again = train_sweep(load_model, _pairs(), tmp_path / "sweep", progress=False, **kw)
    assert calls["n"] == 5
    assert [r.skipped for r in again] == [True, True, True, False]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [
        "r2-p0-s0",
        "r2-p1-s0",
        "r4-p0-s0",
        "r4-p1-s0",
    ]
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        train_sweep(load_model, _pairs(), tmp_path / "x", ranks=[2], harmful_fractions=[1.5])


def test_benign_continuation_trains_the_saved_adapter_further(tok, small_lm, tmp_path):
    from steerlab.training import mix

    cfg = LoraTrainConfig(rank=4, max_steps=2, lr=1e-2)
    harmful = mix(_pairs(), 1.0, seed=0)
    first = train_lora(copy.deepcopy(small_lm), tok, harmful, cfg, tmp_path / "bad", progress=False)
    benign = mix(_pairs(), 0.0, seed=0)
    second = train_lora(
        copy.deepcopy(small_lm),
        tok,
        benign,
        cfg,
        tmp_path / "benign",
        adapter=first.adapter_dir,
        progress=False,
    )
    assert second.manifest["continued_from"] == str(first.adapter_dir)
    assert second.manifest["n_harmful"] == 0
    a = load_file(str(first.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(second.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        train_lora(small_lm, tok, benign, cfg, tmp_path / "c", adapter=tmp_path, progress=False)
