"""The hook engine on real weights: SmolLM2-135M-Instruct (Llama, 30 layers, d_model 576)."""

from __future__ import annotations

import pytest
import torch

import steerlab

pytestmark = pytest.mark.real

PROMPTS = ["What is the capital of France?", "Write a haiku about autumn leaves, please."]


@pytest.fixture(scope="module")
def real(smol):
    model, tok = smol
    rendered = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in PROMPTS
    ]
    tok.padding_side = "left"
    batch = tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (batch["attention_mask"] == 0).any(), "the batch should contain padding"
    return model, tok, batch


def test_real_attach_reports_smollm2_shape(real):
    model, _, _ = real
    lab = steerlab.attach(model)
    assert (lab.num_layers, lab.d_model, lab.family) == (30, 576, "llama")


def test_real_recorded_resid_post_equals_hidden_states(real):
    model, _, batch = real
    lab = steerlab.attach(model)
    with torch.no_grad(), lab.record(layers="all") as rec:
        out = model(**batch, output_hidden_states=True)
    real_tok = batch["attention_mask"].bool()
    for layer in range(29):
        torch.testing.assert_close(rec.activations[layer], out.hidden_states[layer + 1][real_tok])
    last = lab.layout.final_norm(rec.activations[29])
    torch.testing.assert_close(last, out.hidden_states[30][real_tok], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["steer", "ablate"])
def test_real_kv_cache_generation_matches_uncached(real, kind):
    model, _, batch = real
    lab = steerlab.attach(model)
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(576, generator=g)
    vec = steerlab.SteeringVector({10: direction / direction.norm()})
    ctx = lab.steer(vec, 40.0, positions="generated") if kind == "steer" else lab.ablate(vec)
    with torch.no_grad(), ctx:
        cached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=True)
        uncached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def test_real_steering_moves_the_logit_lens_toward_the_direction(real):
    """Steering along the unembedding direction of " Paris" raises its probability."""
    model, tok, batch = real
    lab = steerlab.attach(model)
    paris = tok(" Paris", add_special_tokens=False)["input_ids"][0]
    direction = model.lm_head.weight[paris].detach().clone()
    vec = steerlab.SteeringVector({25: direction / direction.norm()})
    with torch.no_grad():
        base = model(**batch).logits[:, -1].softmax(-1)[:, paris]
        with lab.steer(vec, 100.0):
            steered = model(**batch).logits[:, -1].softmax(-1)[:, paris]
    assert (steered > 10 * base).all(), (base, steered)


def test_real_export_reads_back_with_n_embd_576(real, tmp_path):
    import gguf

    vec = steerlab.SteeringVector({5: torch.randn(576), 12: torch.randn(576)}, family="llama")
    reader = gguf.GGUFReader(str(vec.to_gguf(tmp_path / "cv.gguf")))
    assert {t.name: int(t.shape[0]) for t in reader.tensors} == {
        "direction.5": 576,
        "direction.12": 576,
    }
