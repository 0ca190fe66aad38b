"""TransformerLens models are hooked through their own hook points (TransformerBridge, TL 4.x)."""

from __future__ import annotations

import pytest
import torch

import steerlab
from steerlab.models.tiny import tiny

pytest.importorskip("transformer_lens")

POINTS = ("resid_pre", "resid_post", "attn_out", "mlp_out")


@pytest.fixture(scope="module")
def bridge_and_hf(tmp_path_factory):
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tok_models
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    model = tiny("llama")
    model.save_pretrained(path)
    vocab = {f"t{i}": i for i in range(256)}
    backend = Tokenizer(tok_models.WordLevel(vocab, unk_token="t3"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="t0", eos_token="t1", bos_token="t2", unk_token="t3"
    ).save_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    bridge = TransformerBridge.boot_transformers(str(path), hf_model=model, tokenizer=tok)
    return bridge, model


def test_transformer_bridge_is_attached_through_its_hook_points(bridge_and_hf):
    bridge, _ = bridge_and_hf
    lab = steerlab.attach(bridge)
    assert (lab.num_layers, lab.d_model, lab.family) == (3, 64, "llama")
    assert set(lab.hook_points) == set(POINTS)
    hook_types = {type(lab.layout.site(0, p).module).__name__ for p in POINTS}
    assert hook_types == {"HookPoint"}


def test_transformer_lens_recording_and_steering_match_hf(bridge_and_hf):
    bridge, model = bridge_and_hf
    ids = torch.randint(3, 240, (2, 7), generator=torch.Generator().manual_seed(0))
    tl_lab, hf_lab = steerlab.attach(bridge), steerlab.attach(model)
    with torch.no_grad(), tl_lab.record(layers="all", points=POINTS) as tl_rec:
        bridge(ids)
    with torch.no_grad(), hf_lab.record(layers="all", points=POINTS) as hf_rec:
        model(input_ids=ids)
    for key in hf_rec.activations:
        torch.testing.assert_close(tl_rec.activations[key], hf_rec.activations[key])
    vec = steerlab.SteeringVector({1: torch.randn(64)})
    with torch.no_grad(), tl_lab.steer(vec, 3.0):
        tl_logits = bridge(ids)
    with torch.no_grad(), hf_lab.steer(vec, 3.0):
        hf_logits = model(input_ids=ids).logits
    torch.testing.assert_close(tl_logits, hf_logits)
    assert not torch.equal(hf_logits, model(input_ids=ids).logits)
