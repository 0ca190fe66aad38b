"""Training runs on tiny models: progress output, multi-turn history, LoRA scaling defaults."""

from __future__ import annotations

import pytest
import torch

from steerlab.models import tiny
from steerlab.text import IGNORE, encode
from steerlab.training import LoraTrainConfig, PairRecord, train_lora, train_sweep
from steerlab.training.lora import make_peft_model
from tests.training_helpers import char_tokenizer

RECORDS = [{"id": i, "prompt": f"Count to {i}.", "response": f"1 .. {i}"} for i in range(8)]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def test_progress_bar_shows_steps_and_loss_and_is_silent_when_off(tok, tmp_path, capsys):
    cfg = LoraTrainConfig(rank=2, max_steps=3, batch_size=4, max_length=64)
    train_lora(tiny("llama", num_layers=1), tok, RECORDS, cfg, tmp_path / "a", progress=True)
    out, err = capsys.readouterr()
    assert "LoRA r=2" in err and "3/3" in err and "loss=" in err
    assert "{'loss'" not in out + err  # the Trainer's line-per-step dicts are gone
    train_lora(tiny("llama", num_layers=1), tok, RECORDS, cfg, tmp_path / "b", progress=False)
    out, err = capsys.readouterr()
    assert "LoRA" not in err and "{'loss'" not in out + err


def test_sweep_bar_counts_runs(tok, tmp_path, capsys):
    pairs = [
        PairRecord(id=str(i), prompt=f"Q{i}?", safe_response=f"safe {i}", harmful_response="bad")
        for i in range(4)
    ]
    cfg = LoraTrainConfig(max_steps=1, batch_size=4, max_length=64)
    kw = {"ranks": [1, 2], "harmful_fractions": [0.5], "config": cfg}
    runs = train_sweep(lambda: (tiny("llama", num_layers=1), tok), pairs, tmp_path, **kw)
    err = capsys.readouterr().err
    assert [r.adapter_dir.name for r in runs] == ["r1-p0.5-s0", "r2-p0.5-s0"]
    assert "LoRA sweep" in err and "2/2" in err
    train_sweep(lambda: (tiny("llama", num_layers=1), tok), pairs, tmp_path, progress=False, **kw)
    assert "LoRA" not in capsys.readouterr().err


def test_history_turns_are_rendered_and_masked(tok):
    rec = {
        "id": 0,
        "prompt": "And 3?",
        "response": "Three.",
        "system": "Be terse.",
        "history": (("user", "Say 2."), ("assistant", "Two.")),
    }
    e = encode(tok, rec, 256)
    text = tok.decode(e.input_ids).replace(" ", "")
    assert text.index("Beterse.") < text.index("Say2.") < text.index("Two.") < text.index("And3?")
    supervised = [t for t in e.labels if t != IGNORE]
    assert e.labels[: e.response_start] == [IGNORE] * e.response_start
    assert tok.decode(supervised).replace(" ", "") == "Three.<end_of_turn>\n".replace(" ", "")


def test_alpha_defaults_to_rank_and_rslora_scales_by_sqrt_rank():
    for cfg, scale in (
        (LoraTrainConfig(rank=8), 1.0),
        (LoraTrainConfig(rank=8, alpha=16), 2.0),
        (LoraTrainConfig(rank=16, use_rslora=True), 16 / 16**0.5),
    ):
        model = make_peft_model(tiny("llama", num_layers=1), cfg)
        q = model.base_model.model.model.layers[0].self_attn.q_proj
        assert q.scaling["default"] == pytest.approx(scale)
        assert q.lora_A["default"].weight.shape == (cfg.rank, 64)
        assert torch.count_nonzero(q.lora_B["default"].weight) == 0
