"""bf16 autocast of the LoRA training step: same loss and gradients as fp32 within bf16 noise."""

from __future__ import annotations

import logging

import pytest
import torch
from peft.tuners.lora import LoraLayer

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


def _down_proj(model):
    return model.base_model.model.model.layers[0].mlp.down_proj  # a peft LoRA Linear


def test_fp32_lora_sum_keeps_an_update_that_a_bf16_sum_rounds_away():
    torch.manual_seed(1)
    model = make_peft_model(tiny("llama", seed=1).float(), LoraTrainConfig(rank=4))
    layer = _down_proj(model)
    with torch.no_grad():  # planted: an update about 1e-3 of the frozen output
        layer.lora_B["default"].weight.normal_(0, 2e-4)
    x = torch.randn(2, 5, layer.in_features)
    with torch.no_grad():
        exact = layer(x) - layer.get_base_layer()(x)  # fp32: the true update
        assert 1e-4 < float(exact.norm() / layer.get_base_layer()(x).norm()) < 1e-2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lost = layer(x).float() - layer.get_base_layer()(x).float()
            with lora.fp32_lora_sum(model) as hooked:
                out = layer(x)
                kept = out - layer.get_base_layer()(x)
    assert hooked == sum(isinstance(m, LoraLayer) for m in model.modules()) > 0
    assert out.dtype == torch.float32
    err_lost = float((lost - exact).norm() / exact.norm())
    err_kept = float((kept - exact).norm() / exact.norm())
    assert err_lost > 0.3, err_lost  # the bf16 sum loses most of the update
    assert err_kept < 0.02, err_kept  # the fp32 sum keeps it to bf16 matmul precision
    assert not any(m.get_base_layer()._forward_hooks for m in [layer])  # hooks removed


def test_training_precision_hooks_only_when_bf16_runs(peft_model, monkeypatch):
    layer = _down_proj(peft_model)
    x = torch.randn(1, 3, layer.in_features)
    monkeypatch.setattr(lora, "bf16_supported", lambda device="cpu": True)
    with torch.no_grad(), lora.training_precision("bf16", peft_model):
        assert layer.get_base_layer()(x).dtype == torch.float32  # cast back by the hook
        assert torch.is_autocast_enabled("cpu")
    with torch.no_grad(), lora.training_precision("off", peft_model):
        assert not layer.get_base_layer()._forward_hooks
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(lora, "bf16_supported", lambda device="cpu": False)
    with lora.training_precision("bf16", peft_model):  # fp32 fallback: nothing hooked
        assert not layer.get_base_layer()._forward_hooks
    with pytest.raises(ValueError, match="needs a peft LoRA model"):
        with lora.fp32_lora_sum(torch.nn.Linear(2, 2)):
            pass
