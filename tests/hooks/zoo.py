"""The architecture zoo: every causal-LM model type of the installed transformers, built tiny.

Each model type registered in ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` is built as a random-init
model (hidden size 64, 3 layers, 4 heads, intermediate size 128, vocabulary 256, eager
attention, fixed seed), with the non-default settings that real checkpoints use where they
change the block's maths (:data:`SETTINGS`). A type that cannot be built this way offline is
reported as not buildable, with its error; it is never skipped silently.

Run ``python -m tests.hooks.zoo --markdown`` to regenerate ``docs/architectures.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, CONFIG_MAPPING, logging as hf_logging
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

EXPECTED = Path(__file__).with_name("zoo_expected.json")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "architectures.md"

VOCAB = 256
HIDDEN = 64
LAYERS = 3

# Every size attribute a config may call by one of these names is set to a tiny value.
_SIZES: dict[str, Any] = {
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "n_embd": HIDDEN,
    "d_model": HIDDEN,
    "dim": HIDDEN,
    "word_embed_proj_dim": HIDDEN,
    "embed_dim": HIDDEN,
    "num_hidden_layers": LAYERS,
    "n_layer": LAYERS,
    "n_layers": LAYERS,
    "num_layers": LAYERS,
    "decoder_layers": LAYERS,
    "num_decoder_layers": LAYERS,
    "num_attention_heads": 4,
    "n_head": 4,
    "n_heads": 4,
    "decoder_attention_heads": 4,
    "num_heads": 4,
    "num_key_value_heads": 2,
    "n_kv_heads": 2,
    "num_kv_heads": 2,
    "head_dim": 16,
    "kv_channels": 16,
    "intermediate_size": 128,
    "ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "n_inner": 128,
    "ffn_hidden_size": 128,
    "d_ff": 128,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "moe_num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_topk": 2,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 16,
    "max_position_embeddings": 512,
    "n_positions": 512,
    "n_ctx": 512,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "decoder_start_token_id": 2,
    "sliding_window": 512,
}

SETTINGS: dict[str, dict[str, Any]] = {
    # Non-default settings of real checkpoints that change the block's maths.
    "granite": {"residual_multiplier": 0.22},
    "granitemoe": {"residual_multiplier": 0.22},
    "granitemoeshared": {"residual_multiplier": 0.22},
    "granitemoehybrid": {"residual_multiplier": 0.22},
    "granite_swa": {"residual_multiplier": 0.22},
    "granitemoe_swa": {"residual_multiplier": 0.22},
    "opt": {"do_layer_norm_before": False, "word_embed_proj_dim": 32},
    "minicpm3": {"scale_depth": 1.4},
    "reformer": {"is_decoder": True},
}
"""Per model type: config values of real checkpoints (Granite's ``residual_multiplier``,
OPT-350m's post-LayerNorm blocks and projected embedding, MiniCPM3's depth scaling)."""


@dataclass
class Built:
    model_type: str
    model: torch.nn.Module | None
    error: str | None


def _fields(config) -> set[str]:
    names = set(config.to_dict())
    names |= set(getattr(config, "attribute_map", {}) or {})
    return names


def _n_layers(config) -> int | None:
    for name in ("num_hidden_layers", "n_layer", "num_layers", "decoder_layers"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _per_layer(config) -> dict[str, Any]:
    """Per-layer lists and dicts of the default config, cut down to the tiny model's layers."""
    n = _n_layers(config)
    out: dict[str, Any] = {}
    if not n or n <= LAYERS:
        return out
    for name, value in config.to_dict().items():
        if isinstance(value, list) and len(value) == n:
            out[name] = value[:LAYERS]
        elif isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
            out[name] = {k: v for k, v in value.items() if int(k) < LAYERS}
        elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            if max(value) >= LAYERS and name.endswith(("layers", "layer_ids", "indices")):
                out[name] = [v for v in value if v < LAYERS]
    return out


def _kwargs(config_cls, model_type: str) -> dict[str, Any]:
    default = config_cls()
    names = _fields(default)
    kwargs = _per_layer(default)
    kwargs.update({k: v for k, v in _SIZES.items() if k in names})
    amap = getattr(default, "attribute_map", {}) or {}
    for alias, target in amap.items():  # set the canonical name, not the alias
        if alias in kwargs:
            kwargs.setdefault(target, kwargs.pop(alias))
    kwargs.update(SETTINGS.get(model_type, {}))
    return kwargs


def _sub_configs(default) -> dict[str, Any]:
    out = {}
    for name, sub in (getattr(default, "sub_configs", None) or {}).items():
        value = getattr(default, name, None)
        if value is None or not hasattr(value, "to_dict"):
            continue
        sizes = {k: v for k, v in _SIZES.items() if k in _fields(value)}
        out[name] = {**value.to_dict(), **_per_layer(value), **sizes}
        out[name].pop("model_type", None)
    return out


def config_for(model_type: str):
    """A tiny config for ``model_type`` (eager attention, 3 layers, hidden size 64)."""
    config_cls = CONFIG_MAPPING[model_type]
    kwargs = _kwargs(config_cls, model_type)
    default = config_cls()
    kwargs.update(_sub_configs(default))
    config = config_cls(**kwargs)
    config._attn_implementation = "eager"
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    text._attn_implementation = "eager"
    return config


def build(model_type: str, seed: int = 0) -> Built:
    """Build ``model_type`` tiny, or return the error that stopped it."""
    try:
        config = config_for(model_type)
        torch.manual_seed(seed)
        with _quiet():
            model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        n = sum(p.numel() for p in model.parameters())
        if n > 20_000_000:
            return Built(model_type, None, f"not tiny: {n / 1e6:.0f}M parameters")
        model.eval()
        return Built(model_type, model, None)
    except Exception as exc:  # noqa: BLE001 - every failure is reported with its type
        return Built(model_type, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


@contextlib.contextmanager
def _quiet():
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)


def model_types() -> list[str]:
    """Every causal-LM model type registered in the installed transformers."""
    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("types", nargs="*")
    args = parser.parse_args()
    for mt in args.types or model_types():
        t = time.perf_counter()
        b = build(mt)
        print(json.dumps([mt, b.error, round(time.perf_counter() - t, 2)]), flush=True)
