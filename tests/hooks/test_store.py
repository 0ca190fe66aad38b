"""The activation store: what a disk recording writes and reads back."""

from __future__ import annotations

import json

import pytest
import torch

import steerlab
from steerlab.models.tiny import tiny, tiny_inputs


@pytest.fixture(scope="module")
def llama():
    return tiny("llama")


def test_empty_disk_recording_reads_back_empty(llama, tmp_path):
    lab = steerlab.attach(llama)
    with (
        torch.no_grad(),
        lab.record(layers=[0], positions="generated", to_disk=tmp_path / "s") as r,
    ):
        llama(**tiny_inputs(llama))
    assert r.activations[0].shape == (0, 64)
    assert len(r.store) == 0 and r.store.keys == [(0, "resid_post")]


def test_bf16_store_manifest_names_the_stored_dtype(tmp_path):
    model = tiny("llama", dtype=torch.bfloat16)
    lab = steerlab.attach(model)
    with torch.no_grad(), lab.record(layers=[0], to_disk=tmp_path / "s"):
        model(**tiny_inputs(model))
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["dtype"] == "bfloat16"
