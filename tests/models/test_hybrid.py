"""Gemma 3 VLMs built offline: the tiny one (fast) and the 270M hybrid (real weights)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import steerlab
from steerlab.eval import load_questions
from steerlab.eval.sampling import encode_prompts
from steerlab.models import offline
from steerlab.models.hybrid import byte_tokenizer, tiny_gemma3_vlm
from steerlab.text import collate_inputs as collate


def test_byte_tokenizer_round_trips_text_and_keeps_specials():
    tok = byte_tokenizer({255: "<image_soft_token>"})
    ids = tok("héllo, wörld<image_soft_token>", add_special_tokens=False)["input_ids"]
    assert ids[:2] == [ord("h"), 0xC3] and ids[-1] == 255
    assert tok.decode(ids[:-1]) == "héllo, wörld"
    assert (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id) == (0, 1, 2)


def test_tiny_vlm_processor_expands_the_image_into_the_models_image_tokens():
    model, processor = tiny_gemma3_vlm(seed=0)
    q = load_questions("broad-multimodal")[0]
    (enc,) = encode_prompts(processor, [q])
    ids = enc["input_ids"][0].tolist()
    cfg = model.config
    i = ids.index(cfg.boi_token_index)
    assert ids[i : i + 6] == [cfg.boi_token_index] + [cfg.image_token_index] * 4 + [
        cfg.eoi_token_index
    ]
    assert enc["pixel_values"].shape == (1, 3, 32, 32)
    assert enc["token_type_ids"][0].sum() == 4
    out = model(**collate([enc], 0, "left"))
    assert out.logits.shape == (1, len(ids), 256)


def _hybrid_or_skip():
    spec = offline.get("gemma3-270m")
    if not spec.installed:
        pytest.skip(f"Gemma 3 270M not installed; run: {spec.install}")
    return offline.load_model("gemma3-270m-hybrid")


@pytest.mark.real
def test_hybrid_runs_forward_and_generate_on_an_image_and_attaches_18_layers():
    model, processor = _hybrid_or_skip()
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert model.config.name_or_path == "gemma3-270m-hybrid"
    lab = steerlab.attach(model)
    assert lab.num_layers == 18 and lab.d_model == 640
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()

    # The decoder is the real Gemma 3 270M: every checkpoint tensor model.X is
    # model.language_model.X of the hybrid, unchanged.
    from safetensors import safe_open

    ckpt = offline.convert("gemma3-270m") / "model.safetensors"
    params = dict(model.named_parameters())
    with safe_open(str(ckpt), framework="pt") as fh:
        keys = [k for k in fh.keys() if k.startswith("model.")]  # noqa: SIM118
        assert len(keys) > 200
        for key in keys:
            mine = params["model.language_model." + key[len("model.") :]]
            assert torch.equal(mine, fh.get_tensor(key)), key

    image = Image.new("RGB", (64, 48), (200, 30, 30))
    text = f"User: {processor.image_token}\nWhat is in this picture?\nAssistant: "
    inputs = processor(text=[text], images=[[image]], return_tensors="pt")
    n_img = int((inputs["input_ids"] == model.config.image_token_index).sum())
    assert n_img == model.config.mm_tokens_per_image == 16
    with torch.no_grad():
        logits = model(**inputs).logits
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        other = model(
            **processor(text=[text], images=[[Image.new("RGB", (64, 48))]], return_tensors="pt")
        ).logits
    assert torch.isfinite(logits).all() and out.shape[1] == inputs["input_ids"].shape[1] + 4
    assert not torch.allclose(logits[0, -1], other[0, -1])  # the (random) image reaches the decoder
