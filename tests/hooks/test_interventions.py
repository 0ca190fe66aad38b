"""lab.steer() and lab.ablate(): exact effects, KV-cache correctness, positions."""

from __future__ import annotations

import pytest
import torch

import steerlab
from steerlab.models.tiny import tiny_inputs
from tests.conftest import inputs_for


def _vec(layers, d=64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return steerlab.SteeringVector({i: torch.randn(d, generator=g) * scale for i in layers})


def _forward_resid(model, lab, inputs, layer):
    with torch.no_grad(), lab.record(layers=[layer], positions="all") as rec:
        logits = model(**inputs).logits
    return rec.activations[layer], logits


def test_coefficient_zero_is_a_bitwise_no_op(family, model):
    inputs = inputs_for(model)
    lab = steerlab.attach(model)
    with torch.no_grad():
        plain = model(**inputs).logits
        with lab.steer(_vec(range(3)), coefficient=0.0):
            steered = model(**inputs).logits
    assert torch.equal(plain, steered)


@pytest.mark.parametrize("point", ["resid_post", "resid_pre", "attn_out", "mlp_out"])
def test_steering_changes_the_hooked_activation_by_exactly_coefficient_times_direction(
    llama, point
):
    inputs = tiny_inputs(llama)
    lab = steerlab.attach(llama)
    vec = _vec([1])
    with torch.no_grad(), lab.record(layers=[1], points=(point,)) as plain:
        llama(**inputs)
    with (
        torch.no_grad(),
        lab.steer(vec, coefficient=2.5, point=point),
        lab.record(layers=[1], points=(point,)) as steered,
    ):
        llama(**inputs)
    expected = plain.activations[1] + 2.5 * vec.directions[1]
    assert torch.equal(steered.activations[1], expected)


def test_per_layer_coefficients(llama):
    inputs = tiny_inputs(llama)
    lab = steerlab.attach(llama)
    vec = _vec([0, 2])
    with torch.no_grad():
        a = model_logits = llama(**inputs).logits
        with lab.steer(vec, coefficient={0: 0.0, 2: 1.5}):
            b = llama(**inputs).logits
        with lab.steer(vec.to(torch.float32), coefficient=1.5, layers=[2]):
            c = llama(**inputs).logits
    assert not torch.equal(a, b)
    assert torch.equal(b, c)
    del model_logits
    with pytest.raises(ValueError, match="no entry for layer 2"):
        with lab.steer(vec, coefficient={0: 1.0}):
            pass


def _greedy(model, inputs, use_cache):
    return model.generate(
        **inputs, max_new_tokens=4, do_sample=False, use_cache=use_cache, pad_token_id=0
    )


def _check_kv_equivalence(model, positions):
    inputs = inputs_for(model)
    lab = steerlab.attach(model)
    vec = _vec([0, 1], scale=2.0)
    with torch.no_grad(), lab.steer(vec, coefficient=3.0, positions=positions):
        cached = _greedy(model, inputs, True)
        uncached = _greedy(model, inputs, False)
    assert torch.equal(cached, uncached)
    with torch.no_grad():
        plain = _greedy(model, inputs, True)
    assert not torch.equal(plain, cached), "steering should change the generation"


def test_steering_with_kv_cache_matches_uncached_generation(family, model):
    _check_kv_equivalence(model, "generated")


@pytest.mark.parametrize("positions", ["all", "prompt"])
def test_steering_with_kv_cache_matches_uncached_for_every_position_spec(llama, positions):
    _check_kv_equivalence(llama, positions)


def test_ablation_with_kv_cache_matches_uncached_generation(family, model):
    inputs = inputs_for(model)
    lab = steerlab.attach(model)
    sub = steerlab.Subspace.from_vectors({i: torch.randn(4, 64) for i in range(3)})
    with torch.no_grad(), lab.ablate(sub, k=3, points=("resid_pre", "attn_out", "mlp_out")):
        cached = _greedy(model, inputs, True)
        uncached = _greedy(model, inputs, False)
    assert torch.equal(cached, uncached)


def test_generated_positions_steer_the_first_new_token(llama):
    """The last prompt token's output predicts the first new token, so it must be steered."""
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lab = steerlab.attach(llama)
    vec = _vec([0, 1, 2], scale=4.0)
    with torch.no_grad():
        with lab.steer(vec, positions="generated"):
            first_steered = llama(**inputs).logits[:, -1]
        with lab.steer(vec, positions="all"):
            ref = llama.generate(**inputs, max_new_tokens=1, do_sample=False)
        plain = llama(**inputs).logits[:, -1]
    assert not torch.equal(first_steered, plain)
    # Steering the prompt fully or only from its last token gives different contexts, but
    # the "generated" first token is produced under steering (differs from unsteered):
    with torch.no_grad(), lab.steer(vec, positions="generated"):
        gen = llama.generate(**inputs, max_new_tokens=1, do_sample=False)
    assert torch.equal(gen[:, -1], first_steered.argmax(-1))
    assert ref.shape == gen.shape


def test_each_position_gets_the_vector_once(llama):
    """Under generate(use_cache=True), recorded steered activations equal a single forward
    over the final sequence with the same steering: nothing is added twice."""
    inputs = tiny_inputs(llama, batch=2, seq=6, padding="left")
    lab = steerlab.attach(llama)
    vec = _vec([1], scale=3.0)
    with torch.no_grad(), lab.steer(vec, positions="generated"), lab.record(layers=[1]) as rec:
        out = llama.generate(**inputs, max_new_tokens=4, do_sample=False)
    mask = torch.cat([inputs["attention_mask"], torch.ones(2, 3, dtype=torch.long)], 1)
    from_last_prompt = torch.zeros(2, 9, dtype=torch.bool)
    from_last_prompt[:, 5:] = True  # left padding: the last prompt token is at index 5
    with torch.no_grad(), lab.steer(vec, positions=from_last_prompt), lab.record(layers=[1]) as ref:
        llama(input_ids=out[:, :-1], attention_mask=mask)
    key = lambda r: torch.argsort(r.example_index * 1000 + r.position)  # noqa: E731
    torch.testing.assert_close(
        rec.activations[1][key(rec)], ref.activations[1][key(ref)], atol=1e-4, rtol=1e-4
    )


def test_ablated_activation_has_zero_projection(family, model):
    inputs = inputs_for(model)
    lab = steerlab.attach(model)
    raw = torch.randn(5, 64) * 7  # not orthonormal: orthonormalised internally
    before = raw.clone()
    sub = steerlab.Subspace.from_vectors({1: raw})
    q = sub.bases[1]
    with torch.no_grad(), lab.ablate(sub, k=3), lab.record(layers=[1]) as rec:
        model(**inputs)
    proj = rec.activations[1] @ q[:3].T
    assert proj.abs().max() < 1e-4 * rec.activations[1].abs().max()
    assert torch.equal(raw, before)


def test_ablating_a_non_unit_steering_vector(llama):
    inputs = tiny_inputs(llama)
    lab = steerlab.attach(llama)
    direction = torch.randn(64) * 13.0
    original = direction.clone()
    vec = steerlab.SteeringVector({2: direction})
    with torch.no_grad(), lab.ablate(vec), lab.record(layers=[2]) as rec:
        llama(**inputs)
    unit = original / original.norm()
    assert (rec.activations[2] @ unit).abs().max() < 1e-4
    assert torch.equal(direction, original)


def test_mean_ablation_sets_the_component_to_the_reference_mean(llama):
    inputs = tiny_inputs(llama)
    lab = steerlab.attach(llama)
    sub = steerlab.Subspace.from_vectors({1: torch.randn(2, 64)})
    mean = torch.randn(64)
    with torch.no_grad(), lab.ablate(sub, mean=mean), lab.record(layers=[1]) as rec:
        llama(**inputs)
    q = sub.bases[1]
    got = rec.activations[1] @ q.T
    torch.testing.assert_close(got, (mean @ q.T).expand_as(got), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="needs a mean for layers"), lab.ablate(sub, mean=True):
        pass


def test_ablation_on_masked_positions_leaves_others_untouched(llama):
    inputs = tiny_inputs(llama, batch=2, seq=8)
    lab = steerlab.attach(llama)
    sub = steerlab.Subspace.from_vectors({0: torch.randn(3, 64)})
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, 4:] = True
    with torch.no_grad(), lab.record(layers=[0]) as plain:
        llama(**inputs)
    with torch.no_grad(), lab.ablate(sub, positions=mask), lab.record(layers=[0]) as abl:
        llama(**inputs)
    a, p = abl.activations[0].view(2, 8, 64), plain.activations[0].view(2, 8, 64)
    assert torch.equal(a[:, :4], p[:, :4])
    assert (a[:, 4:] @ sub.bases[0].T).abs().max() < 1e-4


def test_interventions_compose_in_the_order_entered(llama):
    inputs = tiny_inputs(llama)
    lab = steerlab.attach(llama)
    vec = _vec([1])
    sub = steerlab.SteeringVector({1: vec.directions[1]})
    with torch.no_grad(), lab.steer(vec, 5.0), lab.ablate(sub), lab.record(layers=[1]) as rec:
        llama(**inputs)
    unit = vec.directions[1] / vec.directions[1].norm()
    assert (rec.activations[1] @ unit).abs().max() < 1e-4  # ablation ran after steering


def test_hooks_are_removed_when_the_body_raises(llama):
    from tests.conftest import hooks_on

    lab = steerlab.attach(llama)
    before = hooks_on(llama)
    with pytest.raises(RuntimeError, match="boom"):
        with lab.steer(_vec([0]), positions="prompt"), lab.record(layers=[1]):
            raise RuntimeError("boom")
    assert hooks_on(llama) == before


def test_bad_intervention_inputs_raise_clear_errors(llama):
    lab = steerlab.attach(llama)
    with pytest.raises(
        ValueError, match=r"d_model=32, but the model's residual stream has d_model=64"
    ):
        with lab.steer(_vec([0], d=32)):
            pass
    with pytest.raises(IndexError, match=r"valid: -3\.\.2"), lab.steer(_vec([5])):
        pass
    with pytest.raises(ValueError, match="NaN"):
        steerlab.SteeringVector({0: torch.tensor([float("nan")] * 64)})
    with pytest.raises(TypeError, match="SteeringVector"), lab.steer(torch.randn(64)):
        pass
    sub = steerlab.Subspace.from_vectors({0: torch.randn(2, 64)})
    with pytest.raises(ValueError, match="k=3 but layer 0 has only 2"), lab.ablate(sub, k=3):
        pass
    with pytest.raises(ValueError, match="k must be >= 1"), lab.ablate(sub, k=0):
        pass


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_are_steered_in_their_dtype(dtype):
    from steerlab.models.tiny import tiny

    model = tiny("llama", dtype=dtype)
    lab = steerlab.attach(model)
    vec = _vec([1])  # float32 vector, cast to the activation dtype
    inputs = tiny_inputs(model)
    with torch.no_grad(), lab.steer(vec, 2.0), lab.record(layers=[1], dtype=None) as rec:
        model(**inputs)
    assert rec.activations[1].dtype == dtype
    with torch.no_grad(), lab.record(layers=[1]) as plain:
        model(**inputs)
    expected = plain.activations[1] + (2.0 * vec.directions[1]).to(dtype)
    assert torch.equal(rec.activations[1], expected)
