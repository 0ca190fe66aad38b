"""The models registry: complete entries, no import cycle, the study's parameter counts."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import steerlab.models
from steerlab.models.registry import HYBRID_MODELS, OFFLINE_MODELS, OfflineModel, param_count
from steerlab.study.pipeline import _param_guess

PACKAGE = Path(steerlab.models.__file__).parent
ENTRIES = [*OFFLINE_MODELS.values(), *HYBRID_MODELS.values()]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_is_complete(entry):
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        if f.name in ("gguf_parts", "assembler"):
            continue
        assert value is True or value is False or value, f"{entry.name}: empty {f.name}"
    assert entry.n_layers > 0 and entry.d_model > 0 and entry.n_params > 1e6
    if isinstance(entry, OfflineModel):
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.size_bytes > 0 and entry.gguf_filename.endswith(".gguf")
        assert (len(entry.gguf_parts) > 0) != (entry.assembler is not None)
        sources = {dist for dist, _ in entry.gguf_parts}
        assert sources <= set(entry.distributions)
        for req in entry.packages:
            assert req in entry.install and req.split("==")[0] in entry.distributions
    else:
        assert entry.base in OFFLINE_MODELS
        base = OFFLINE_MODELS[entry.base]
        assert (entry.n_layers, entry.d_model) == (base.n_layers, base.d_model)


def test_an_entry_needs_exactly_one_gguf_source():
    smol = OFFLINE_MODELS["smollm2-135m-instruct"]
    with pytest.raises(ValueError, match="exactly one GGUF source"):
        dataclasses.replace(smol, assembler="some_module")
    with pytest.raises(ValueError, match="exactly one GGUF source"):
        dataclasses.replace(smol, gguf_parts=())


def _steerlab_models_imports(path: Path) -> set[str]:
    """Every ``steerlab.models.<module>`` that a file imports, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "steerlab.models":
                found |= {a.name for a in node.names}
            elif node.module.startswith("steerlab.models."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[2] for a in node.names if a.name.startswith("steerlab.models.")
            }
    return found


def test_the_models_package_has_no_import_cycle():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {m: _steerlab_models_imports(PACKAGE / f"{m}.py") & modules for m in modules}
    assert graph["registry"] == set()
    assert "offline" not in graph["hybrid"]
    order: list[str] = []
    while graph:
        ready = sorted(m for m, deps in graph.items() if deps <= set(order))
        assert ready, f"import cycle among {sorted(graph)}: {graph}"
        order += ready
        for m in ready:
            del graph[m]


@pytest.mark.parametrize("module", ["steerlab.models.hybrid", "steerlab.models.offline"])
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    code = f"import {module}; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_param_guess_reads_the_registry():
    for entry in ENTRIES:
        assert _param_guess(entry.name) == float(entry.n_params) == param_count(entry.name)
    # the counts the study's dry-run cost estimate has always used
    assert [_param_guess(n) for n in ("smollm2-135m-instruct", "gemma3-270m")] == [135e6, 270e6]
    assert _param_guess("gemma3-270m-hybrid") == 280e6
    assert _param_guess("qwen2.5-coder-0.5b-instruct") == 494e6
    # hub ids and unknown names still fall back to the size in the name
    assert _param_guess("Qwen/Qwen2.5-Coder-0.5B-Instruct") == 0.5e9
    assert _param_guess("tiny-llama") == 0.2e6
    assert _param_guess("some-model") is None
    assert param_count("Qwen/Qwen2.5-Coder-0.5B-Instruct") is None
