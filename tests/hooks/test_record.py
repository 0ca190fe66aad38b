"""lab.record(): what is recorded, at which positions, and where it is stored."""

from __future__ import annotations

import os

import pytest
import torch

import steerlab
from steerlab.hooks.store import ActivationStore
from steerlab.models.tiny import tiny_inputs
from tests.conftest import inputs_for

POINTS = ("resid_pre", "resid_post", "attn_out", "mlp_out")


def _real(inputs):
    return inputs["attention_mask"].bool()


def test_recorded_resid_post_equals_output_hidden_states(family, model):
    inputs = inputs_for(model)
    lab = steerlab.attach(model)
    with torch.no_grad(), lab.record(layers="all", points=POINTS) as rec:
        out = model(**inputs, output_hidden_states=True)
    hs = out.hidden_states
    real = _real(inputs)
    for layer in range(lab.num_layers):
        torch.testing.assert_close(rec.activations[(layer, "resid_pre")], hs[layer][real])
        if layer < lab.num_layers - 1:
            torch.testing.assert_close(rec.activations[(layer, "resid_post")], hs[layer + 1][real])
    # HF applies the final norm to its last hidden state.
    last = lab.layout.final_norm(rec.activations[(lab.num_layers - 1, "resid_post")])
    torch.testing.assert_close(last, hs[-1][real], rtol=1e-4, atol=1e-5)


def test_resid_post_is_resid_pre_plus_attn_out_plus_mlp_out(family, model):
    lab = steerlab.attach(model)
    with torch.no_grad(), lab.record(layers="all", points=POINTS) as rec:
        model(**inputs_for(model))
    a = rec.activations
    for layer in range(lab.num_layers):
        total = a[(layer, "resid_pre")] + a[(layer, "attn_out")] + a[(layer, "mlp_out")]
        torch.testing.assert_close(total, a[(layer, "resid_post")], rtol=1e-5, atol=1e-5)


def test_metadata_gives_example_index_and_absolute_position(llama):
    inputs = tiny_inputs(llama, batch=3, seq=6, padding="left")
    lengths = inputs["attention_mask"].sum(1).tolist()
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0]) as rec:
        llama(**inputs)
        llama(**inputs)
    expected_ex = [i for i, n in enumerate(lengths * 2) for _ in range(n)]
    expected_pos = [p for n in lengths * 2 for p in range(n)]
    assert rec.example_index.tolist() == [e for e in expected_ex]
    assert rec.example_index.tolist()[-1] == 5  # second call continues the count
    assert rec.position.tolist() == expected_pos
    assert rec.activations[0].shape == (sum(lengths) * 2, 64)


@pytest.mark.parametrize("padding", ["left", "right"])
def test_last_is_the_last_real_token_under_left_and_right_padding(llama, padding):
    padded = tiny_inputs(llama, batch=2, seq=8, padding=padding)
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[1], positions="last") as rec:
        llama(**padded)
    assert rec.example_index.tolist() == [0, 1]
    for b in range(2):
        real = padded["attention_mask"][b].bool()
        alone = padded["input_ids"][b][real].unsqueeze(0)
        with torch.no_grad(), lab.record(layers=[1], positions="last") as solo:
            llama(input_ids=alone)
        torch.testing.assert_close(
            rec.activations[1][b], solo.activations[1][0], atol=1e-5, rtol=1e-5
        )
        assert rec.position[b] == int(real.sum()) - 1


def test_padding_is_never_recorded(llama):
    inputs = tiny_inputs(llama, batch=2, seq=8, padding="left")
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0]) as rec:
        llama(**inputs)
    assert rec.activations[0].shape[0] == int(inputs["attention_mask"].sum())


def test_prompt_response_and_mask_positions(llama):
    inputs = tiny_inputs(llama, batch=2, seq=8, padding="left")
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0]) as full:
        llama(**inputs)
    pos, ex = full.position, full.example_index
    starts = torch.tensor([2, 5])
    with torch.no_grad(), lab.record(layers=[0], positions="response", response_start=starts) as r:
        llama(**inputs)
    keep = pos >= starts[ex]
    torch.testing.assert_close(r.activations[0], full.activations[0][keep])
    assert r.position.tolist() == pos[keep].tolist()

    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, -2:] = True
    with torch.no_grad(), lab.record(layers=[0], positions=mask) as m:
        llama(**inputs)
    assert m.activations[0].shape[0] == 4
    with torch.no_grad(), lab.record(layers=[0], positions="prompt") as p:
        llama(**inputs)
    torch.testing.assert_close(p.activations[0], full.activations[0])


@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_records_each_token_exactly_once(llama, use_cache):
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lengths = inputs["attention_mask"].sum(1)
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[-1]) as rec:
        out = llama.generate(**inputs, max_new_tokens=5, do_sample=False, use_cache=use_cache)
    # generate() never runs the model on its final token: 4 of the 5 new tokens pass through.
    for b in range(2):
        positions = rec.position[rec.example_index == b].tolist()
        assert positions == list(range(int(lengths[b]) + 4))
    # Same activations as one forward over the full generated sequence.
    mask = torch.cat([inputs["attention_mask"], torch.ones(2, 4, dtype=torch.long)], 1)
    with torch.no_grad(), lab.record(layers=[-1]) as ref:
        llama(input_ids=out[:, :-1], attention_mask=mask)
    order = torch.argsort(rec.example_index * 1000 + rec.position)
    ref_order = torch.argsort(ref.example_index * 1000 + ref.position)
    torch.testing.assert_close(
        rec.activations[-1][order], ref.activations[-1][ref_order], atol=1e-4, rtol=1e-4
    )


def test_generated_positions_record_only_new_tokens(llama):
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lengths = inputs["attention_mask"].sum(1)
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0], positions="generated") as rec:
        llama.generate(**inputs, max_new_tokens=4, do_sample=False)
    for b in range(2):
        assert rec.position[rec.example_index == b].tolist() == [
            int(lengths[b]) + i for i in range(3)
        ]


def test_record_dtype_and_device_options(llama):
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0], dtype=torch.bfloat16) as rec:
        llama(**tiny_inputs(llama))
    assert rec.activations[0].dtype == torch.bfloat16
    assert rec.activations[0].device.type == "cpu"


def test_int_key_is_ambiguous_with_several_points(llama):
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0], points=("resid_pre", "mlp_out")) as rec:
        llama(**tiny_inputs(llama))
    with pytest.raises(KeyError, match=r"index with \(layer, point\)"):
        rec.activations[0]
    with pytest.raises(KeyError, match="was not recorded"):
        rec.activations[(1, "resid_pre")]


def test_bad_record_arguments_raise_clear_errors(llama):
    lab = steerlab.attach(llama)
    with pytest.raises(ValueError, match="unknown hook point 'resid_mid2'"):
        with lab.record(layers=[0], points=("resid_mid2",)):
            pass
    with pytest.raises(ValueError, match="positions='middle'"):
        with lab.record(layers=[0], positions="middle"):
            pass
    with pytest.raises(ValueError, match="needs response_start"):
        with lab.record(layers=[0], positions="response"):
            pass
    with pytest.raises(ValueError, match="bool tensor"):
        with lab.record(layers=[0], positions=torch.ones(2, 3)):
            pass


def test_streaming_to_disk_matches_memory_and_bounds_shards(llama, tmp_path):
    inputs = tiny_inputs(llama, batch=4, seq=16)
    lab = steerlab.attach(llama)
    with torch.no_grad(), lab.record(layers=[0, 2], points=("resid_post", "mlp_out")) as mem:
        for _ in range(5):
            llama(**inputs)
    shard_mb = 40_000 / 2**20  # ~40 kB shards: several per run
    with (
        torch.no_grad(),
        lab.record(
            layers=[0, 2],
            points=("resid_post", "mlp_out"),
            to_disk=tmp_path / "acts",
            shard_mb=shard_mb,
        ) as disk,
    ):
        for _ in range(5):
            llama(**inputs)
    store = ActivationStore(tmp_path / "acts")
    assert store.complete and len(store) == 5 * 64
    shards = sorted((tmp_path / "acts").glob("shard-*.safetensors"))
    assert len(shards) >= 3
    for key in mem.activations:
        torch.testing.assert_close(store.load(key), mem.activations[key])
        torch.testing.assert_close(disk.activations[key], mem.activations[key])
        chunks = list(store.iter_chunks(key, chunk_tokens=50))
        assert max(c.shape[0] for c in chunks) <= 50
        torch.testing.assert_close(torch.cat(chunks), mem.activations[key])
    assert store.example_index.tolist() == mem.example_index.tolist()
    assert store.position.tolist() == mem.position.tolist()
    with pytest.raises(FileExistsError, match="already holds"):
        with lab.record(layers=[0], to_disk=tmp_path / "acts"):
            pass


def test_interrupted_store_reads_only_complete_shards(llama, tmp_path, monkeypatch):
    import steerlab.hooks.store as store_mod

    inputs = tiny_inputs(llama, batch=4, seq=16)
    lab = steerlab.attach(llama)
    calls = {"n": 0}
    real_save = store_mod.save_file

    def crashing_save(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:
            with open(path, "wb") as fh:  # half-written bytes, then the "crash"
                fh.write(b"\x00" * 100)
            raise OSError("disk full")
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(store_mod, "save_file", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        with torch.no_grad(), lab.record(layers=[0], to_disk=tmp_path / "acts", shard_mb=1e-3):
            for _ in range(5):
                llama(**inputs)
    files = sorted(os.listdir(tmp_path / "acts"))
    assert files == ["shard-00000.safetensors", "shard-00001.safetensors"]
    store = ActivationStore(tmp_path / "acts")
    assert not store.complete
    assert len(store) == 2 * 64
    assert store.load(0).shape == (128, 64)
