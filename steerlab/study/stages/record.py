"""Stage ``record``: fine-tuned − base activation differences on the training domain's
responses, with the adapter enabled and disabled on one ``PeftModel``, streamed to disk
under ``acts/<run>/``; then harmful − benign (and the benign − benign null) differences with
both adapters on one base, on the domain's prompts and the broad questions' teacher-forced
references, under ``contrast/<name>/`` (:mod:`steerlab.study.contrast`; arXiv:2602.16931 and
the design card: the input of the misalignment subspace).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steerlab.hooks import attach
from steerlab.hooks.collect import PairedStores, collect_paired, encode_examples
from steerlab.study import contrast
from steerlab.study.context import MEAN_SHIFT_FILE, Run, StudyContext, Unit
from steerlab.vectors import SteeringVector

if TYPE_CHECKING:
    from steerlab.study.config import RecordSection

NAME = "record"


def resolve_layers(layers: list[int], num_layers: int) -> list[int]:
    """Negative layers count from the end; every layer must exist.

    Raises:
        ValueError: a layer outside ``-num_layers .. num_layers - 1``.
    """
    out = []
    for layer in layers:
        if not -num_layers <= layer < num_layers:
            raise ValueError(
                f"[record] layer {layer} does not exist: the model has {num_layers} layers "
                f"(valid: {-num_layers}..{num_layers - 1})"
            )
        out.append(layer % num_layers)
    return sorted(set(out))


def record_differences(
    model: Any,
    tokenizer: Any,
    pairs: Any,
    config: RecordSection,
    out_dir: Path,
    *,
    max_length: int = 512,
) -> dict[str, Any]:
    """Record ``fine-tuned − base`` activations at ``config.layers`` on the response tokens
    of the first ``config.n_examples`` harmful responses of ``pairs``, with the adapter of
    the ``PeftModel`` ``model`` enabled and disabled; shards go to ``out_dir/diff``.

    Also stores the per-layer mean difference (``mean_shift.safetensors``, a
    :class:`SteeringVector` ``{layer: [d_model]}``), the steering direction of the
    mitigation stage.

    Returns:
        ``{"layers", "n_tokens", "mean_shift_norm": {layer: float}, "separation": {layer:
        float}}``; separation is ‖mean difference‖ / √(trace of the covariance of the
        differences): how consistently the adapter shifts that layer.
    """
    n = min(config.n_examples, len(pairs))
    chosen = list(pairs)[:n]
    examples = encode_examples(
        tokenizer,
        [p.prompt for p in chosen],
        [p.harmful_response for p in chosen],
        max_length=max_length,
    )
    lab = attach(model)
    layers = resolve_layers(config.layers, lab.num_layers)
    d_model = lab.d_model
    lab.detach()
    stores = collect_paired(
        model,
        examples,
        out_dir,
        layers=layers,
        points=(config.point,),
        batch_size=config.batch_size,
        pad_token_id=getattr(tokenizer, "pad_token_id", None),
    )
    means, separation = _mean_shift(stores, layers, config.point)
    SteeringVector(means, hook_point=config.point, method="mean_shift_finetuned_minus_base").save(
        out_dir / MEAN_SHIFT_FILE
    )
    return {
        "layers": layers,
        "point": config.point,
        "n_examples": n,
        "n_tokens": stores.n_tokens,
        "d_model": d_model,
        "mean_shift_norm": {str(layer): float(v.norm()) for layer, v in means.items()},
        "separation": separation,
    }


def _mean_shift(
    stores: PairedStores, layers: list[int], point: str
) -> tuple[dict[int, Any], dict[str, float]]:
    """Per layer: the mean difference ``[d_model]`` and its separation (‖mean‖ / spread)."""
    means, separation = {}, {}
    for layer in layers:
        total, sq, count = None, 0.0, 0
        for chunk in stores.diff.iter_chunks((layer, point), chunk_tokens=65536):
            c = chunk.double()
            total = c.sum(0) if total is None else total + c.sum(0)
            sq += float(c.pow(2).sum())
            count += c.shape[0]
        mean = total / count
        spread = max(sq / count - float(mean @ mean), 0.0)  # trace of the covariance
        means[layer] = mean.float()
        separation[str(layer)] = float(mean.norm()) / math.sqrt(spread) if spread > 0 else 0.0
    return means, separation


def _compute(ctx: StudyContext, run: Run, tmp: Path) -> dict[str, Any]:
    model, tok = ctx.load_model(ctx.adapter(run))
    return record_differences(
        model, tok, ctx.pairs, ctx.config.record, tmp, max_length=ctx.config.train.max_length
    )


def units(ctx: StudyContext) -> list[Unit]:
    """One unit per run: ``acts/<run>/`` (``diff`` shards and ``mean_shift.safetensors``),
    then one per contrast (:func:`steerlab.study.contrast.record_units`)."""
    return [
        Unit(
            ctx.paths.acts(run.name),
            lambda run=run: ctx.record_key(run),
            lambda tmp, run=run: _compute(ctx, run, tmp),
        )
        for run in ctx.runs()
    ] + contrast.record_units(ctx)
