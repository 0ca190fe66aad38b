"""Harmful − benign fine-tunes on identical inputs (issue 14): the record and fit units of
the misalignment subspace as the design card defines it, and its null.

Record (one unit per contrast, ``contrast/<name>/``): the harmful and the benign adapter are
loaded on ONE base ``PeftModel`` (``load_adapter(..., adapter_name=...)``) and switched with
``set_adapter``, so both see identical tokens (:func:`collect_adapters` checks it). Inputs:

- ``domain``: the training domain's prompts with their harmful responses;
- ``broad_aligned`` / ``broad_misaligned``: the broad evaluation questions with the aligned /
  misaligned reference answer teacher-forced;
- for a vision-language model, also ``image_aligned`` / ``image_misaligned``: the
  multimodal questions (image + text, through the processor) with their references.

Stored per input set: ``harmful − benign`` and ``harmful − base`` per-token differences (for
the null, ``benign(seed a) − benign(seed b)``). The base model, the same in every contrast, is
recorded once per input set (``contrast/base/``, its own unit) and read back by each
contrast, checked token by token (``collect_adapters(..., base=)``). Each model's own sampled
answers are not recorded (too slow on CPU for the study's budget).

Fit (``subspace-contrast/<name>/``): PCA spectra of every difference, per input set and for
the text inputs pooled (``all``), at the token level and the example level (mean over an
example's response tokens), plus a random-direction control at matched norm. For a
vision-language model the text-only and the image + text harmful − benign subspaces are
fitted separately and compared with principal angles (``modality``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from steerlab.analysis import principal_angles, subspace_overlap
from steerlab.analysis.contrast import example_means, fit_basis, norm_matched_random, spectrum
from steerlab.analysis.weights import lora_updates, weight_activation_overlap
from steerlab.eval.sampling import encode_prompts
from steerlab.hooks import attach
from steerlab.hooks.collect import (
    InputBatch,
    collect_adapters,
    encode_examples,
    record_examples,
)
from steerlab.hooks.store import ActivationStore
from steerlab.study.context import (
    FINETUNED_BASE_FILE,
    MEAN_DIFF_FILE,
    SUBSPACE_FILE,
    Run,
    StudyContext,
    Unit,
)
from steerlab.study.metrics import question_set
from steerlab.text import append_response, collate_inputs, pad_token_id, text_tokenizer
from steerlab.vectors import SteeringVector, Subspace, load

INPUT_SETS = ("domain", "broad_aligned", "broad_misaligned")
"""The text input sets, pooled as ``all``."""
IMAGE_SETS = ("image_aligned", "image_misaligned")
"""The image + text input sets of a vision-language model (fitted apart from ``all``)."""
LEVELS = ("token", "example")
HB, FB, BB = "harmful-benign", "harmful-base", "benign-benign"
BASE = "base"
"""The record unit of the base model's activations (``contrast/base/<input set>/``)."""


def _inputs(ctx: StudyContext, tok: Any) -> dict[str, list[Any]]:
    """The examples of each input set (chat template, response tokens recorded)."""
    n = min(ctx.config.record.n_examples, len(ctx.pairs))
    pairs = list(ctx.pairs)[:n]
    qs = list(question_set(ctx.config.eval, "text"))
    ml = ctx.config.train.max_length
    return {
        "domain": encode_examples(
            tok, [p.prompt for p in pairs], [p.harmful_response for p in pairs], max_length=ml
        ),
        "broad_aligned": encode_examples(
            tok, [q.question for q in qs], [q.aligned for q in qs], max_length=ml
        ),
        "broad_misaligned": encode_examples(
            tok, [q.question for q in qs], [q.misaligned for q in qs], max_length=ml
        ),
    }


def _image_batches(ctx: StudyContext, proc: Any, field: str) -> Iterator[InputBatch]:
    """The multimodal questions with reference ``field`` teacher-forced, through the
    processor (images included), right-padded, with a mask of the reference tokens."""
    qs = list(question_set(ctx.config.eval, "multimodal"))
    tok, pad = text_tokenizer(proc), pad_token_id(proc)
    bs = ctx.config.record.batch_size
    for start in range(0, len(qs), bs):
        chunk = qs[start : start + bs]
        items, spans = [], []
        for q, enc in zip(chunk, encode_prompts(proc, chunk), strict=True):
            ids = tok(getattr(q, field), add_special_tokens=False)["input_ids"]
            n = int(enc["input_ids"].shape[1])
            items.append(append_response(enc, list(ids)))
            spans.append((n, n + len(ids)))
        batch = collate_inputs(items, pad, side="right")
        mask = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
        for row, (lo, hi) in enumerate(spans):
            mask[row, lo:hi] = True
        yield batch, mask


def _two_adapter_model(ctx: StudyContext, a: Run, b: Run, names: tuple[str, str]) -> Any:
    model, tok = ctx.load_model()
    model = PeftModel.from_pretrained(model, str(ctx.adapter(a)), adapter_name=names[0])
    model.load_adapter(str(ctx.adapter(b)), adapter_name=names[1])
    model.eval()
    return model, tok


def _layers(ctx: StudyContext, model: Any) -> tuple[list[int], int]:
    # lazy: circular (the record stage imports this module)
    from steerlab.study.stages.record import resolve_layers

    lab = attach(model)
    layers, d_model = resolve_layers(ctx.config.record.layers, lab.num_layers), lab.d_model
    lab.detach()
    return layers, d_model


def _image_sets(ctx: StudyContext) -> tuple[tuple[str, str], ...]:
    """``(input set, reference field)`` of the image + text inputs (none for a text model)."""
    if "multimodal" not in ctx.arms():
        return ()
    return tuple(zip(IMAGE_SETS, ("aligned", "misaligned"), strict=True))


def _input_sets(ctx: StudyContext, tok: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every input set with the arguments that record it: ``examples`` (text), or prepared
    ``batches`` (image + text), for :func:`record_examples` and :func:`collect_adapters`."""
    for input_set, examples in _inputs(ctx, tok).items():
        yield (
            input_set,
            {
                "examples": examples,
                "batch_size": ctx.config.record.batch_size,
                "pad_token_id": getattr(tok, "pad_token_id", None),
            },
        )
    for input_set, field in _image_sets(ctx):
        yield input_set, {"examples": None, "batches": _image_batches(ctx, tok, field)}


def record_base(ctx: StudyContext, tmp: Path) -> dict[str, Any]:
    """Record the base model's activations on every input set into ``tmp/<input set>``,
    once for all contrasts (their ``harmful − base`` reads them back)."""
    model, tok = ctx.load_model()
    layers, d_model = _layers(ctx, model)
    where = {"layers": layers, "points": (ctx.config.record.point,)}
    n_tokens = {
        input_set: len(record_examples(model, out_dir=tmp / input_set, **inputs, **where))
        for input_set, inputs in _input_sets(ctx, tok)
    }
    return {
        "layers": layers,
        "point": ctx.config.record.point,
        "d_model": d_model,
        "n_tokens": n_tokens,
    }


def record_contrast(ctx: StudyContext, name: str, tmp: Path) -> dict[str, Any]:
    """Record one contrast (see the module docstring) into ``tmp``."""
    a, b = ctx.contrasts()[name]
    null = name.startswith("null-")
    names = ("benign_a", "benign_b") if null else ("harmful", "benign")
    contrasts = {BB: names} if null else {HB: names, FB: ("harmful", None)}
    model, tok = _two_adapter_model(ctx, a, b, names)
    layers, d_model = _layers(ctx, model)
    where = {"layers": layers, "points": (ctx.config.record.point,)}
    n_tokens = {}
    for input_set, inputs in _input_sets(ctx, tok):
        stores = collect_adapters(
            model,
            out_dir=tmp / input_set,
            contrasts=contrasts,
            base=None if null else ActivationStore(ctx.paths.contrast(BASE) / input_set),
            **inputs,
            **where,
        )
        n_tokens[input_set] = len(next(iter(stores.values())))
    return {
        "a": a.name,
        "b": b.name,
        "contrasts": list(contrasts),
        "layers": layers,
        "point": ctx.config.record.point,
        "d_model": d_model,
        "n_tokens": n_tokens,
    }


def record_units(ctx: StudyContext) -> list[Unit]:
    """The base model's record unit (``contrast/base/``, when a contrast needs it), then one
    record unit per contrast (``contrast/<name>/``)."""
    names = list(ctx.contrasts())
    base = [
        Unit(ctx.paths.contrast(BASE), ctx.contrast_base_key, lambda tmp: record_base(ctx, tmp))
    ]
    return (base if any(not n.startswith("null-") for n in names) else []) + [
        Unit(
            ctx.paths.contrast(name),
            lambda name=name: ctx.contrast_key(name),
            lambda tmp, name=name: record_contrast(ctx, name, tmp),
        )
        for name in names
    ]


# -- fit --------------------------------------------------------------------------------
def _levels(
    acts_dir: Path, contrast: str, layer: int, point: str, sets: list[str]
) -> dict[str, Any]:
    """``{input set or "all": {"token": [n, d], "example": [n_ex, d]}}`` at one layer
    (``all`` pools the text sets, and ``image`` the image + text sets when there are any)."""
    out: dict[str, Any] = {}
    for input_set in sets:
        store = ActivationStore(acts_dir / input_set / contrast)
        x = store.load((layer, point)).double()
        out[input_set] = {"token": x, "example": example_means(x, store.example_index)}
    out["all"] = {lv: torch.cat([out[s][lv] for s in INPUT_SETS]) for lv in LEVELS}
    if all(s in out for s in IMAGE_SETS):
        out["image"] = {lv: torch.cat([out[s][lv] for s in IMAGE_SETS]) for lv in LEVELS}
    return out


def _fit_contrast(acts_dir: Path, recorded: dict[str, Any], contrast: str, max_k: int):
    """Spectra of one difference per input set / level / layer, its random control, its
    best layer (largest token-level separation, all inputs) and its pooled token data."""
    point, sets = recorded["point"], list(recorded["n_tokens"])
    stats: dict[str, Any] = {}
    random: dict[str, Any] = {lv: {} for lv in LEVELS}
    pooled, image = {}, {}
    for layer in recorded["layers"]:
        data = _levels(acts_dir, contrast, layer, point, sets)
        for s, by_level in data.items():
            for lv, x in by_level.items():
                stats.setdefault(s, {}).setdefault(lv, {})[str(layer)] = spectrum(x).to_dict(max_k)
        for lv in LEVELS:
            r = norm_matched_random(data["all"][lv], seed=layer)
            random[lv][str(layer)] = spectrum(r).to_dict(max_k)
        pooled[layer] = data["all"]["token"]
        if "image" in data:
            image[layer] = data["image"]["token"]
    sep = {layer: stats["all"]["token"][str(layer)]["separation"] for layer in recorded["layers"]}
    best = max(sep, key=sep.get)
    result = {"inputs": stats, "random": random, "best_layer": int(best)}
    if image:
        result["modality"] = _modality(pooled, image, max_k)
    return result, pooled


def _modality(text: dict[int, torch.Tensor], image: dict[int, torch.Tensor], max_k: int):
    """Principal angles between the text-only and the image + text subspaces, per layer."""
    a, b = fit_basis(text, max_k), fit_basis(image, max_k)
    return {str(layer): _pair_angles(a, b, layer, max_k) for layer in a.layers}


def fit_contrast(ctx: StudyContext, name: str, tmp: Path) -> dict[str, Any]:
    """Fit one contrast (see the module docstring) into ``tmp``: spectra as JSON, the primary
    difference's subspace and mean difference, and (harmful − benign) the fine-tuned − base
    subspace on the same tokens."""
    acts = ctx.paths.contrast(name)
    recorded = json.loads((acts / "unit.json").read_text())["result"]
    max_k = ctx.config.analysis.max_k
    out: dict[str, Any] = {"max_k": max_k, "contrasts": {}}
    for contrast in recorded["contrasts"]:
        result, pooled = _fit_contrast(acts, recorded, contrast, max_k)
        out["contrasts"][contrast] = result
        sub = fit_basis(pooled, max_k, contrast=contrast, level="token", inputs="all")
        if contrast == FB:
            sub.save(tmp / FINETUNED_BASE_FILE)
            continue
        sub.save(tmp / SUBSPACE_FILE)
        mean = {layer: x.mean(0).float() for layer, x in pooled.items()}
        method = f"mean_difference_{contrast.replace('-', '_minus_')}"
        SteeringVector(mean, hook_point=recorded["point"], method=method).save(tmp / MEAN_DIFF_FILE)
    out["primary"] = recorded["contrasts"][0]
    return out


def load_contrast_subspace(ctx: StudyContext, name: str, file: str = SUBSPACE_FILE) -> Subspace:
    sub = load(ctx.paths.contrast_fit(name) / file)
    assert isinstance(sub, Subspace)
    return sub


def load_mean_difference(ctx: StudyContext, name: str) -> SteeringVector:
    vec = load(ctx.paths.contrast_fit(name) / MEAN_DIFF_FILE)
    assert isinstance(vec, SteeringVector)
    return vec


def _pair_angles(a: Subspace, b: Subspace, layer: int, k: int) -> dict[str, float]:
    ka = min(k, a.k[layer], b.k[layer])
    ang = principal_angles(a.bases[layer][:ka], b.bases[layer][:ka])
    ov = subspace_overlap(a.bases[layer][:ka], b.bases[layer][:ka])
    return {"mean_angle": float(ang.double().mean()), "overlap": float(ov), "k": ka}


def contrast_geometry(ctx: StudyContext, k: int) -> dict[str, Any]:
    """Geometry of the harmful − benign subspaces: principal angles across ranks, seeds and
    fractions (as :func:`stages.fit.geometry`), and per harmful run and layer its overlap
    with fine-tuned − base (same tokens) and with the harmful adapter's LoRA weight-space
    output directions (o_proj / down_proj, :func:`weight_activation_overlap`); chance
    overlap of random subspaces is about ``k / d_model``."""
    # lazy: circular (the fit stage imports this module)
    from steerlab.study.stages.fit import geometry

    harmful = {n: a for n, (a, _) in ctx.contrasts().items() if not n.startswith("null-")}
    if not harmful:
        return {"k": k, "per_run": {}}
    out = geometry(ctx, harmful, k, loader=load_contrast_subspace)
    per_run = {}
    for name, run in harmful.items():
        hb = load_contrast_subspace(ctx, name)
        fb = load_contrast_subspace(ctx, name, FINETUNED_BASE_FILE)
        updates = lora_updates(ctx.adapter(run))
        try:
            w = weight_activation_overlap(updates, hb.top(min(k, *hb.k.values())))
        except ValueError:
            w = {}
        per_run[name] = {
            str(layer): {
                "finetuned_minus_base": _pair_angles(hb, fb, layer, k),
                "lora_weights": {kind: v for (lyr, kind), v in w.items() if lyr == layer},
            }
            for layer in hb.layers
        }
    out["per_run"] = per_run
    d_model = json.loads((ctx.paths.contrast(next(iter(harmful))) / "unit.json").read_text())
    out["chance_overlap"] = k / d_model["result"]["d_model"]
    return out


def fit_units(ctx: StudyContext) -> list[Unit]:
    """One fit unit per contrast (``subspace-contrast/<name>/``), then their geometry."""
    out = [
        Unit(
            ctx.paths.contrast_fit(name),
            lambda name=name: ctx.contrast_fit_key(name),
            lambda tmp, name=name: fit_contrast(ctx, name, tmp),
        )
        for name in ctx.contrasts()
    ]
    if out:
        out.append(
            Unit(
                ctx.paths.contrast_geometry,
                ctx.contrast_geometry_key,
                lambda tmp: contrast_geometry(ctx, ctx.config.analysis.k),
            )
        )
    return out
