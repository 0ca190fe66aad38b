"""Shared fixtures: tiny random-init models of every family, built once per session."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pytest
import torch

import steerlab.models.offline
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
            n += sum(
                1 for h in hooks.values() if "output_capturing" not in getattr(h, "__name__", "")
            )
    return n


SMOL = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smol_cache(tmp_path_factory) -> Path:
    spec = steerlab.models.offline.get(SMOL)
    if not spec.installed:
        pytest.skip(f"SmolLM2 weights not installed; run: {spec.install}")
    env = os.environ.get("STEERLAB_CACHE")
    cache = Path(env) if env else tmp_path_factory.mktemp("steerlab-cache")
    start = time.perf_counter()
    steerlab.models.offline.convert(SMOL, cache_dir=cache)
    print(f"SmolLM2 conversion (or cache hit): {time.perf_counter() - start:.1f} s")
    return cache


@pytest.fixture(scope="session")
def smol(smol_cache):
    return steerlab.models.offline.load_model(SMOL, cache_dir=smol_cache)


__all__ = ["ALL_FAMILIES", "TEXT_FAMILIES", "VLM_FAMILIES", "hooks_on", "inputs_for"]
