"""Early-stopped forwards (``Lab.stop_early``): bitwise equal recordings, head never run."""

from __future__ import annotations

import pytest
import torch

from steerlab.hooks import StoppedEarly, attach
from steerlab.hooks.early_stop import needed_layer
from steerlab.models.tiny import tiny


@pytest.fixture(scope="module")
def model():
    return tiny("llama", seed=0).float().eval()


def _inputs(model, batch=3, seq=9):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, -3:] = 0  # one right-padded example
    return {"input_ids": ids, "attention_mask": mask}


def _record(lab, model, inputs, layers, points, *, stop):
    with torch.no_grad(), lab.record(layers, points) as rec:
        if stop:
            with lab.stop_early():
                out = model(**inputs)
        else:
            out = model(**inputs)
    return rec, out


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("layers", [[0], [0, 1], [1], "all"])
@pytest.mark.parametrize("points", ["resid_post", ("resid_pre", "attn_out", "mlp_out")])
def test_bitwise_equal_to_full_forward(model, layers, points):
    inputs = _inputs(model)
    with attach(model) as lab:
        full, out_full = _record(lab, model, inputs, layers, points, stop=False)
        early, out_early = _record(lab, model, inputs, layers, points, stop=True)
    assert out_full.logits is not None
    assert isinstance(out_early, StoppedEarly)
    assert full.keys == early.keys and len(full.keys) > 0
    for key in full.keys:
        a, b = full.activations[key], early.activations[key]
        assert a.dtype == torch.float32 and a.shape == b.shape and a.shape[0] > 0
        assert torch.equal(a, b), key
    assert torch.equal(full.example_index, early.example_index)
    assert torch.equal(full.position, early.position)


def test_head_never_called_and_later_blocks_skipped(model):
    calls: list[str] = []
    hooks = [model.lm_head.register_forward_hook(lambda *a: calls.append("head"))]
    layers = model.model.layers
    for i, block in enumerate(layers):
        hooks.append(block.register_forward_hook(lambda *a, i=i: calls.append(f"block{i}")))
    try:
        with attach(model) as lab:
            _, out = _record(lab, model, _inputs(model), [0], "resid_post", stop=True)
            assert out.last_layer == 0
            assert calls == ["block0"]
            calls.clear()
            last = len(layers) - 1
            _, out = _record(lab, model, _inputs(model), [last], "resid_post", stop=True)
            assert out.last_layer == last
            assert "head" not in calls and calls[-1] == f"block{last}"
    finally:
        for h in hooks:
            h.remove()


def test_hooks_removed_and_model_restored(model):
    before = _hook_count(model)
    inputs = _inputs(model)
    with torch.no_grad():
        ref = model(**inputs).logits
    with attach(model) as lab:
        _record(lab, model, inputs, [0], "resid_post", stop=True)
        assert "forward" not in model.__dict__
        assert _hook_count(model) == before
        with torch.no_grad():
            assert torch.equal(model(**inputs).logits, ref)
    assert _hook_count(model) == before


def test_error_inside_block_still_restores(model):
    before = _hook_count(model)
    with attach(model) as lab, pytest.raises(KeyError), lab.stop_early():
        raise KeyError("boom")
    assert "forward" not in model.__dict__ and _hook_count(model) == before


def test_refused_inside_generate(model):
    ids = _inputs(model)["input_ids"][:1]
    with attach(model) as lab, lab.record([0]), lab.stop_early():
        with pytest.raises(RuntimeError, match="generate"):
            model.generate(input_ids=ids, max_new_tokens=2, do_sample=False)
    with torch.no_grad():  # the model still generates afterwards
        out = model.generate(input_ids=ids, max_new_tokens=2, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 2)


def test_refused_with_a_cache(model):
    from transformers import DynamicCache

    inputs = _inputs(model)
    cache = DynamicCache()
    with attach(model) as lab, lab.record([0]), lab.stop_early():
        with pytest.raises(ValueError, match="past_key_values"):
            model(**inputs, past_key_values=cache)
    assert cache.get_seq_length() == 0  # nothing written into the caller's cache


def test_needed_layer_follows_active_hooks(model):
    with attach(model) as lab:
        assert needed_layer(lab) == -1
        with lab.record([1], "attn_out"):
            assert needed_layer(lab) == 1
            with lab.record([0]):
                assert needed_layer(lab) == 1
        assert needed_layer(lab) == -1


def test_nested_stop_early_is_a_noop(model):
    inputs = _inputs(model)
    with attach(model) as lab:
        full, _ = _record(lab, model, inputs, [1], "resid_post", stop=False)
        with lab.stop_early(), lab.stop_early(), torch.no_grad(), lab.record([1]) as rec:
            out = model(**inputs)
        assert "forward" not in model.__dict__
    assert isinstance(out, StoppedEarly)
    assert torch.equal(rec.activations[1], full.activations[1])
