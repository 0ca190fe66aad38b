"""The self-check: a hook point is offered only where it means what its name says."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import steerlab
from steerlab.hooks import selfcheck
from steerlab.models.tiny import tiny

D = 8


class _Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down_proj = nn.Linear(D, D)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.down_proj(torch.tanh(h))


class _Block(nn.Module):
    """A pre-norm block; ``scale`` != 1 scales the residual add (Granite-style)."""

    def __init__(self, scale: float = 1.0, streams: int = 0) -> None:
        super().__init__()
        self.self_attn = _Mlp()
        self.mlp = _Mlp()
        self.scale, self.streams = scale, streams

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.scale * self.self_attn(h)
        h = h + self.scale * self.mlp(h)
        return h


class _Toy(nn.Module):
    def __init__(self, n: int = 2, skip_long: bool = False, **block: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, D)
        self.layers = nn.ModuleList(_Block(**block) for _ in range(n))
        self.norm = nn.LayerNorm(D)
        self.skip_long = skip_long

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        h = self.embed(input_ids)
        for i, block in enumerate(self.layers):
            if self.skip_long and i == 1 and input_ids.shape[1] > 4:
                continue  # an early exit the 4-token self-check cannot see
            h = block(h)
        return self.norm(h)


class _Streams(_Toy):
    """Hyper-connection style: every block carries [batch, seq, 2, d_model]."""

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        h = self.embed(input_ids).unsqueeze(2).expand(-1, -1, 2, -1)
        for block in self.layers:
            h = block(h)
        return self.norm(h.sum(2))


def test_a_plain_pre_norm_model_offers_every_point_and_orthogonalization():
    lab = steerlab.attach(_Toy())
    assert lab.hook_points == ("resid_pre", "resid_post", "attn_out", "mlp_out")
    assert lab.layout.verdict().orthogonalize is None


def test_a_scaled_residual_add_refuses_attn_out_naming_architecture_point_and_reason():
    lab = steerlab.attach(_Toy(scale=0.5))
    assert lab.hook_points == ("resid_pre", "resid_post")
    with pytest.raises(steerlab.ArchitectureError, match=r"attn_out is not available for _Toy"):
        with lab.record(layers=[0], points="attn_out"):
            pass
    with pytest.raises(steerlab.ArchitectureError, match=r"resid_post != resid_pre \+ attn_out"):
        lab.steer(steerlab.SteeringVector({0: torch.ones(D)}), point="mlp_out").__enter__()
    with pytest.raises(steerlab.ArchitectureError, match="weight orthogonalization"):
        steerlab.orthogonalize_weights(_Toy(scale=0.5), steerlab.SteeringVector({0: torch.ones(D)}))


def test_several_residual_streams_per_token_refuse_every_point():
    lab = steerlab.attach(_Streams())
    assert lab.hook_points == ()
    with pytest.raises(steerlab.ArchitectureError, match=r"\(1, 4, 2, 8\), not \[batch, seq"):
        lab.hook_name(0, "resid_post")


def test_a_block_list_inside_a_block_is_refused():
    model = _Toy()
    model.layers[0].adapters = nn.ModuleList(nn.Linear(D, D) for _ in range(3))
    lab = steerlab.attach(model, layers="layers.0.adapters")
    with pytest.raises(steerlab.ArchitectureError, match="lies inside the block list 'layers'"):
        lab.hook_name(0, "resid_post")


def test_a_block_list_that_does_not_reach_the_final_norm_is_refused():
    model = _Toy()
    model.extra = nn.ModuleList(nn.Linear(D, D) for _ in range(3))  # never called
    lab = steerlab.attach(model, layers="extra")
    with pytest.raises(steerlab.ArchitectureError, match="ran 0 times"):
        lab.hook_name(0, "resid_pre")


def test_a_hook_that_does_not_fire_raises_instead_of_recording_nothing():
    model = _Toy(n=3, skip_long=True)
    lab = steerlab.attach(model)
    ids = torch.randint(0, 20, (2, 6))
    with pytest.raises(RuntimeError, match=r"\[blocks\.1\.hook_resid_post\] did not fire"):
        with lab.record(layers="all"):
            model(ids)
    with lab.record(layers="all") as rec:
        model(ids[:, :4])
    assert rec.n_tokens == 8


def test_the_verdict_is_computed_once_per_model():
    model = tiny("llama")
    first = steerlab.attach(model).layout.verdict()
    assert steerlab.attach(model).layout.verdict() is first
    assert not selfcheck.running()


def test_the_self_check_leaves_active_contexts_untouched():
    model = _Toy()
    lab = steerlab.attach(model)
    ids = torch.randint(0, 20, (1, 5))
    vec = steerlab.SteeringVector({0: torch.ones(D)})
    other = steerlab.attach(model)
    with lab.record(layers="all") as rec, lab.steer(vec, 2.0):
        selfcheck._CACHE.pop(model)  # so the self-check forward runs again, in here
        assert len(other.hook_points) == 4
        model(ids)
    assert rec.n_tokens == 5  # the self-check's 4 tokens were not recorded


def test_contexts_can_be_entered_again_after_they_exit():
    model = tiny("llama")
    lab = steerlab.attach(model)
    ids = torch.randint(3, 200, (1, 5))
    ctx = lab.record(layers=[0])
    counts = []
    for _ in range(2):
        with torch.no_grad(), ctx as rec:
            model(ids)
        counts.append(rec.n_tokens)
    assert counts == [5, 5]
    steer = lab.steer(steerlab.SteeringVector({0: torch.ones(64)}), 2.0)
    with torch.no_grad():
        with steer:
            a = model(ids).logits
        with steer:
            b = model(ids).logits
        plain = model(ids).logits
    assert torch.equal(a, b) and not torch.equal(a, plain)
    with pytest.raises(RuntimeError, match=r"lab.steer\(\.\.\.\) block is already open"):
        with steer, steer:
            pass
