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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import CONFIG_MAPPING, AutoModelForCausalLM
from transformers import logging as hf_logging
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
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "rotary_dim": 8,
    "max_position_embeddings": 512,
    "n_positions": 512,
    "n_ctx": 512,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "decoder_start_token_id": 2,
    "sliding_window": 512,
    # State-space layers: small states and chunks (the CPU path is slow otherwise).
    "state_size": 8,
    "mamba_d_state": 8,
    "ssm_state_size": 8,
    "chunk_size": 16,
    "mamba_chunk_size": 16,
    "mamba_n_heads": 8,
    "mamba_d_head": 16,
    "mamba_n_groups": 1,
    "n_groups": 1,
    "time_step_rank": 8,
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
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) for v in value)
            and max(value) >= LAYERS
            and name.endswith(("layers", "layer_ids", "indices"))
        ):
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
    if "kv_lora_rank" in names:  # multi-head latent attention: no grouped key/value heads
        kwargs.update({k: 4 for k in ("num_key_value_heads", "n_kv_heads") if k in kwargs})
    kwargs.update(SETTINGS.get(model_type, {}))
    return kwargs


def _sub_configs(default) -> dict[str, Any]:
    out = {}
    for name in getattr(default, "sub_configs", None) or {}:
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
        with _quiet(), torch.device("meta"):  # count first: initialising is the slow part
            shape = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        n = sum(p.numel() for p in shape.parameters())
        if n > 20_000_000:
            return Built(model_type, None, f"not tiny: {n / 1e6:.0f}M parameters")
        torch.manual_seed(seed)
        with _quiet():
            model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        model.eval()
        return Built(model_type, model, None)
    except Exception as exc:
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


# -- the checks ------------------------------------------------------------------------------
STATUSES = ("passes", "partial", "refused", "not buildable", "silently wrong", "crashed")


@dataclass
class Outcome:
    """What the zoo found for one model type.

    ``status``: ``passes`` (every point offered and every check holds), ``partial`` (some
    points refused with a reason, every offered point passes), ``refused`` (attach or every
    point refused with a clear :class:`ArchitectureError`), ``not buildable`` (the tiny model
    cannot be built or run offline), ``silently wrong`` or ``crashed`` (bugs: must not occur).
    """

    model_type: str
    status: str
    offered: tuple[str, ...] = ()
    orthogonalize: bool = False
    reason: str = ""
    architecture: str = ""
    notes: tuple[str, ...] = ()
    orth_reason: str = ""

    def __post_init__(self) -> None:
        self.offered, self.notes = tuple(self.offered), tuple(self.notes)

    def expected(self) -> dict[str, Any]:
        return {"status": self.status, "offered": list(self.offered), "orth": self.orthogonalize}


class Wrong(AssertionError):
    """A check failed on an offered point: steerlab would be silently wrong."""


def _ids(batch: int = 2, seq: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB - 8, (batch, seq), generator=g)


def _forward(model, ids: torch.Tensor, **kwargs: Any) -> Any:
    with torch.no_grad():
        try:
            return model(input_ids=ids, use_cache=False, **kwargs)
        except TypeError:  # a model without a cache
            return model(input_ids=ids, **kwargs)


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    return _forward(model, ids).logits.float()


def _generate(model, ids: torch.Tensor, cache: bool) -> torch.Tensor:
    with torch.no_grad(), _quiet():
        return model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=4,
            do_sample=False,
            use_cache=cache,
            pad_token_id=0,
        )


def _direction(d: int, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    return v / v.norm()


def check(model_type: str) -> Outcome:
    """Build ``model_type`` tiny and run every check; never raises."""
    import steerlab  # lazy: keeps `python -m tests.hooks.zoo --build-only` light

    built = build(model_type)
    if built.model is None:
        return Outcome(model_type, "not buildable", reason=built.error or "")
    model = built.model
    arch = type(model).__name__
    ids = _ids()
    try:
        with _quiet():
            plain = _logits(model, ids)
    except Exception as exc:
        return Outcome(model_type, "not buildable", reason=f"forward fails: {_err(exc)}")
    try:
        lab = steerlab.attach(model)
        offered = lab.hook_points
    except steerlab.ArchitectureError as exc:
        return Outcome(model_type, "refused", reason=_err(exc), architecture=arch)
    except Exception as exc:
        return Outcome(model_type, "crashed", reason=f"attach: {_err(exc)}", architecture=arch)
    verdict = lab.layout.verdict()
    if not offered:
        reason = verdict.refused.get("resid_post", "")
        return Outcome(model_type, "refused", reason=reason, architecture=arch)
    refused = {p: r for p, r in verdict.refused.items() if p not in offered}
    out = Outcome(
        model_type,
        "passes" if not refused else "partial",
        offered=offered,
        orthogonalize=verdict.orthogonalize is None,
        orth_reason=verdict.orthogonalize or "",
        reason="; ".join(sorted(set(refused.values()))),
        architecture=arch,
    )
    try:
        notes = _run_checks(model, lab, ids, plain, verdict)
        out.notes = tuple(notes)
    except Wrong as exc:
        out.status, out.reason = "silently wrong", str(exc)
    except Exception as exc:
        out.status, out.reason = "crashed", _err(exc)
    return out


def _err(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}"


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise Wrong(what)


def _run_checks(model, lab, ids, plain, verdict) -> list[str]:
    import steerlab  # lazy: see check()

    notes: list[str] = []
    n, d = lab.num_layers, lab.d_model
    offered = lab.hook_points
    with lab.record(layers="all", points=offered) as rec:
        out = _forward(model, ids, output_hidden_states=True)
    n_tok = ids.numel()
    for key in rec.keys:
        _require(rec.activations[key].shape == (n_tok, d), f"record {key}: wrong token count")
    for layer in range(n):
        act = {p: rec.activations[(layer, p)].double() for p in offered}
        if "attn_out" in act and "mlp_out" in act:
            diff = act["resid_post"] - act["resid_pre"] - act["attn_out"] - act["mlp_out"]
            scale = act["resid_post"].abs().max() + act["resid_pre"].abs().max()
            _require(float(diff.abs().max()) <= 1e-4 * float(scale), f"identity, layer {layer}")
    notes += _hidden_states_check(out, rec, n, d, n_tok)
    u = _direction(d)
    layer = min(1, n - 1)
    for point in offered:
        vec = steerlab.SteeringVector({layer: u})
        with lab.steer(vec, 0.0, point=point):
            _require(torch.equal(_logits(model, ids), plain), f"coefficient 0 changes {point}")
        scale = 4.0 * max(float(rec.activations[(layer, "resid_post")].norm(dim=-1).mean()), 1.0)
        with lab.steer(vec, scale, point=point):
            moved = _logits(model, ids)
        _require(not torch.allclose(moved, plain, atol=1e-4), f"steering {point} moves nothing")
        with lab.ablate(vec, points=point), lab.record(layers=[layer], points=point) as abl:
            _logits(model, ids)
        proj = abl.activations[(layer, point)] @ u
        _require(float(proj.abs().max()) < 1e-4, f"ablating {point} leaves its projection")
    notes += _cache_check(model, lab, ids, u, layer, rec)
    notes += _orthogonalize_check(model, lab, ids, u, verdict)
    return notes


def _hidden_states_check(out, rec, n: int, d: int, n_tok: int) -> list[str]:
    """``resid_post`` equals ``output_hidden_states`` where transformers defines it: entry 0
    is usually the embedding output (then entry ``i + 1`` follows block ``i``); some models
    (Mamba) start at block 0's output. The last entry is after the final norm in most models."""
    hidden = getattr(out, "hidden_states", None)
    if not isinstance(hidden, (tuple, list)) or not hidden:
        return ["no output_hidden_states"]
    flat = [h.reshape(-1, d).float() if h.numel() == n_tok * d else None for h in hidden]
    post = [rec.activations[(i, "resid_post")] for i in range(n)]
    offset = None
    for start, first in ((1, "resid_pre"), (0, "resid_post")):
        known = flat[0] is not None and (0, first) in rec.keys
        if known and torch.allclose(flat[0], rec.activations[(0, first)], atol=1e-5):
            offset = start
            break
    if offset is None:
        return ["output_hidden_states[0] is neither resid_pre 0 nor resid_post 0"]
    for i in range(n - 1):
        h = flat[i + offset] if i + offset < len(flat) else None
        same = h is not None and torch.allclose(h, post[i], atol=1e-5)
        _require(same, f"resid_post {i} != output_hidden_states[{i + offset}]")
    return []


def _cache_check(model, lab, ids, u, layer, rec) -> list[str]:
    import steerlab  # lazy: see check()

    ids = ids[:1]
    try:
        same = torch.equal(_generate(model, ids, True), _generate(model, ids, False))
    except Exception as exc:
        return [f"plain model: generate fails ({_err(exc)})"]
    if not same:
        return ["plain model: cached != uncached generation"]
    scale = 4.0 * max(float(rec.activations[(layer, "resid_post")].norm(dim=-1).mean()), 1.0)
    vec = steerlab.SteeringVector({layer: u})
    with lab.steer(vec, scale):
        cached, uncached = _generate(model, ids, True), _generate(model, ids, False)
    _require(torch.equal(cached, uncached), "steered generation: cached != uncached")
    return []


def _orthogonalize_check(model, lab, ids, u, verdict) -> list[str]:
    import copy  # lazy: only the zoo copies models

    import steerlab  # lazy: see check()

    vec = steerlab.SteeringVector({0: u})
    clone = copy.deepcopy(model)
    if verdict.orthogonalize is not None:
        try:
            steerlab.orthogonalize_weights(clone, vec)
        except steerlab.ArchitectureError:
            return []
        raise Wrong("orthogonalize_weights ran although the self-check refuses it")
    steerlab.orthogonalize_weights(clone, vec)
    points = ("attn_out", "mlp_out")
    olab = steerlab.attach(clone)
    with olab.record(layers="all", points=("resid_pre", *points)) as rec:
        edited = _logits(clone, ids)
    for key, act in rec.activations.items():
        if key[1] != "resid_pre" or key[0] == 0:
            _require(float((act @ u).abs().max()) < 1e-3, f"orthogonalized model writes u at {key}")
    if verdict.post_norm:
        return ["orthogonalize: post-norm sub-layers (not identical to runtime ablation)"]
    with lab.ablate(vec, layers="all", points=("resid_pre", *points)):
        runtime = _logits(model, ids)
    err = float((edited - runtime).abs().max()) / max(float(runtime.abs().max()), 1e-9)
    _require(err < 1e-3, f"orthogonalize_weights != runtime ablation (relative error {err:.2g})")
    return []


# -- the table -------------------------------------------------------------------------------
_LABELS = (
    ("resid_post != resid_pre", "residual identity fails"),
    ("lies inside the block list", "block list nested in a block"),
    ("does not receive what block", "blocks not chained"),
    ("never reaches a module after", "last block does not reach the final norm"),
    ("not [batch, seq, d_model]", "stream not [batch, seq, d_model]"),
    ("times in one forward", "module not run once per forward"),
    ("self-check forward pass failed", "self-check forward fails"),
    ("sub-layer found", "no attention/MLP sub-layer"),
    ("no output projection found", "no single output projection"),
    ("not its output projection", "sub-layer is not its output projection"),
    ("not a multiple of the embeddings", "embeddings do not write the first block's input"),
    ("no embedding of width d_model", "embeddings do not write the first block's input"),
    ("attn_out and mlp_out are refused", "sub-layers refused"),
    ("block list lives beside", "no decoder block list found"),
    ("decoder", "no decoder block list found"),
)


def label(reason: str) -> str:
    """A short name for a refusal reason (the table's legend)."""
    for needle, name in _LABELS:
        if needle in reason:
            return name
    return reason[:60]


def markdown(outcomes: list[Outcome]) -> str:
    """``docs/architectures.md``: counts, then one row per model type."""
    import steerlab  # lazy: see check()

    counts = {s: sum(o.status == s for o in outcomes) for s in STATUSES}
    lines = [
        "# Supported architectures",
        "",
        "Generated by `python -m tests.hooks.zoo --markdown` (the zoo test, `make zoo`) from every",
        "causal-LM model type of transformers "
        f"{_tf_version()}, each built tiny (hidden size 64, 3 layers, random init).",
        "A hook point is offered only where steerlab's self-check shows that it means what its",
        "name says (`steerlab/hooks/selfcheck.py`); elsewhere it raises `ArchitectureError`",
        "with the reason. Every offered point passes: the residual identity, `resid_post` ==",
        "`output_hidden_states`, coefficient 0 is a no-op, steering moves the logits, ablation",
        "zeroes the projection, cached == uncached steered generation, and",
        "`orthogonalize_weights` == runtime ablation where it is offered.",
        "",
        f"steerlab {getattr(steerlab, '__version__', '')}: "
        + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        + f" ({len(outcomes)} model types).",
        "",
        "| model type | class | resid_pre/post | attn_out/mlp_out | orthogonalize | why refused |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.status == "not buildable":
            lines.append(f"| {o.model_type} | | not buildable tiny | | | {_cell(o.reason)} |")
            continue
        resid = "yes" if "resid_post" in o.offered else "refused"
        sub = "yes" if "attn_out" in o.offered else "refused"
        orth = "yes" if o.orthogonalize else "refused"
        why = label(o.reason) if o.reason else ""
        if not why and o.orth_reason:
            why = f"orthogonalize: {label(o.orth_reason)}"
        if o.status in ("silently wrong", "crashed"):
            why = f"**{o.status}**: {_cell(o.reason)}"
        lines.append(f"| {o.model_type} | {o.architecture} | {resid} | {sub} | {orth} | {why} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def _tf_version() -> str:
    import transformers  # lazy: only for the table's header

    return transformers.__version__


# -- command line ----------------------------------------------------------------------------
def run_all(types: list[str]) -> list[Outcome]:
    outcomes = []
    for mt in types:
        t = time.perf_counter()
        o = check(mt)
        outcomes.append(o)
        print(
            json.dumps(
                [
                    mt,
                    o.status,
                    list(o.offered),
                    o.orthogonalize,
                    o.reason[:160],
                    round(time.perf_counter() - t, 2),
                ]
            ),
            flush=True,
        )
    return outcomes


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    types = args.types or model_types()
    if args.build_only:
        for mt in types:
            print(json.dumps([mt, build(mt).error]), flush=True)
        return
    if args.merge:
        merged = {o["model_type"]: o for p in args.merge for o in json.loads(Path(p).read_text())}
        outcomes = [Outcome(**merged[t]) for t in sorted(merged)]  # a later file wins
        fill_orth_reasons(outcomes)
    else:
        if args.part:
            i, n = map(int, args.part.split("/"))
            types = types[i - 1 :: n]
        start = time.perf_counter()
        outcomes = run_all(types)
        print(f"zoo: {len(outcomes)} model types in {time.perf_counter() - start:.0f} s")
    if args.save:
        Path(args.save).write_text(json.dumps([asdict(o) for o in outcomes]))
    if args.write_expected:
        write_expected(outcomes)
    if args.markdown:
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(markdown(outcomes))


def fill_orth_reasons(outcomes: list[Outcome]) -> None:
    """Recompute only the self-check verdict's orthogonalization reason (cheap)."""
    import steerlab  # lazy: see check()

    for o in outcomes:
        if o.status in ("passes", "partial") and not o.orthogonalize and not o.orth_reason:
            model = build(o.model_type).model
            o.orth_reason = steerlab.attach(model).layout.verdict().orthogonalize or ""


def write_expected(outcomes: list[Outcome]) -> None:
    data = {o.model_type: o.expected() for o in outcomes}
    EXPECTED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--write-expected", action="store_true")
    parser.add_argument("--markdown", action="store_true", help=f"write {DOCS}")
    parser.add_argument("--part", help="run every n-th type only, e.g. 1/2 (for parallel runs)")
    parser.add_argument("--save", help="write the outcomes to this JSON file")
    parser.add_argument("--merge", nargs="+", help="read outcomes saved by --save runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("types", nargs="*")
    main(parser.parse_args())
