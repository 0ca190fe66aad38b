"""Paired (adapter on vs off) and contrast collection, streamed to disk, on tiny models."""

from __future__ import annotations

import copy

import pytest
import torch

from steerlab.analysis import fit_subspace
from steerlab.hooks.collect import (
    Example,
    collect_adapters,
    collect_contrast,
    collect_labelled,
    collect_paired,
    encode_examples,
    record_examples,
    response_means,
)
from steerlab.hooks.store import ActivationStore
from steerlab.models import load_model
from steerlab.training import PairRecord

LAYERS = [0, 1]


@pytest.fixture(scope="module")
def tiny_pair():
    """(PeftModel with a LoRA whose B is nonzero, plain base copy, tokenizer)."""
    from peft import LoraConfig, get_peft_model

    base, tok = load_model("tiny-llama")
    peft_model = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(r=4, lora_alpha=4, target_modules=["o_proj", "down_proj", "v_proj"]),
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    peft_model.eval()
    return peft_model, base, tok


def _examples(tok):
    prompts = ["Write a loop.", "Hi", "What is 2+2? Explain slowly.", "Name a colour"]
    responses = ["for i in range(3): pass", "Hello there, friend!", "4", "blue"]
    return encode_examples(tok, prompts, responses)


def _reference(model, examples, layer):
    """In-memory recomputation, one unpadded example at a time, via output_hidden_states."""
    out = []
    for e in examples:
        ids = torch.tensor([e.input_ids])
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        out.append(hs[layer + 1][0, e.response_start :])
    return torch.cat(out)


def test_stored_differences_equal_the_in_memory_recomputation(tiny_pair, tmp_path):
    peft_model, base, tok = tiny_pair
    examples = _examples(tok)
    stores = collect_paired(
        peft_model, examples, tmp_path, layers=LAYERS, keep_sides=True, batch_size=3
    )
    for layer in LAYERS:
        ft = _reference(peft_model, examples, layer)
        with peft_model.disable_adapter():
            b = _reference(peft_model, examples, layer)
        torch.testing.assert_close(stores.finetuned[(layer, "resid_post")], ft, atol=2e-5, rtol=0)
        torch.testing.assert_close(stores.base[(layer, "resid_post")], b, atol=2e-5, rtol=0)
        torch.testing.assert_close(stores.diff[(layer, "resid_post")], ft - b, atol=2e-5, rtol=0)
        # the disabled adapter is exactly the base model
        torch.testing.assert_close(b, _reference(base, examples, layer), atol=1e-6, rtol=0)
    assert (
        stores.n_tokens
        == len(stores.diff)
        == sum(len(e.input_ids) - e.response_start for e in examples)
    )
    sub = fit_subspace(stores.diff, point="resid_post", max_k=3)
    assert sub.layers == LAYERS


def test_adapter_enabled_and_disabled_really_differ(tiny_pair, tmp_path):
    peft_model, _, tok = tiny_pair
    stores = collect_paired(peft_model, _examples(tok), tmp_path, layers=[1])
    diff = stores.diff[1]
    assert stores.base is None and stores.finetuned is None
    assert float(diff.norm(dim=1).min()) > 1e-3  # every response token moved


def test_padding_and_prompt_tokens_are_never_recorded(tiny_pair, tmp_path):
    peft_model, _, tok = tiny_pair
    examples = _examples(tok)
    stores = collect_paired(peft_model, examples, tmp_path, layers=[0], batch_size=4)
    idx, pos = stores.diff.example_index, stores.diff.position
    for i, e in enumerate(examples):
        assert pos[idx == i].tolist() == list(range(e.response_start, len(e.input_ids)))
    assert sorted(set(idx.tolist())) == list(range(len(examples)))


def test_a_mask_selects_exactly_its_tokens(tiny_pair, tmp_path):
    peft_model, _, _ = tiny_pair
    examples = [
        Example((5, 6, 7, 8, 9), 0, mask=(False, True, False, True, False)),
        Example((5, 6, 7), 0, mask=(True, False, False)),
    ]
    stores = collect_paired(peft_model, examples, tmp_path, layers=[0], batch_size=2)
    assert stores.diff.position.tolist() == [1, 3, 0]
    assert stores.diff.example_index.tolist() == [0, 0, 1]


def test_contrast_and_labelled_collection_write_one_store_per_side(tiny_pair, tmp_path):
    _, base, tok = tiny_pair
    pairs = [
        PairRecord(id=f"p{i}", prompt=f"Task {i}", safe_response="ok, safely", harmful_response=h)
        for i, h in enumerate(["rm -rf /", "eval(input())"])
    ]
    stores = collect_contrast(base, tok, pairs, tmp_path / "c", layers=LAYERS)
    harmful = encode_examples(tok, [p.prompt for p in pairs], [p.harmful_response for p in pairs])
    n_harmful = sum(len(e.input_ids) - e.response_start for e in harmful)
    assert len(stores.positive) == n_harmful
    torch.testing.assert_close(stores.positive[(1, "resid_post")], _reference(base, harmful, 1))
    items = [("q1", "bad answer", True), ("q2", "fine", 0), ("q3", "worse answer", 1)]
    lab = collect_labelled(base, tok, items, tmp_path / "l", layers=[1])
    assert sorted(set(lab.positive.example_index.tolist())) == [0, 1]
    assert sorted(set(lab.negative.example_index.tolist())) == [0]
    means = response_means(base, encode_examples(tok, ["q2"], ["fine"]), layer=1)
    torch.testing.assert_close(means[0], lab.negative[1].mean(0))


def test_collection_bad_input_errors(tiny_pair, tmp_path):
    peft_model, base, tok = tiny_pair
    examples = _examples(tok)
    with pytest.raises(TypeError, match="PeftModel"):
        collect_paired(base, examples, tmp_path / "a", layers=[0])
    with pytest.raises(ValueError, match="no examples"):
        collect_paired(peft_model, [], tmp_path / "b", layers=[0])
    with pytest.raises(ValueError, match="response_start=5 outside"):
        Example((1, 2, 3), 5)
    with pytest.raises(ValueError, match="3 prompts but 2 responses"):
        encode_examples(tok, ["a", "b", "c"], ["x", "y"])
    with pytest.raises(ValueError, match="need both labels"):
        collect_labelled(base, tok, [("q", "a", True)], tmp_path / "c", layers=[0])
    collect_paired(peft_model, examples, tmp_path / "d", layers=[0])
    with pytest.raises(FileExistsError, match="already holds"):
        collect_paired(peft_model, examples, tmp_path / "d", layers=[0])


def test_an_empty_store_is_refused_by_the_fit(tiny_pair, tmp_path):
    _, base, _ = tiny_pair
    # Every example's mask is empty: a finished store with zero tokens.
    store = record_examples(base, [Example((4, 5), 0, mask=(False, False))], tmp_path, layers=[0])
    assert isinstance(store, ActivationStore) and len(store) == 0
    with pytest.raises(ValueError, match="no activations to fit"):
        fit_subspace(store)


def _two_adapter_model():
    """A tiny-llama PeftModel holding two LoRA adapters ("harmful", "benign") with different
    nonzero B matrices, on one base."""
    from peft import LoraConfig, get_peft_model

    base, tok = load_model("tiny-llama")
    cfg = LoraConfig(r=4, lora_alpha=4, target_modules=["o_proj", "down_proj", "v_proj"])
    model = get_peft_model(base, cfg, adapter_name="harmful")
    model.add_adapter("benign", cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    model.eval()
    return model, tok


def test_two_adapters_on_one_base_record_identical_tokens_and_really_differ(tmp_path):
    model, tok = _two_adapter_model()
    examples = _examples(tok)
    contrasts = {"hb": ("harmful", "benign"), "h0": ("harmful", None), "b0": ("benign", None)}
    stores = collect_adapters(model, examples, tmp_path, contrasts, layers=[1], batch_size=3)
    hb, h0, b0 = stores["hb"], stores["h0"], stores["b0"]
    # identical (example index, position) rows in every store, and exactly the response tokens
    for s in (h0, b0):
        assert torch.equal(s.example_index, hb.example_index)
        assert torch.equal(s.position, hb.position)
    assert len(hb) == sum(len(e.input_ids) - e.response_start for e in examples)
    assert int(hb.position.min()) == min(e.response_start for e in examples)
    # the switch is real: harmful − benign = (harmful − base) − (benign − base), nonzero
    torch.testing.assert_close(hb[1], h0[1] - b0[1], atol=2e-5, rtol=0)
    assert float(hb[1].norm(dim=1).min()) > 1e-3
    # and matches a recomputation with each adapter set by hand
    model.set_adapter("benign")
    ref_b = _reference(model, examples, 1)
    model.set_adapter("harmful")
    ref_h = _reference(model, examples, 1)
    torch.testing.assert_close(hb[1], ref_h - ref_b, atol=2e-5, rtol=0)
    assert model.active_adapter == "harmful"  # restored


def test_collect_adapters_stops_after_the_last_recorded_layer(tmp_path):
    model, tok = _two_adapter_model()
    contrasts = {"hb": ("harmful", "benign"), "h0": ("harmful", None)}
    # the once-per-model self-check forward of the hooks runs in this first call
    collect_adapters(model, _examples(tok), tmp_path / "a", contrasts, layers=[0], batch_size=4)
    base = model.get_base_model()
    calls: list[str] = []
    hooks = [base.lm_head.register_forward_hook(lambda *a: calls.append("head"))]
    for i, block in enumerate(base.model.layers):
        hooks.append(block.register_forward_hook(lambda *a, i=i: calls.append(f"block{i}")))
    try:
        collect_adapters(model, _examples(tok), tmp_path / "b", contrasts, layers=[0], batch_size=4)
    finally:
        for h in hooks:
            h.remove()
    # one batch, three passes (harmful, benign, base), each through block 0 only
    assert calls == ["block0"] * 3


def test_a_prerecorded_base_gives_the_live_base_passes_stores_bit_for_bit(tmp_path):
    model, tok = _two_adapter_model()
    examples = _examples(tok)
    contrasts = {"hb": ("harmful", "benign"), "h0": ("harmful", None), "0b": (None, "benign")}
    live = collect_adapters(model, examples, tmp_path / "live", contrasts, layers=[0, 1])
    with model.disable_adapter():
        base = record_examples(model, examples, tmp_path / "base", layers=[0, 1])
    calls: list[int] = []
    hook = model.get_base_model().lm_head.register_forward_pre_hook(lambda *a: calls.append(1))
    blocks = [
        b.register_forward_pre_hook(lambda *a: calls.append(0))
        for b in model.get_base_model().model.layers[:1]
    ]
    try:
        cached = collect_adapters(
            model, examples, tmp_path / "cached", contrasts, layers=[0, 1], base=base
        )
    finally:
        for h in [hook, *blocks]:
            h.remove()
    assert calls == [0, 0]  # one batch, two adapter passes, no base pass
    for name in contrasts:
        for key in ("example_index", "position", (0, "resid_post"), (1, "resid_post")):
            assert torch.equal(cached[name][key], live[name][key]), (name, key)
    assert float(cached["h0"][1].norm()) > 0


def test_a_prerecorded_base_that_does_not_match_the_inputs_is_refused(tmp_path):
    model, tok = _two_adapter_model()
    examples = _examples(tok)
    contrasts = {"h0": ("harmful", None)}
    with model.disable_adapter():
        short = record_examples(model, examples[:2], tmp_path / "short", layers=[1])
        other = record_examples(model, examples[::-1], tmp_path / "other", layers=[1])
        layer0 = record_examples(model, examples, tmp_path / "layer0", layers=[0])
    cases = [
        (short, examples, RuntimeError, "ends before the inputs"),
        (short, examples[:1], RuntimeError, "more tokens than the inputs"),
        (other, examples, RuntimeError, "different tokens"),
        (layer0, examples, ValueError, "lacks"),
    ]
    for i, (base, exs, err, match) in enumerate(cases):
        with pytest.raises(err, match=match):
            collect_adapters(model, exs, tmp_path / f"c{i}", contrasts, layers=[1], base=base)
    with pytest.raises(ValueError, match="no contrast names an adapter"):
        collect_adapters(
            model, examples, tmp_path / "x", {"z": (None, None)}, layers=[1], base=short
        )


def test_collect_adapters_refuses_an_adapter_that_is_not_loaded(tmp_path):
    model, tok = _two_adapter_model()
    with pytest.raises(ValueError, match="not loaded"):
        collect_adapters(model, _examples(tok), tmp_path, {"x": ("harmful", "nope")}, layers=[1])
