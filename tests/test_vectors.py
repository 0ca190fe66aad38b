"""SteeringVector and Subspace: arithmetic, validation, safetensors and GGUF round-trips."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import steerlab
from steerlab import SteeringVector, Subspace


def test_steering_vector_arithmetic():
    a = SteeringVector({0: torch.ones(4), 2: torch.full((4,), 2.0)}, method="mean_diff")
    b = SteeringVector({2: torch.ones(4), 3: torch.ones(4)})
    s = a + b
    assert s.layers == [0, 2, 3]
    assert torch.equal(s.directions[2], torch.full((4,), 3.0))
    assert torch.equal((a - a).directions[0], torch.zeros(4))
    assert torch.equal((3 * a).directions[2], torch.full((4,), 6.0))
    assert torch.equal((a * 3).directions[2], (3 * a).directions[2])
    assert torch.equal((-a).directions[0], -torch.ones(4))
    assert s.metadata["method"] == "mean_diff"
    n = a.normalize()
    assert torch.allclose(n.directions[2].norm(), torch.tensor(1.0))
    assert n.metadata["normalization"] == "unit"
    assert a.to(torch.float16).directions[0].dtype == torch.float16


def test_vectors_validate_their_inputs():
    with pytest.raises(ValueError, match="non-empty dict"):
        SteeringVector({})
    with pytest.raises(ValueError, match=r"shape \[d_model\]"):
        SteeringVector({0: torch.ones(2, 3)})
    with pytest.raises(ValueError, match="different d_model"):
        SteeringVector({0: torch.ones(3), 1: torch.ones(4)})
    with pytest.raises(ValueError, match="NaN or inf"):
        SteeringVector({0: torch.tensor([1.0, float("inf")])})
    with pytest.raises(TypeError, match="int layer indices"):
        SteeringVector({"0": torch.ones(3)})
    with pytest.raises(ValueError, match="not orthonormal"):
        Subspace({0: torch.ones(2, 4)})
    with pytest.raises(ValueError, match="zero direction"):
        SteeringVector({0: torch.zeros(3)}).normalize()
    with pytest.raises(ValueError, match="rank deficient"):
        Subspace.from_vectors({0: torch.ones(2, 4)})


def test_subspace_span_difference_and_top_k():
    e = torch.eye(6)
    a = Subspace({1: e[:2]}, explained_variance_ratio={1: torch.tensor([0.6, 0.3])})
    b = Subspace({1: e[1:4]})
    span = a + b
    assert span.k == {1: 4}
    proj = span.bases[1].T @ span.bases[1]
    torch.testing.assert_close(
        proj, torch.diag(torch.tensor([1.0, 1, 1, 1, 0, 0])), atol=1e-6, rtol=0
    )
    diff = a - b
    assert diff.k == {1: 1}
    torch.testing.assert_close(diff.bases[1].abs(), e[:1])
    top = a.top(1)
    assert top.k == {1: 1} and torch.equal(top.explained_variance_ratio[1], torch.tensor([0.6]))
    assert torch.equal((-2 * a).bases[1], -a.bases[1])
    with pytest.raises(ValueError, match="0 \\* Subspace"):
        0 * a
    half = a.to(torch.bfloat16).normalize()
    gram = half.bases[1].float() @ half.bases[1].float().T
    torch.testing.assert_close(gram, torch.eye(2), atol=1e-2, rtol=0)


def test_save_load_round_trip_keeps_tensors_and_metadata(tmp_path):
    vec = SteeringVector(
        {3: torch.randn(16), -1: torch.randn(16)},
        model="tiny-llama",
        family="llama",
        hook_point="resid_post",
        method="mean_diff",
        dataset_fingerprint="abc123",
    )
    path = vec.save(tmp_path / "v.safetensors")
    back = steerlab.load(path)
    assert isinstance(back, SteeringVector)
    assert back.layers == vec.layers
    for layer in vec.layers:
        assert torch.equal(back.directions[layer], vec.directions[layer])
    for key in ("model", "family", "hook_point", "method", "dataset_fingerprint"):
        assert back.metadata[key] == vec.metadata[key]
    assert back.metadata["steerlab_version"] == steerlab.__version__
    assert back.metadata["created"].endswith("Z")
    assert back.d_model == 16 and back.layers == [-1, 3]

    sub = Subspace.from_vectors({2: torch.randn(3, 16)}, method="pca")
    sub = Subspace(
        sub.bases, {2: torch.tensor([0.5, 0.2, 0.1])}, {2: torch.randn(16)}, method="pca"
    )
    back = steerlab.load(sub.save(tmp_path / "s.safetensors"))
    assert isinstance(back, Subspace)
    assert torch.equal(back.bases[2], sub.bases[2])
    assert torch.equal(back.explained_variance_ratio[2], sub.explained_variance_ratio[2])
    assert torch.equal(back.mean[2], sub.mean[2])
    assert not list(tmp_path.glob("*.tmp"))


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    pt = tmp_path / "vec.pt"
    torch.save({"direction.0": torch.ones(4)}, pt)
    with pytest.raises(ValueError, match="never unpickles"):
        steerlab.load(pt)
    pk = tmp_path / "vec.safetensors"
    pk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="pickle"):
        steerlab.load(pk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, str(foreign))
    with pytest.raises(ValueError, match="not a steerlab vector file"):
        steerlab.load(foreign)
    with pytest.raises(FileNotFoundError):
        steerlab.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"must end in \.safetensors"):
        SteeringVector({0: torch.ones(4)}).save(tmp_path / "v.pt")


def test_load_rejects_nan_tensors(tmp_path):
    path = SteeringVector({0: torch.ones(4)}).save(tmp_path / "v.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file({"direction.0": torch.tensor([1.0, float("nan"), 0, 0])}, str(path), metadata=meta)
    with pytest.raises(ValueError, match="NaN"):
        steerlab.load(path)


def test_attach_checks_d_model_of_loaded_vectors(tmp_path, llama):
    path = SteeringVector({0: torch.ones(32)}).save(tmp_path / "v.safetensors")
    lab = steerlab.attach(llama)
    with pytest.raises(ValueError, match="d_model=32"), lab.steer(steerlab.load(path)):
        pass


def test_gguf_control_vector_round_trip(tmp_path):
    import gguf

    vec = SteeringVector({1: torch.randn(64), 5: torch.randn(64)}, family="llama")
    path = vec.to_gguf(tmp_path / "control.gguf")
    reader = gguf.GGUFReader(str(path))
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
    count = reader.fields["controlvector.layer_count"]
    assert int(count.parts[count.data[0]][0]) == 2
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {"direction.1", "direction.5"}
    for layer in (1, 5):
        t = tensors[f"direction.{layer}"]
        assert int(t.shape[0]) == 64  # n_embd
        np.testing.assert_array_equal(np.asarray(t.data), vec.directions[layer].numpy())
    with pytest.raises(ValueError, match="layer 0"):
        SteeringVector({0: torch.randn(64)}).to_gguf(tmp_path / "bad.gguf")
