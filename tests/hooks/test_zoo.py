"""The architecture zoo: every causal-LM model type of the installed transformers, built tiny,
is either refused with a clear ``ArchitectureError`` or passes every check on every hook point
it offers (see ``tests/hooks/zoo.py``). Never silently wrong, never a crash.

``make test`` runs a stratified subset (one model type per kind of trap, plus the common
families); ``make zoo`` (``STEERLAB_ZOO=all``) runs every type. A model type that a new
transformers release adds fails ``test_every_causal_lm_type_is_classified`` until its outcome
is recorded in ``zoo_expected.json`` (``python -m tests.hooks.zoo --write-expected``).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.hooks import zoo

EXPECTED: dict[str, dict] = json.loads(zoo.EXPECTED.read_text())
FULL = os.environ.get("STEERLAB_ZOO", "") == "all"

SUBSET = (
    "llama",  # the common pre-norm family
    "gpt2",  # Conv1D projections, learned positions
    "gemma2",  # sandwich norms: post-norm attn_out / mlp_out (the documented choice)
    "qwen2_moe",  # a shared expert beside the routed experts
    "phi",  # parallel attention and MLP
    "opt",  # OPT-350m: post-LayerNorm blocks, projected embedding
    "bloom",  # sub-modules that add the residual themselves
    "granite",  # a scaled residual add (residual_multiplier)
    "olmo2",  # post-sub-layer norms under other names
    "deepseek_v4",  # hyper-connections: [batch, seq, n_streams, d_model] between blocks
    "longcat_flash",  # a hook point on a module the forward never calls
    "inkling2_loop_text",  # the block list does not carry the stream to the final norm
    "falcon_mamba",  # no attention sub-layer; output_hidden_states start after block 0
    "bert",  # no decoder block list beside the embedding: refused at attach
    "dbrx",  # not buildable tiny offline: listed with its error
)


def test_every_causal_lm_type_is_classified():
    """A model type added (or removed) by a transformers release fails loudly until its
    expected outcome is committed."""
    types = set(zoo.model_types())
    new, gone = sorted(types - set(EXPECTED)), sorted(set(EXPECTED) - types)
    assert not new and not gone, (
        f"unclassified causal-LM model types {new}, classified but gone {gone}: run "
        "`python -m tests.hooks.zoo --write-expected --markdown` and review the diff"
    )


def test_no_expected_outcome_is_silently_wrong_or_a_crash():
    bad = {t: e for t, e in EXPECTED.items() if e["status"] in ("silently wrong", "crashed")}
    assert not bad


@pytest.mark.parametrize("model_type", sorted(EXPECTED) if FULL else SUBSET)
def test_model_type_is_refused_clearly_or_passes_every_check(model_type):
    outcome = zoo.check(model_type)
    assert outcome.status not in ("silently wrong", "crashed"), outcome.reason
    assert outcome.expected() == EXPECTED[model_type], outcome.reason
