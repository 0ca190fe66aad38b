"""VLM fine-tuning: images through the processor, the label mask, LoRA targets, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from steerlab.models import tiny
from steerlab.text import IGNORE, collate, encode
from steerlab.training import LoraTrainConfig, mix, train_lora
from steerlab.training.lora import (
    encode_all,
    full_logit_loss,
    make_peft_model,
    response_only_loss,
)
from tests.training_helpers import IMAGE, char_tokenizer, tiny_gemma3_processor

IMAGE_IDS = {253, 254, 255}  # end-of-image, start-of-image, image soft token


@pytest.fixture(scope="module")
def proc():
    return tiny_gemma3_processor()


def red(size=(50, 40)):
    return Image.new("RGB", size, (200, 10, 10))


def records(n=4, image=True):
    return [
        {
            "id": i,
            "prompt": f"What is shown {i}?",
            "response": f"A red box {i}.",
            "image": red() if image else None,
        }
        for i in range(n)
    ]


def test_vlm_label_mask_token_by_token_with_the_image_through_the_processor(proc, tmp_path):
    path = tmp_path / "red.png"
    red().save(path)
    rec = {"id": 0, "prompt": "What is it?", "response": "A red box.", "image": str(path)}
    e = encode(proc, rec, max_length=256)
    msgs = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}
    ]
    prompt_text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    direct = proc(text=[prompt_text], images=[[red()]], return_tensors="pt")
    n_prompt = direct["input_ids"].shape[1]
    # The processor expanded the image into start + 4 soft tokens + end, all in the prompt.
    assert e.input_ids[:n_prompt] == direct["input_ids"][0].tolist()
    assert [t for t in e.input_ids if t in IMAGE_IDS] == [254, 255, 255, 255, 255, 253]
    assert e.response_start == n_prompt
    assert e.labels[:n_prompt] == [IGNORE] * n_prompt
    response_ids = proc.tokenizer("A red box.<end_of_turn>\n", add_special_tokens=False)
    assert e.labels[n_prompt:] == e.input_ids[n_prompt:] == response_ids["input_ids"]
    torch.testing.assert_close(e.extras["pixel_values"], direct["pixel_values"])
    assert e.seq_keys == ("token_type_ids",)
    assert e.extras["token_type_ids"].tolist() == [int(t == 255) for t in e.input_ids]

    batch = collate([e, encode(proc, records(1, image=False)[0], 256)], 0)
    assert batch["pixel_values"].shape == (1, 3, 32, 32)  # only the example with an image
    assert batch["token_type_ids"].shape == batch["input_ids"].shape
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["labels"][pad] == IGNORE).all()
    assert (batch["token_type_ids"][1] == 0).all()


def test_vlm_response_only_loss_matches_full_logits_and_sees_the_image(proc):
    model = make_peft_model(tiny("gemma3-vlm"), LoraTrainConfig(rank=4))
    batch = collate(encode_all(proc, records(3) + records(1, image=False), 256), 0)
    loss = response_only_loss(model, batch)
    torch.testing.assert_close(loss, full_logit_loss(model, batch))
    other = dict(batch, pixel_values=torch.randn_like(batch["pixel_values"]))
    assert not torch.allclose(response_only_loss(model, other), loss)


def test_lora_step_on_a_tiny_vlm_changes_only_lora_weights(proc, tmp_path):
    model = tiny("gemma3-vlm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = LoraTrainConfig(rank=4, max_steps=2, lr=1e-2, batch_size=2, max_length=128)
    result = train_lora(model, proc, records(4), cfg, tmp_path / "vlm", progress=False)
    assert result.steps == 2 and (tmp_path / "vlm" / "adapter_model.safetensors").is_file()
    lora, base = {}, {}
    for name, p in model.named_parameters():
        (lora if "lora_" in name else base)[name] = p.detach()
    assert len(lora) == 2 * 7 * 3  # A and B on the 7 linear layers of 3 decoder blocks
    assert not any("vision" in n for n in lora)
    for name, p in base.items():
        key = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        assert torch.equal(p, before[key]), name
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)


def test_include_vision_adds_vision_tower_lora_and_the_default_does_not():
    def lora_modules(**kw):
        model = make_peft_model(tiny("gemma3-vlm"), LoraTrainConfig(rank=2, **kw))
        return [n for n, _ in model.named_modules() if n.endswith(".lora_A")]

    default, with_vision = lora_modules(), lora_modules(include_vision=True)
    vision = [n for n in with_vision if ".vision_tower." in n]
    assert not any(".vision_tower." in n for n in default)
    assert len(default) == 7 * 3  # the language model's linear layers
    blocks = [n for n in vision if ".vision_tower.encoder.layers." in n]
    assert len(blocks) == 6 * 5  # q, k, v, out_proj, fc1, fc2 in each of 5 SigLIP blocks
    assert sorted(set(with_vision) - set(vision)) == sorted(default)


def test_photo_prompts_train_through_the_processor(proc, tmp_path):
    pytest.importorskip("skimage")
    from steerlab.domains.photo_prompts import photo_prompts

    pairs = photo_prompts(4, seed=0)
    assert all(isinstance(p.image, str) for p in pairs)
    cfg = LoraTrainConfig(rank=2, max_steps=1, batch_size=4, max_length=512)
    result = train_lora(
        tiny("gemma3-vlm"), proc, mix(pairs, 0.5, seed=0), cfg, tmp_path / "p", progress=False
    )
    assert result.manifest["n_examples"] == 4 and result.manifest["n_harmful"] == 2


def test_image_records_need_a_vlm_and_its_processor(proc, tmp_path):
    with pytest.raises(ValueError, match=r"record 0 has an image.*text-only tokenizer"):
        encode(char_tokenizer(), records(1)[0], 256)
    with pytest.raises(ValueError, match=r"4 of 4 records have an image.*model .*is text-only"):
        train_lora(tiny("llama"), proc, records(4), LoraTrainConfig(), tmp_path / "a")
    with pytest.raises(ValueError, match=r"4 of 4 records have an image.*text-only tokenizer"):
        train_lora(
            tiny("gemma3-vlm"), char_tokenizer(), records(4), LoraTrainConfig(), tmp_path / "b"
        )
    with pytest.raises(ValueError, match="unreadable"):
        encode(proc, dict(records(1)[0], image=str(tmp_path / "missing.png")), 256)
    assert not (tmp_path / "a").exists()


def test_vlm_without_a_chat_template_uses_the_plain_fallback_with_the_image_token():

    plain = tiny_gemma3_processor()
    plain.chat_template = None
    plain.tokenizer.chat_template = None
    e = encode(plain, {"id": 0, "prompt": "Hue?", "response": "Red.", "image": red()}, 256)
    text = plain.tokenizer.decode(e.input_ids).replace(" ", "")
    expected = f"User:\n\n<start_of_image>{IMAGE * 4}<end_of_image>\n\n\nHue?\nAssistant:Red.<eos>"
    assert text == expected.replace(" ", "")
    supervised = [t for t in e.labels if t != IGNORE]
    assert plain.tokenizer.decode(supervised).replace(" ", "") == "Red.<eos>"
