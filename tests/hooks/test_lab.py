"""Property: whatever nesting of contexts and wherever an exception is raised, no hook
remains and the model computes exactly what it computed before."""

from __future__ import annotations

import contextlib
import functools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlab
from steerlab.models.tiny import tiny, tiny_inputs
from tests.conftest import hooks_on


@functools.cache
def _setup():
    model = tiny("llama")
    inputs = tiny_inputs(model)
    with torch.no_grad():
        baseline = model(**inputs).logits
    return model, inputs, baseline, hooks_on(model)


class Boom(Exception):
    pass


KINDS = st.sampled_from(["steer", "steer_prompt", "ablate", "ablate_generated", "record", "disk"])
LAYERS = st.lists(st.integers(-3, 2), min_size=1, max_size=3, unique=True)
STEP = st.tuples(KINDS, LAYERS, st.booleans(), st.booleans())


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=5), detach_early=st.booleans())
def test_no_hook_remains_after_any_nesting_and_raise(steps, detach_early, tmp_path_factory):
    model, inputs, baseline, n_hooks = _setup()
    lab = steerlab.attach(model)
    vec = steerlab.SteeringVector({i: torch.randn(64) for i in range(3)})
    sub = steerlab.Subspace.from_vectors({i: torch.randn(2, 64) for i in range(3)})

    def ctx(kind, layers):
        layers = sorted({lab.layout.layer_index(x) for x in layers})
        if kind == "steer":
            return lab.steer(vec, 2.0, layers=layers)
        if kind == "steer_prompt":
            return lab.steer(vec, 2.0, positions="prompt", layers=layers)
        if kind == "ablate":
            return lab.ablate(sub, layers=layers)
        if kind == "ablate_generated":
            return lab.ablate(sub, k=1, layers=layers, positions="generated")
        if kind == "record":
            return lab.record(layers=layers, points=("resid_pre", "attn_out"))
        return lab.record(layers=layers, to_disk=tmp_path_factory.mktemp("store"))

    def run(i):
        if i == len(steps):
            return
        kind, layers, raise_before, forward = steps[i]
        with ctx(kind, layers):
            if forward:
                with torch.no_grad():
                    model(**inputs)
            if raise_before:
                raise Boom(i)
            if detach_early and i == len(steps) - 1:
                lab.detach()
            run(i + 1)

    with contextlib.suppress(Boom):
        run(0)
    assert hooks_on(model) == n_hooks
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, baseline)
