"""The study's misalignment measurement: one call per (model, arm), returning a JSON-ready
dict with ``score`` (0-100), ``coherence`` and the counts the report needs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steerlab.eval.preference import preference_misalignment
from steerlab.eval.questions import QuestionSet, load_questions
from steerlab.eval.run import evaluate
from steerlab.eval.sampling import SamplingConfig

if TYPE_CHECKING:
    from steerlab.study.config import EvalSection

RESULT_FILE = "result.json"
"""The full :class:`~steerlab.eval.result.EvalResult` a measurement keeps in its directory
(with per-question values)."""


def question_set(config: EvalSection, arm: str, n_questions: int | None = None) -> QuestionSet:
    """The ``arm``'s questions, spread evenly over the set when ``n_questions`` (default:
    ``config.n_questions``; 0 = all) is set, so that every category stays represented."""
    qs = load_questions(config.questions if arm == "text" else config.multimodal_questions)
    n = config.n_questions if n_questions is None else n_questions
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
    *,
    judge: Any = None,
    base_answers: Path | None = None,
    questions: QuestionSet | None = None,
) -> dict[str, Any]:
    """Misalignment of ``model`` on the ``arm`` question set, as configured.

    ``metric = "preference"``: the judge-free preference metric
    (:func:`steerlab.eval.preference.preference_misalignment`). ``metric = "judge"``:
    answers sampled with the configured settings and scored by ``judge`` (built once by the
    study from ``[eval.judge]``), with the base model's answers (``base_answers``) for
    comparative judges; answers and verdicts are kept in ``out_dir`` (resumable).
    ``questions`` replaces the arm's question set (the positive control measures half of it).

    Returns:
        ``{"score": 0-100, "ci": [lo, hi], "n", "n_unparsed", "coherence", "by_category"}``.
        ``coherence`` is the mean NLL per token of the aligned references (nats; lower is
        better) for the preference metric, the judge's mean coherence (0-100) when it
        measures one, else ``None``. With ``out_dir``, the full :class:`EvalResult` is saved
        there as :data:`RESULT_FILE` (``result.json``, and ``result.md``).
    """
    if questions is None:
        questions = question_set(config, arm)
    if config.metric == "preference":
        result = preference_misalignment(
            model, tokenizer_or_processor, questions, batch_size=config.batch_size
        )
        if out_dir is not None:
            result.save(out_dir / RESULT_FILE)
        reference_nll = result.extra.get("reference_nll")  # nats/token
        # The stored key is "coherence" for both metrics (kept: stored results and
        # report.json read it): the reference NLL here, the judge's 0-100 score below.
        coherence_field = reference_nll
    else:
        sampling = SamplingConfig(
            n_samples=config.samples,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            repetition_penalty=config.repetition_penalty,
            max_new_tokens=config.max_new_tokens,
            seed=config.seed,
            batch_size=config.batch_size,
        )
        with tempfile.TemporaryDirectory() as scratch:
            result = evaluate(
                model,
                tokenizer_or_processor,
                questions,
                judge,
                sampling=sampling,
                out_dir=out_dir or scratch,
                base_answers=base_answers
                if base_answers is not None and base_answers.is_file()
                else None,
                progress=False,
            )
        values = [
            u.extra.get("coherence") for u in result.units if u.extra.get("coherence") is not None
        ]
        coherence_field = sum(values) / len(values) if values else None
    return {
        "score": result.mean,
        "ci": list(result.ci),
        "n": result.n,
        "n_unparsed": result.n_unparsed,
        "coherence": coherence_field,
        "by_category": {k: v["mean"] for k, v in result.by_category.items()},
    }
