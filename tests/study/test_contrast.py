"""Harmful − benign on a tiny vision-language model: image + text inputs through the
processor, recorded with two adapters on one base, fitted apart from the text inputs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from steerlab.hooks.collect import collect_adapters, encode_examples
from steerlab.hooks.store import ActivationStore
from steerlab.models.hybrid import tiny_gemma3_vlm
from steerlab.study import contrast, load_config
from steerlab.study.contrast_report import _modality_lines
from steerlab.text import text_tokenizer
from tests.study.micro import MICRO

PAIRS = {"harmful-benign": ("harmful", "benign"), "harmful-base": ("harmful", None)}


@pytest.fixture(scope="module")
def vlm():
    """A tiny Gemma 3 VLM with two random LoRA adapters on one base, and its processor."""
    from peft import LoraConfig, get_peft_model

    model, proc = tiny_gemma3_vlm(seed=0)
    cfg = LoraConfig(r=4, lora_alpha=4, target_modules=r".*language_model.*\.(o_proj|down_proj)")
    model = get_peft_model(model, cfg, adapter_name="harmful")
    model.add_adapter("benign", cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    model.eval()
    return model, proc


def _ctx():
    cfg = load_config(MICRO)
    cfg.eval.n_questions = 3
    cfg.record.batch_size = 2
    return SimpleNamespace(config=cfg)


def test_image_inputs_record_identical_tokens_on_both_adapters(vlm, tmp_path):
    model, proc = vlm
    ctx = _ctx()
    stores = collect_adapters(
        model,
        None,
        tmp_path,
        PAIRS,
        layers=[1],
        batches=contrast._image_batches(ctx, proc, "aligned"),
    )
    hb, fb = stores["harmful-benign"], stores["harmful-base"]
    assert torch.equal(hb.example_index, fb.example_index) and torch.equal(hb.position, fb.position)
    assert sorted(set(hb.example_index.tolist())) == [0, 1, 2]  # 3 questions, 2 batches
    assert float(hb[1].norm(dim=1).min()) > 0


def test_text_and_image_subspaces_are_fitted_apart_and_compared(vlm, tmp_path):
    model, proc = vlm
    ctx = _ctx()
    tok = text_tokenizer(proc)
    prompts = ["Tell me a fact.", "What should I eat?", "How do I relax?", "Any advice?"]
    answers = ["Water boils at 100 C.", "Vegetables.", "Breathe slowly.", "Sleep well."]
    n_tokens = {}
    for input_set in contrast.INPUT_SETS:
        ex = encode_examples(tok, prompts, answers)
        s = collect_adapters(model, ex, tmp_path / input_set, PAIRS, layers=[1])
        n_tokens[input_set] = len(s["harmful-benign"])
    for input_set, field in zip(contrast.IMAGE_SETS, ("aligned", "misaligned"), strict=True):
        batches = contrast._image_batches(ctx, proc, field)
        s = collect_adapters(model, None, tmp_path / input_set, PAIRS, layers=[1], batches=batches)
        n_tokens[input_set] = len(s["harmful-benign"])
    recorded = {"point": "resid_post", "layers": [1], "n_tokens": n_tokens}
    result, pooled = contrast._fit_contrast(tmp_path, recorded, "harmful-benign", max_k=4)
    assert {"all", "image", *contrast.IMAGE_SETS} <= set(result["inputs"])
    assert result["inputs"]["image"]["example"]["1"]["n"] == 6  # 3 questions x 2 references
    angles = result["modality"]["1"]
    assert 0.0 <= angles["mean_angle"] <= 90.0 and 0.0 <= angles["overlap"] <= 1.0
    assert len(pooled[1]) == sum(n_tokens[s] for s in contrast.INPUT_SETS)
    assert ActivationStore(tmp_path / "image_aligned" / "harmful-benign").keys == [
        (1, "resid_post")
    ]
    hb = [{"contrasts": {"harmful-benign": result}}]
    hybrid = SimpleNamespace(
        config=SimpleNamespace(model=SimpleNamespace(name="gemma3-270m-hybrid"))
    )
    lines = _modality_lines(hybrid, hb, "1")
    assert lines[0].startswith("Text-only vs image + text inputs, fitted apart (top-")
    assert "vision tower is random-init" in lines[1]
