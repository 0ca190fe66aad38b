"""HookName: one key for recordings, stores and vectors, printed the TransformerLens way."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open

import steerlab
from steerlab.hooks import HOOK_POINTS, ActivationStore
from steerlab.hooks.names import HookName
from steerlab.models.tiny import tiny_inputs
from steerlab.vectors import SteeringVector, Subspace

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("legacy", DATA / "make_legacy_fixtures.py")
legacy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(legacy)


# -- parsing and printing ---------------------------------------------------------------
@given(st.integers(0, 200), st.sampled_from(HOOK_POINTS))
def test_every_form_parses_to_the_same_name_and_prints_the_transformer_lens_form(layer, point):
    name = HookName(layer, point)
    assert str(name) == f"blocks.{layer}.hook_{point}"
    forms = [str(name), f"L{layer}.{point}", (layer, point), [layer, point], name]
    for form in forms:
        assert HookName.parse(form) == name
        assert type(HookName.parse(form)) is HookName
    assert HookName.parse(layer, point=point) == name
    assert HookName.parse(str(name)).layer == layer and HookName.parse(str(name)).point == point


@given(st.integers(0, 200), st.sampled_from(HOOK_POINTS))
def test_a_name_is_interchangeable_with_its_tuple_as_a_key(layer, point):
    name = HookName(layer, point)
    assert name == (layer, point) and hash(name) == hash((layer, point))
    assert {(layer, point): 1}[name] == 1 and {name: 2}[(layer, point)] == 2
    assert json.loads(json.dumps(name)) == [layer, point]


def test_a_bare_layer_gets_resid_post_unless_told_otherwise():
    assert HookName.parse(6) == HookName(6) == (6, "resid_post")
    assert HookName.parse(6, point="mlp_out") == (6, "mlp_out")
    with pytest.raises(ValueError, match=r"bare layer 6 needs a point: give \(layer, point\)"):
        HookName.parse(6, point=None)


def test_negative_layers_are_kept_as_given_and_round_trip():
    name = HookName.parse("blocks.-1.hook_attn_out")
    assert name == (-1, "attn_out") and str(name) == "blocks.-1.hook_attn_out"
    assert HookName.parse("L-2.resid_pre") == (-2, "resid_pre")


def test_malformed_names_say_what_was_expected_and_what_was_given():
    with pytest.raises(ValueError) as err:
        HookName.parse("blocks.x.hook_resid_post")
    assert "'blocks.x.hook_resid_post'" in str(err.value)
    assert "layer 'x' is not an integer" in str(err.value)
    assert "blocks.{layer}.hook_{point}" in str(err.value)
    with pytest.raises(ValueError) as err:
        HookName.parse("blocks.6.hook_resid_middle")
    assert "unknown hook point 'resid_middle'" in str(err.value)
    assert str(HOOK_POINTS) in str(err.value)
    with pytest.raises(ValueError, match="unknown hook point 'resid_middle'"):
        HookName(6, "resid_middle")
    with pytest.raises(ValueError, match="'resid_post' is not recognised: expected 'blocks"):
        HookName.parse("resid_post")
    with pytest.raises(ValueError, match=r"expected a \(layer, point\) pair, got \(1, 2, 3\)"):
        HookName.parse((1, 2, 3))
    with pytest.raises(TypeError, match=r"expected a hook name: .*got float 1\.5"):
        HookName.parse(1.5)
    with pytest.raises(TypeError, match="layer must be an int, got True"):
        HookName(True)


# -- recordings ---------------------------------------------------------------------------
def test_recording_is_indexed_by_every_form_of_a_name(llama, tmp_path):
    lab = steerlab.attach(llama)
    for to_disk in (None, tmp_path / "store"):
        with torch.no_grad(), lab.record(layers=[0, -1], to_disk=to_disk) as rec:
            llama(**tiny_inputs(llama))
        assert rec.keys == [HookName(0), HookName(2)]
        assert all(type(k) is HookName for k in rec.activations)
        last = rec.activations[HookName(2, "resid_post")]
        assert last.shape[1] == 64
        forms = [2, -1, (2, "resid_post"), (-1, "resid_post"), "blocks.2.hook_resid_post"]
        for form in [*forms, "blocks.-1.hook_resid_post", "L2.resid_post"]:
            assert torch.equal(rec.activations[form], last), form
        assert not torch.equal(rec.activations["blocks.0.hook_resid_post"], last)
        with pytest.raises(KeyError, match=r"blocks\.1\.hook_resid_post was not recorded"):
            rec.activations["blocks.1.hook_resid_post"]
        with pytest.raises(KeyError, match="unknown hook point 'resid'"):
            rec.activations["blocks.2.hook_resid"]


def test_a_name_is_parsed_once_per_context_not_per_forward(llama, monkeypatch):
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers="all") as rec:
        calls = []
        monkeypatch.setattr(HookName, "parse", lambda *a, **k: calls.append(a))
        monkeypatch.setattr(HookName, "__new__", lambda *a, **k: calls.append(a))
        for _ in range(3):
            llama(**tiny_inputs(llama))
        monkeypatch.undo()
    assert calls == [] and rec.activations[0].shape[0] > 0


def test_stores_are_written_with_transformer_lens_names(llama, tmp_path):
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[1], points=("attn_out",), to_disk=tmp_path):
        llama(**tiny_inputs(llama))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["keys"] == ["blocks.1.hook_attn_out"]
    with safe_open(str(tmp_path / "shard-00000.safetensors"), "pt") as f:
        assert set(f.keys()) == {"blocks.1.hook_attn_out", "example_index", "position"}
    assert ActivationStore(tmp_path).keys == [HookName(1, "attn_out")]


# -- files written before HookName --------------------------------------------------------
@pytest.mark.parametrize("name", ["legacy_store", "legacy_store_interrupted"])
def test_stores_written_by_older_steerlab_still_load(name, tmp_path):
    store = ActivationStore(shutil.copytree(DATA / name, tmp_path / name))
    expected = legacy.expected_store()
    assert sorted(store.keys) == sorted(legacy.KEYS)
    assert all(type(k) is HookName for k in store.keys)
    assert len(store) == 15 and store.d_model == 8 and store.complete == (name == "legacy_store")
    for layer, point in legacy.KEYS:
        want = expected[(layer, point)]
        for form in [(layer, point), HookName(layer, point), f"L{layer}.{point}"]:
            assert torch.equal(store.load(form), want)
        assert torch.equal(store[f"blocks.{layer}.hook_{point}"], want)
        chunks = list(store.iter_chunks((layer, point), chunk_tokens=4))
        assert [len(c) for c in chunks] == [4, 4, 2, 4, 1]  # shards of 10 and 5 tokens
    assert torch.equal(store[0], expected[(0, "resid_post")])  # one point at layer 0
    assert torch.equal(store.example_index, expected["example_index"])
    assert torch.equal(store.position, expected["position"])
    with pytest.raises(KeyError, match="layer 2 is ambiguous"):
        store[2]
    with pytest.raises(KeyError, match="does not know the model's depth"):
        store[(-1, "resid_post")]
    with pytest.raises(KeyError, match=r"blocks\.1\.hook_resid_post not recorded"):
        store["blocks.1.hook_resid_post"]


def test_vector_files_written_by_older_steerlab_still_load(tmp_path):
    vec_spec, sub_spec = legacy.expected_vectors()
    vec = steerlab.load(DATA / "legacy_vector.safetensors")
    assert isinstance(vec, SteeringVector) and vec.layers == [-1, 3]
    for layer, want in vec_spec["directions"].items():
        assert torch.equal(vec.directions[layer], want)
    assert vec.hook_point == "resid_post" and vec.metadata["method"] == "mean_diff"
    assert vec.hook_names == [HookName(-1), HookName(3)]
    sub = steerlab.load(DATA / "legacy_subspace.safetensors")
    assert isinstance(sub, Subspace) and sub.layers == [1, 2]
    for field in ("bases", "explained_variance_ratio", "mean"):
        got = getattr(sub, field)
        assert got.keys() == sub_spec[field].keys()
        assert all(torch.equal(got[k], v) for k, v in sub_spec[field].items())
    assert sub.hook_point == "mlp_out" and sub.hook_names == [(1, "mlp_out"), (2, "mlp_out")]
    again = steerlab.load(vec.save(tmp_path / "v.safetensors"))
    assert again.metadata["hook_point"] == "resid_post"
    assert torch.equal(again.directions[3], vec.directions[3])


# -- vectors keyed by hook names ----------------------------------------------------------
def test_vectors_accept_hook_names_as_keys_and_take_their_point():
    t = torch.ones(8)
    vec = SteeringVector({"blocks.4.hook_mlp_out": t, (5, "mlp_out"): 2 * t})
    assert vec.layers == [4, 5] and vec.hook_point == "mlp_out"
    assert [str(n) for n in vec.hook_names] == ["blocks.4.hook_mlp_out", "blocks.5.hook_mlp_out"]
    assert SteeringVector({3: t}).hook_point == "resid_post"  # the default, as Lab uses
    sub = Subspace.from_vectors({HookName(2, "attn_out"): torch.eye(8)[:2]})
    assert sub.hook_point == "attn_out" and sub.layers == [2]
    with pytest.raises(ValueError, match=r"several hook points \['attn_out', 'mlp_out'\]"):
        SteeringVector({"blocks.1.hook_mlp_out": t, "blocks.2.hook_attn_out": t})
    with pytest.raises(ValueError, match="hook point 'mlp_out' but hook_point='resid_pre'"):
        SteeringVector({"blocks.1.hook_mlp_out": t}, hook_point="resid_pre")
    with pytest.raises(ValueError, match="unknown hook point 'resid'"):
        SteeringVector({1: t}, hook_point="resid")
    with pytest.raises(TypeError, match="int layer indices or hook names"):
        SteeringVector({"blocks.x.hook_mlp_out": t})


def test_steering_uses_the_typed_hook_point(llama):
    lab = steerlab.attach(llama)
    vec = SteeringVector({"blocks.1.hook_mlp_out": torch.randn(64)})
    with torch.no_grad(), lab.record(layers=[1], points=("mlp_out",)) as plain:
        llama(**tiny_inputs(llama))
    with torch.no_grad(), lab.steer(vec, 2.0), lab.record([1], ("mlp_out",)) as steered:
        llama(**tiny_inputs(llama))
    torch.testing.assert_close(
        steered.activations["blocks.1.hook_mlp_out"], plain.activations[1] + 2.0 * vec.directions[1]
    )
