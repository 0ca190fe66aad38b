"""bf16 autocast of the LoRA training step: same loss and gradients as fp32 within bf16 noise."""

from __future__ import annotations

import logging

import pytest
import torch

from steerlab.models import tiny
from steerlab.training import lora
from steerlab.training.lora import (
    LoraTrainConfig,
    autocast_context,
    make_peft_model,
    response_only_loss,
)

# bf16 keeps 8 bits of mantissa (relative rounding 2^-8 ≈ 0.4%); over a 2-layer tiny model
# the loss (≈ ln(vocab) ≈ 5.5) moves by well under 1%.
LOSS_RTOL = 1e-2


def _batch(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (3, 24), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 12:] = ids[:, 12:]
    mask = torch.ones_like(ids)
    mask[2, 20:] = 0
    labels[2, 20:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.fixture(scope="module")
def peft_model():
    torch.manual_seed(0)
    model = make_peft_model(tiny("llama", seed=0).float(), LoraTrainConfig(rank=4))
    with torch.no_grad():  # nonzero B, so the adapter's gradients are not all zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def _step(model, batch, mode: str) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with autocast_context(mode):
        loss = response_only_loss(model, batch)
    loss.backward()
    grads = torch.cat(
        [p.grad.flatten() for n, p in model.named_parameters() if p.requires_grad]
    ).float()
    return loss.item(), grads


def test_bf16_step_close_to_fp32(peft_model, monkeypatch):
    monkeypatch.setattr(lora, "bf16_supported", lambda device="cpu": True)  # autocast runs anyway
    batch = _batch(peft_model.config.vocab_size)
    loss32, g32 = _step(peft_model, batch, "off")
    loss16, g16 = _step(peft_model, batch, "bf16")
    assert loss16 != loss32  # bf16 really ran
    assert loss16 == pytest.approx(loss32, rel=LOSS_RTOL)
    cos = torch.nn.functional.cosine_similarity(g32, g16, dim=0)
    assert cos > 0.99, float(cos)


def test_fallback_logs_once_and_runs_fp32(peft_model, monkeypatch, caplog):
    monkeypatch.setattr(lora, "bf16_supported", lambda device="cpu": False)
    batch = _batch(peft_model.config.vocab_size)
    loss32, _ = _step(peft_model, batch, "off")
    with caplog.at_level(logging.WARNING, logger=lora.__name__):
        loss, _ = _step(peft_model, batch, "bf16")
    assert loss == loss32
    assert sum("no native bf16" in r.message for r in caplog.records) == 1


def test_bad_mode_rejected():
    with pytest.raises(ValueError, match="autocast must be one of"):
        LoraTrainConfig(autocast="fp8")
    with pytest.raises(ValueError, match="autocast must be one of"):
        autocast_context("half")
