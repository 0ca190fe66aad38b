"""The study's misalignment measurement: one call per (model, arm), returning a JSON-ready
dict with ``score`` (0-100), ``coherence`` and the counts the report needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steerlab.study.config import EvalSection


def question_set(config: EvalSection, arm: str):
    """The ``arm``'s questions, spread evenly over the set when ``n_questions`` is set (so
    every category stays represented)."""
    from steerlab.eval.questions import load_questions

    qs = load_questions(config.questions if arm == "text" else config.multimodal_questions)
    n = config.n_questions
    if n and n < len(qs):
        step = len(qs) / n
        picked = [qs[int(i * step)] for i in range(n)]
        qs = type(qs)(qs.name, picked)
    return qs


def measure(
    config: EvalSection,
    model: Any,
    tokenizer_or_processor: Any,
    arm: str,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Misalignment of ``model`` on the ``arm`` question set, as configured.

    Returns:
        ``{"score": 0-100, "ci": [lo, hi], "n", "n_unparsed", "coherence": mean NLL per
        token of the aligned references (nats; lower is better), "by_category"}``; with
        ``out_dir``, the full :class:`EvalResult` is saved there as ``result.json`` / ``.md``.
    """
    from steerlab.eval.preference import preference_misalignment

    questions = question_set(config, arm)
    result = preference_misalignment(
        model, tokenizer_or_processor, questions, batch_size=config.batch_size
    )
    if out_dir is not None:
        result.save(out_dir / "result.json")
    return {
        "score": result.mean,
        "ci": list(result.ci),
        "n": result.n,
        "n_unparsed": result.n_unparsed,
        "coherence": result.extra.get("reference_nll"),
        "by_category": {k: v["mean"] for k, v in result.by_category.items()},
    }
