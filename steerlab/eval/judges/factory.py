"""Build a judge from a config dict (or a JSON / YAML file, or a bare judge kind)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch

from steerlab.eval.judges.alignment import AlignmentJudge
from steerlab.eval.judges.http import HTTPBackend
from steerlab.eval.judges.local import LocalBackend
from steerlab.eval.judges.rubric import RubricJudge

__all__ = ["BACKENDS", "DEFAULT_LOCAL_JUDGE", "JUDGE_KINDS", "make_judge"]

JUDGE_KINDS: dict[str, type] = {"rubric": RubricJudge, "alignment": AlignmentJudge}
"""Judge kinds :func:`make_judge` builds. (The judge-free preference metric and the bandit
code metric are not judges: see :mod:`steerlab.eval`.)"""

BACKENDS: tuple[str, ...] = ("http", "local")
DEFAULT_LOCAL_JUDGE = "qwen2.5-coder-1.5b-instruct"
"""The local judge model when the spec names none (validated in examples/judge-validation)."""
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _options(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY}


def _read_spec(spec: str | os.PathLike) -> dict[str, Any]:
    text = os.fspath(spec)
    if text in JUDGE_KINDS:
        return {"kind": text}
    path = Path(text).expanduser()
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"judge config file not found: {path}")
        raw = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml  # lazy: only YAML judge configs need it

            data = yaml.safe_load(raw)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of judge settings, got {data!r}")
        return data
    raise ValueError(
        f"unknown judge {text!r}: expected a judge kind ({', '.join(JUDGE_KINDS)}), a config "
        "dict, or a .json/.yaml config file"
    )


def _load_local(name: str, device: Any, dtype: torch.dtype) -> tuple[Any, Any]:
    from steerlab.models import load_model  # lazy: steerlab.models imports transformers
    from steerlab.models.offline import ModelNotInstalledError  # lazy: same module

    try:
        return load_model(name, device=device, dtype=dtype)
    except ModelNotInstalledError as exc:
        raise ModelNotInstalledError(
            f'{exc}\nor: steerlab models fetch {name}\n(or choose another judge: "model" = '
            '"smollm2-135m-instruct" for a weak local one, or the http backend for an '
            "OpenAI-compatible endpoint)",
            name=exc.name,
        ) from exc


def make_judge(
    spec: dict[str, Any] | str | os.PathLike,
    *,
    model: Any = None,
    tokenizer: Any = None,
    check: bool = True,
) -> RubricJudge | AlignmentJudge:
    """Build a judge.

    ``spec`` is a dict such as::

        {"kind": "alignment", "backend": "http", "base_url": "http://localhost:8000/v1",
         "model": "Qwen/Qwen2.5-7B-Instruct", "api_key_env": "OPENAI_API_KEY",
         "concurrency": 4, "rate_limit": 5.0, "cache_dir": "judge-cache"}
        {"kind": "rubric", "backend": "local", "model": "smollm2-135m-instruct"}

    or a path to a JSON / YAML file holding one, or a bare kind (``"alignment"``: the local
    backend with :data:`DEFAULT_LOCAL_JUDGE`). Keys: ``kind`` (:data:`JUDGE_KINDS`),
    ``backend`` (:data:`BACKENDS`, default ``"local"``), the judge's options (e.g.
    ``threshold``, ``alignment_threshold``, ``min_mass``), and the backend's options
    (:class:`HTTPBackend` arguments; for ``local``: ``model`` — a name for
    :func:`steerlab.models.load_model`, default :data:`DEFAULT_LOCAL_JUDGE` —, ``dtype``
    (``"float32"`` or ``"bfloat16"``), ``batch_size``, ``device``, ``prefill``).

    Args:
        model, tokenizer: an already loaded local judge model (skips loading ``spec["model"]``).
        check: call the judge's ``check()`` now, so that an unreachable endpoint fails here.

    Raises:
        ValueError: unknown kind, backend, key or dtype (the message lists the valid
            ones), or a missing ``base_url`` / ``model``.
        ModelNotInstalledError: the local judge model's packages are not installed (the
            message has the pip command and the alternatives).
        ConnectionError, PermissionError: from ``check()`` (unreachable endpoint, bad key).
    """
    spec = dict(spec) if isinstance(spec, dict) else _read_spec(spec)
    kind = spec.pop("kind", None)
    if kind not in JUDGE_KINDS:
        raise ValueError(f"unknown judge kind {kind!r}; valid kinds: {', '.join(JUDGE_KINDS)}")
    backend_name = spec.pop("backend", "local")
    if backend_name not in BACKENDS:
        raise ValueError(f"unknown judge backend {backend_name!r}; valid: {', '.join(BACKENDS)}")
    judge_cls = JUDGE_KINDS[kind]
    judge_opts = {k: spec.pop(k) for k in list(spec) if k in _options(judge_cls)}
    if backend_name == "http":
        valid = _options(HTTPBackend) | {"base_url", "model"}
    else:
        valid = {"model", "batch_size", "device", "dtype", "name", "prefill"}
    unknown = sorted(set(spec) - valid)
    if unknown:
        raise ValueError(
            f"unknown keys {unknown} for a {kind} judge with the {backend_name} backend; valid: "
            f"{sorted(valid | _options(judge_cls) | {'kind', 'backend'})}"
        )
    if backend_name == "http":
        for key in ("base_url", "model"):
            if key not in spec:
                raise ValueError(f"the http judge backend needs {key!r} in its config")
        backend: Any = HTTPBackend(spec.pop("base_url"), spec.pop("model"), **spec)
    else:
        name = spec.pop("model", DEFAULT_LOCAL_JUDGE)
        device = spec.pop("device", None)
        dtype = spec.pop("dtype", "float32")
        if dtype not in _DTYPES:
            raise ValueError(f"local judge dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        if model is None:
            model, tokenizer = _load_local(name, device, _DTYPES[dtype])
        elif tokenizer is None:
            raise ValueError("make_judge: a local model needs its tokenizer too")
        backend = LocalBackend(model, tokenizer, name=spec.pop("name", name), **spec)
    judge = judge_cls(backend, **judge_opts)
    if check:
        judge.check()
    return judge
