"""Sequence tracking: which calls continue a sequence and which start a new one.

Regression tests for silent wrong results found in review: a forward whose input extends the
previous call's tokens is a *new* sequence; only a running generate() or the very cache object
of the previous call continues one."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DynamicCache

import steerlab
from steerlab.models.tiny import tiny, tiny_inputs


@pytest.fixture(scope="module")
def llama():
    return tiny("llama")


def _cache_kw(model) -> str:
    """transformers 5.24 renamed ``past_key_values`` to ``cache``; use whichever exists."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def test_forward_of_a_generated_transcript_is_a_new_sequence(llama):
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[1]) as rec:
        out = llama.generate(**inputs, max_new_tokens=4, do_sample=False)
        mask = torch.cat([inputs["attention_mask"], torch.ones(2, 4, dtype=torch.long)], 1)
        llama(input_ids=out, attention_mask=mask)
    real = int(inputs["attention_mask"].sum())
    assert rec.n_tokens == (real + 2 * 3) + (real + 2 * 4)
    assert sorted(set(rec.example_index.tolist())) == [0, 1, 2, 3]


def test_prefix_then_full_forward_records_both(llama):
    ids = torch.randint(3, 240, (2, 10))
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0], positions="last") as rec:
        llama(input_ids=ids[:, :4])
        llama(input_ids=ids)
    assert rec.example_index.tolist() == [0, 1, 2, 3]
    assert rec.position.tolist() == [3, 3, 9, 9]


def test_prompt_steering_of_a_longer_forward_is_independent_of_the_previous_call(llama):
    ids = torch.randint(3, 240, (1, 10))
    lab = steerlab.attach(llama)
    vec = steerlab.SteeringVector({1: torch.randn(64)})
    with torch.no_grad(), lab.steer(vec, 5.0, positions="prompt"):
        alone = llama(input_ids=ids).logits
        llama(input_ids=ids[:, :4])
        after_prefix = llama(input_ids=ids).logits
    assert torch.equal(alone, after_prefix)


def test_hand_written_decoding_loop_on_one_cache_continues(llama):
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0]) as rec:
        out = llama(**inputs, use_cache=True)
        mask, nxt = inputs["attention_mask"], out.logits[:, -1:].argmax(-1)
        for _ in range(2):
            mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
            out = llama(
                input_ids=nxt,
                attention_mask=mask,
                **{_cache_kw(llama): out.get("cache", out.get("past_key_values"))},
            )
            nxt = out.logits[:, -1:].argmax(-1)
    lengths = inputs["attention_mask"].sum(1).tolist()
    for b in range(2):
        assert rec.position[rec.example_index == b].tolist() == list(range(lengths[b] + 2))


def test_two_continuations_of_one_prefilled_cache_are_two_examples(llama):
    sys_ids = torch.randint(3, 240, (1, 5))
    pre = DynamicCache(config=llama.config)
    with torch.no_grad():
        llama(input_ids=sys_ids, use_cache=True, **{_cache_kw(llama): pre})
    lab = steerlab.attach(llama)
    a, b = torch.randint(3, 240, (1, 3)), torch.randint(3, 240, (1, 3))
    with torch.no_grad(), lab.record(layers=[0]) as rec:
        llama(input_ids=a, use_cache=True, **{_cache_kw(llama): copy.deepcopy(pre)})
        llama(input_ids=b, use_cache=True, **{_cache_kw(llama): copy.deepcopy(pre)})
    assert rec.example_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert rec.position.tolist() == [5, 6, 7, 5, 6, 7]


@pytest.mark.parametrize("padding", ["left", "right"])
def test_static_cache_generation_never_records_padding(llama, padding):
    inputs = tiny_inputs(llama, batch=2, seq=6, padding=padding)
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0], positions="prompt") as prompt:
        llama.generate(**inputs, max_new_tokens=3, do_sample=False, cache_implementation="static")
    assert prompt.n_tokens == int(inputs["attention_mask"].sum())
    with torch.no_grad(), lab.record(layers=[0], positions="last") as last:
        llama.generate(**inputs, max_new_tokens=3, do_sample=False, cache_implementation="static")
    assert last.position.tolist() == (inputs["attention_mask"].sum(1) - 1).tolist()


def test_generate_wrapper_is_removed_afterwards(llama):
    lab = steerlab.attach(llama)
    with (
        lab.record(layers=[0]),
        steerlab.attach(llama).steer(
            steerlab.SteeringVector({0: torch.randn(64)}), positions="prompt"
        ),
    ):
        assert "generate" in llama.__dict__
    assert "generate" not in llama.__dict__
    assert not hasattr(llama, "_steerlab_generate_watchers")


def test_aliased_layer_keys_are_rejected(llama):
    a = torch.randn(64)
    vec = steerlab.SteeringVector({-1: a}) - steerlab.SteeringVector({2: a})
    lab = steerlab.attach(llama)
    with pytest.raises(ValueError, match="two entries for layer 2"), lab.steer(vec):
        pass
    with pytest.raises(ValueError, match="non-negative"):
        steerlab.SteeringVector({-1: a}).to_gguf("/tmp/never-written.gguf")


def test_saved_vectors_always_load_whatever_their_header_length(tmp_path):
    for i in range(64):  # header lengths sweep every residue mod 256 in steps of 8
        path = steerlab.SteeringVector({1: torch.ones(8)}, model="m" * i).save(
            tmp_path / "v.safetensors"
        )
        assert steerlab.load(path).metadata["model"] == "m" * i


def test_low_precision_subspace_casts_keep_working():
    sub = steerlab.Subspace.from_vectors({0: torch.randn(4, 64)})
    assert sub.to(torch.bfloat16).bases[0].dtype == torch.bfloat16
    assert sub.to(torch.float16).normalize().k == {0: 4}


def test_clear_errors_for_malformed_arguments(llama):
    lab = steerlab.attach(llama)
    vec = steerlab.SteeringVector({0: torch.randn(64)})
    with pytest.raises(ValueError, match="layers is empty"), lab.record(layers=[]):
        pass
    with pytest.raises(TypeError, match="layer must be an int"), lab.record(layers=1.0):
        pass
    with pytest.raises(TypeError, match="one hook point name"), lab.steer(vec, point=("a", "b")):
        pass
    with (
        pytest.raises(TypeError, match="coefficient must be a number"),
        lab.steer(vec, coefficient=torch.ones(2)),
    ):
        pass
    with pytest.raises(ValueError, match="response_start must be a 1-D sequence of ints"):
        with lab.record(layers=[0], positions="response", response_start=[1.5]):
            pass
    with pytest.raises(ValueError, match='only used with positions="response"'):
        with lab.record(layers=[0], response_start=[1]):
            pass
    with pytest.raises(ValueError, match="no hook point given"), lab.record(layers=[0], points=()):
        pass
    import numpy as np

    with torch.no_grad(), lab.record(layers=[np.int64(1)]) as rec:
        llama(**tiny_inputs(llama))
    assert rec.activations[1].shape[1] == 64
    with pytest.raises(KeyError, match="layer int or a \\(layer, point\\) tuple"):
        rec.activations["resid_post"]


def test_saved_files_honour_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = steerlab.SteeringVector({1: torch.ones(8)}).save(tmp_path / "v.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
