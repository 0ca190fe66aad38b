"""attach(): finding the text decoder of every family, and what Lab exposes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import steerlab
from steerlab.models.tiny import VLM_FAMILIES, tiny
from tests.conftest import hooks_on


def test_attach_finds_the_text_decoder_of_every_family(family, model):
    lab = steerlab.attach(model)
    assert lab.num_layers == 3
    assert lab.d_model == 64
    assert lab.dtype == torch.float32
    assert lab.device.type == "cpu"
    assert set(lab.hook_points) == {"resid_pre", "resid_post", "attn_out", "mlp_out"}
    assert lab.hook_name(-1, "resid_post") == "blocks.2.hook_resid_post"
    text = model.get_input_embeddings()
    parent = lab.layout.blocks_path.rsplit(".", 1)[0]
    assert any(m is text for m in model.get_submodule(parent).modules())


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_vlm_vision_tower_has_more_blocks_but_is_never_chosen(family):
    model = tiny(family)
    lab = steerlab.attach(model)
    bigger = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.ModuleList) and len(m) > lab.num_layers
    ]
    assert bigger, "the tiny VLM's vision tower should have more blocks than its decoder"
    assert all(not name.startswith(lab.layout.blocks_path) for name in bigger)
    assert "vision" not in lab.layout.blocks_path and "visual" not in lab.layout.blocks_path


def test_family_is_the_text_model_type():
    assert steerlab.attach(tiny("llama")).family == "llama"
    assert steerlab.attach(tiny("gemma3-vlm")).family == "gemma3_text"


def test_negative_layer_counts_from_the_end(llama):
    lab = steerlab.attach(llama)
    assert lab.layout.layer_index(-1) == 2
    assert lab.layout.layer_index(-3) == 0


@pytest.mark.parametrize("layer", [3, -4, 40])
def test_layer_out_of_range_names_the_valid_range(llama, layer):
    lab = steerlab.attach(llama)
    with pytest.raises(IndexError, match=r"model has 3 decoder layers \(valid: -3\.\.2\)"):
        with lab.record(layers=[layer]):
            pass


def test_unknown_architecture_lists_candidate_module_lists():
    class Weird(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack_a = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
            self.stack_b = nn.ModuleList([nn.ReLU() for _ in range(3)])

        def forward(self, x):
            return x

    with pytest.raises(steerlab.ArchitectureError, match=r"stack_a \(2 x Linear\).*stack_b"):
        steerlab.attach(Weird())


def test_explicit_layers_path_is_used(llama):
    lab = steerlab.attach(llama, layers="model.layers")
    assert lab.num_layers == 3
    with pytest.raises(steerlab.ArchitectureError, match="not found"):
        steerlab.attach(llama, layers="model.nope")
    with pytest.raises(steerlab.ArchitectureError, match="expected a non-empty"):
        steerlab.attach(llama, layers="model.norm")


def test_attach_rejects_non_modules():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        steerlab.attach("llama")


def test_detach_and_context_manager_leave_no_hooks(llama):
    before = hooks_on(llama)
    vec = steerlab.SteeringVector({1: torch.randn(64)})
    with steerlab.attach(llama) as lab:
        lab_steer = lab.steer(vec, positions="prompt")
        lab_steer.__enter__()  # left open on purpose: detach must still clean up
        assert hooks_on(llama) > before
    assert hooks_on(llama) == before


@pytest.mark.parametrize("state", ["active", "disabled", "merged"])
def test_peft_model_decoder_found_in_every_adapter_state(state):
    from peft import LoraConfig, get_peft_model

    base = tiny("llama")
    ids = torch.randint(3, 200, (2, 6))
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear"))
    for p in peft_model.parameters():  # make the adapter non-trivial
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    model = peft_model.merge_and_unload() if state == "merged" else peft_model
    lab = steerlab.attach(model)
    assert lab.num_layers == 3 and lab.d_model == 64
    with lab.record(layers=[0, -1]) as rec:
        if state == "disabled":
            with model.disable_adapter():
                out = model(input_ids=ids, output_hidden_states=True)
        else:
            out = model(input_ids=ids, output_hidden_states=True)
    torch.testing.assert_close(rec.activations[0], out.hidden_states[1].reshape(-1, 64))


class _TupleBlock(nn.Module):
    """A block in the transformers-4 style: returns ``(hidden_states, extra)``."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.mlp = nn.Linear(d, d)

    def forward(self, hidden_states, attention_mask=None):
        return hidden_states + self.mlp(hidden_states), None


class _TupleModel(nn.Module):
    def __init__(self, d: int = 8, n: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, d)
        self.blocks = nn.ModuleList(_TupleBlock(d) for _ in range(n))

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None):
        h = self.embed(input_ids)
        for block in self.blocks:
            h, _ = block(h, attention_mask=attention_mask)
        return h


def test_blocks_returning_tuples_are_hooked():
    model = _TupleModel()
    ids = torch.randint(0, 20, (2, 5))
    lab = steerlab.attach(model)
    assert lab.layout.blocks_path == "blocks" and lab.d_model == 8
    vec = steerlab.SteeringVector({0: torch.ones(8)})
    with torch.no_grad(), lab.record(layers=[0, 1], points=("resid_pre", "resid_post")) as rec:
        plain = model(ids)
    with torch.no_grad(), lab.steer(vec, 2.0, layers=[0]), lab.record(layers=[0]) as steered:
        model(ids)
    torch.testing.assert_close(steered.activations[0], rec.activations[(0, "resid_post")] + 2.0)
    torch.testing.assert_close(rec.activations[(1, "resid_post")], plain.reshape(-1, 8))
