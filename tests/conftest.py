"""Shared fixtures: tiny random-init models of every family, built once per session."""

from __future__ import annotations

import functools

import pytest
import torch

from steerlab.models.tiny import TEXT_FAMILIES, TINY_FAMILIES, VLM_FAMILIES, tiny, tiny_inputs

ALL_FAMILIES = TINY_FAMILIES


@functools.cache
def _model(family: str):
    return tiny(family, seed=0)


@pytest.fixture(params=ALL_FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture
def model(family):
    return _model(family)


@pytest.fixture
def llama():
    return _model("llama")


def inputs_for(model, *, padding: str | None = "left", batch: int = 2, seq: int = 8):
    """Inputs with an image for VLMs, with padding on one example."""
    return tiny_inputs(model, batch=batch, seq=seq, image=True, padding=padding)


def hooks_on(model: torch.nn.Module) -> int:
    """Number of forward / pre-forward hooks on every module of ``model``, excluding the
    ones transformers itself installs (``output_capturing_hook``)."""
    n = 0
    for module in model.modules():
        for hooks in (
            module._forward_hooks,
            module._forward_pre_hooks,
        ):
            n += sum(1 for h in hooks.values() if "output_capturing" not in getattr(h, "__name__", ""))
    return n


__all__ = ["ALL_FAMILIES", "TEXT_FAMILIES", "VLM_FAMILIES", "hooks_on", "inputs_for"]
