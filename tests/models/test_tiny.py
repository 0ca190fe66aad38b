"""Tests for the tiny random-init models in :mod:`steerlab.models.tiny`."""

from __future__ import annotations

import pytest
import torch

from steerlab.models.tiny import TEXT_FAMILIES, TINY_FAMILIES, VLM_FAMILIES, tiny, tiny_inputs

# Where each family keeps its text decoder blocks and (for VLMs) its vision tower blocks.
TEXT_LAYERS = {
    "llama": "model.layers",
    "gemma2": "model.layers",
    "gemma3": "model.layers",
    "qwen2": "model.layers",
    "qwen3": "model.layers",
    "mistral": "model.layers",
    "phi3": "model.layers",
    "gpt2": "transformer.h",
    "gpt_neox": "gpt_neox.layers",
    "opt": "model.decoder.layers",
    "gemma3-vlm": "model.language_model.layers",
    "llava": "model.language_model.layers",
    "qwen2-vl": "model.language_model.layers",
    "smolvlm": "model.text_model.layers",
    "paligemma": "model.language_model.layers",
}
VISION_LAYERS = {
    "gemma3-vlm": "model.vision_tower.encoder.layers",
    "llava": "model.vision_tower.encoder.layers",
    "qwen2-vl": "model.visual.blocks",
    "smolvlm": "model.vision_model.encoder.layers",
    "paligemma": "model.vision_tower.encoder.layers",
}

VOCAB = 256
NUM_LAYERS = 3


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """One default tiny model per family, shared by the read-only tests."""
    return {family: tiny(family) for family in TINY_FAMILIES}


def test_family_lists() -> None:
    assert TINY_FAMILIES == TEXT_FAMILIES + VLM_FAMILIES
    assert len(set(TINY_FAMILIES)) == len(TINY_FAMILIES)
    assert set(TEXT_LAYERS) == set(TINY_FAMILIES)
    assert set(VISION_LAYERS) == set(VLM_FAMILIES)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_builds(family: str, models: dict[str, torch.nn.Module]) -> None:
    model = models[family]
    assert not model.training
    assert model.config.name_or_path == f"tiny-{family}"
    assert model.config.get_text_config().hidden_size == 64
    assert model.config.get_text_config().vocab_size == VOCAB
    assert model.config._attn_implementation == "eager"
    assert model.dtype == torch.float32


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_same_seed_same_weights(family: str) -> None:
    a = tiny(family, seed=1).state_dict()
    b = tiny(family, seed=1).state_dict()
    c = tiny(family, seed=2).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_layer_counts(family: str, models: dict[str, torch.nn.Module]) -> None:
    model = models[family]
    text_layers = model.get_submodule(TEXT_LAYERS[family])
    assert isinstance(text_layers, torch.nn.ModuleList)
    assert len(text_layers) == NUM_LAYERS
    assert model.get_decoder() is model.get_submodule(TEXT_LAYERS[family].rsplit(".", 1)[0])
    if family in VLM_FAMILIES:
        vision_layers = model.get_submodule(VISION_LAYERS[family])
        assert isinstance(vision_layers, torch.nn.ModuleList)
        assert len(vision_layers) > len(text_layers)


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2-vl", "smolvlm"])
def test_num_layers_and_dtype(family: str) -> None:
    model = tiny(family, num_layers=1, dtype=torch.bfloat16)
    assert len(model.get_submodule(TEXT_LAYERS[family])) == 1
    assert model.dtype == torch.bfloat16
    inputs = tiny_inputs(model, batch=1, seq=4)
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape == (1, inputs["input_ids"].shape[1], VOCAB)


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("padding", [None, "left", "right"])
def test_forward_shapes(
    family: str, padding: str | None, models: dict[str, torch.nn.Module]
) -> None:
    model = models[family]
    inputs = tiny_inputs(model, batch=2, seq=8, padding=padding)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    assert ids.shape == mask.shape
    assert ids.shape[0] == 2
    if family in TEXT_FAMILIES:
        assert ids.shape[1] == 8
    else:
        assert ids.shape[1] > 8  # text tokens plus the image block
        assert "pixel_values" in inputs
    if padding is None:
        assert bool(mask.all())
    else:
        assert int(mask[0].sum()) == int(mask[1].sum()) - 3
        side = 0 if padding == "left" else -1
        assert int(mask[0, side]) == 0 and int(mask[1, side]) == 1
        assert int(ids[0, side]) == (model.config.get_text_config().pad_token_id or 0)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    assert out.logits.shape == (2, ids.shape[1], VOCAB)
    assert len(out.hidden_states) == NUM_LAYERS + 1
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_vlm_text_only_and_image_effect(family: str, models: dict[str, torch.nn.Module]) -> None:
    model = models[family]
    text = tiny_inputs(model, image=False)
    assert set(text) == {"input_ids", "attention_mask"}
    assert text["input_ids"].shape == (2, 8)
    with torch.no_grad():
        assert model(**text).logits.shape == (2, 8, VOCAB)
        a = tiny_inputs(model, seed=0)
        b = dict(a, pixel_values=torch.randn_like(a["pixel_values"]))
        # The image must actually influence the text logits.
        assert not torch.allclose(model(**a).logits[:, -1], model(**b).logits[:, -1])


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_inputs_deterministic_and_no_special_text_tokens(
    family: str, models: dict[str, torch.nn.Module]
) -> None:
    model = models[family]
    a = tiny_inputs(model, seed=3, image=False)
    b = tiny_inputs(model, seed=3, image=False)
    c = tiny_inputs(model, seed=4, image=False)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["input_ids"], c["input_ids"])
    ids = a["input_ids"]
    assert int(ids.min()) >= 3 and int(ids.max()) < 248  # no pad/eos/bos/image ids


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_generate_left_padded_cache_matches_no_cache(
    family: str, models: dict[str, torch.nn.Module]
) -> None:
    model = models[family]
    inputs = tiny_inputs(model, padding="left")
    prompt_len = inputs["input_ids"].shape[1]
    with torch.no_grad():
        cached = model.generate(**inputs, max_new_tokens=3, do_sample=False, use_cache=True)
        uncached = model.generate(**inputs, max_new_tokens=3, do_sample=False, use_cache=False)
    assert cached.shape[0] == 2
    assert prompt_len < cached.shape[1] <= prompt_len + 3
    assert torch.equal(cached[:, :prompt_len], inputs["input_ids"])
    assert torch.equal(cached, uncached)


def test_unknown_family() -> None:
    with pytest.raises(ValueError) as info:
        tiny("not-a-family")
    for family in TINY_FAMILIES:
        assert family in str(info.value)


def test_bad_arguments() -> None:
    model = tiny("llama")
    with pytest.raises(ValueError):
        tiny_inputs(model, padding="middle")
    with pytest.raises(ValueError):
        tiny_inputs(model, seq=0)
    with pytest.raises(ValueError):
        tiny("llama", num_layers=0)
