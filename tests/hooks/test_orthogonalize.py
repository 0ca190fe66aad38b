"""orthogonalize_weights(): a permanent edit that matches runtime directional ablation."""

from __future__ import annotations

import copy

import pytest
import torch

import steerlab
from steerlab.models.tiny import TEXT_FAMILIES, tiny, tiny_inputs

PRE_NORM = [f for f in TEXT_FAMILIES if f not in ("gemma2", "gemma3")]


def _resid(model, inputs):
    lab = steerlab.attach(model)
    with torch.no_grad(), lab.record(layers="all") as rec:
        logits = model(**inputs).logits
    return rec, logits


@pytest.mark.parametrize("family", PRE_NORM)
def test_orthogonalization_matches_runtime_ablation_at_every_layer(family):
    model = tiny(family)
    inputs = tiny_inputs(model, padding="left")
    sub = steerlab.Subspace.from_vectors({0: torch.randn(2, 64)})
    q = sub.bases[0]
    lab = steerlab.attach(model)
    with (
        torch.no_grad(),
        lab.ablate(sub, layers=[0], points="resid_pre"),
        lab.ablate(sub, layers="all", points=("attn_out", "mlp_out")),
        lab.record(layers="all") as runtime,
    ):
        runtime_logits = model(**inputs).logits
    edited = steerlab.orthogonalize_weights(copy.deepcopy(model), sub)
    static, static_logits = _resid(edited, inputs)
    for layer in range(3):
        a, b = runtime.activations[layer], static.activations[layer]
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
        assert (b @ q.T).abs().max() < 1e-4
    torch.testing.assert_close(static_logits, runtime_logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_sandwich_norm_models_cannot_write_into_the_subspace(family):
    model = tiny(family)
    for p in model.parameters():  # non-trivial norm gains
        torch.nn.init.normal_(p, std=0.2)
    inputs = tiny_inputs(model)
    sub = steerlab.Subspace.from_vectors({0: torch.randn(3, 64)})
    edited = steerlab.orthogonalize_weights(copy.deepcopy(model), sub)
    rec, _ = _resid(edited, inputs)
    for layer in range(3):
        h = rec.activations[layer]
        assert (h @ sub.bases[0].T).abs().max() < 1e-4 * h.abs().max()


def test_tied_unembedding_is_left_unchanged():
    model = tiny("llama")
    model.config.tie_word_embeddings = True
    model.tie_weights()
    head_before = model.lm_head.weight.detach().clone()
    vec = steerlab.SteeringVector({1: torch.randn(64)})
    steerlab.orthogonalize_weights(model, vec)
    assert torch.equal(model.lm_head.weight, head_before)
    emb = model.get_input_embeddings().weight
    unit = vec.directions[1] / vec.directions[1].norm()
    assert (emb @ unit).abs().max() < 1e-5


def test_peft_adapter_cannot_write_into_the_subspace():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny("llama"), LoraConfig(r=4, target_modules="all-linear"))
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)
    sub = steerlab.Subspace.from_vectors({0: torch.randn(2, 64)})
    steerlab.orthogonalize_weights(model, sub)
    rec, _ = _resid(model, tiny_inputs(model.get_base_model()))
    for layer in range(3):
        assert (rec.activations[layer] @ sub.bases[0].T).abs().max() < 1e-4


def test_orthogonalize_needs_one_basis():
    model = tiny("llama")
    sub = steerlab.Subspace.from_vectors({0: torch.randn(2, 64), 1: torch.randn(2, 64)})
    with pytest.raises(ValueError, match="pick one with layer="):
        steerlab.orthogonalize_weights(model, sub)
    steerlab.orthogonalize_weights(model, sub, layer=1)
    with pytest.raises(ValueError, match="d_model=32"):
        steerlab.orthogonalize_weights(model, steerlab.SteeringVector({0: torch.randn(32)}))
