"""A clean training run: no nested one-item sweep bar, no library warnings for the user."""

from __future__ import annotations

import warnings

from steerlab.models import tiny
from steerlab.training import LoraTrainConfig, PairRecord, train_sweep
from tests.training_helpers import char_tokenizer


def test_a_one_run_sweep_shows_only_the_run_bar_and_no_library_warnings(tmp_path, capsys):
    tok = char_tokenizer()
    pairs = [
        PairRecord(id=str(i), prompt=f"Q{i}?", safe_response=f"safe {i}", harmful_response="bad")
        for i in range(4)
    ]
    cfg = LoraTrainConfig(max_steps=1, batch_size=4, max_length=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = train_sweep(
            lambda: (tiny("llama", num_layers=1), tok),
            pairs,
            tmp_path,
            ranks=[1],
            harmful_fractions=[0.5],
            config=cfg,
        )
    err = capsys.readouterr().err
    assert [r.adapter_dir.name for r in runs] == ["r1-p0.5-s0"]
    assert "LoRA r=1" in err and "LoRA sweep" not in err
    noisy = [str(w.message) for w in caught if "pin_memory" in str(w.message)]
    noisy += [str(w.message) for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert noisy == []
