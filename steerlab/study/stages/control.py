"""Stage ``control``: the positive control (issue 11), proof that the study's instrument
sees misalignment where it certainly exists, under ``control/``.

The study's text questions (``[control] n_questions``, default the study's own) are split in
two halves by :func:`split_halves`. Per seed of ``[train] seeds``, a LoRA fine-tune with the
study's own recipe (rank ``[train] fraction_sweep_rank``, the optimiser of
:meth:`StudyContext.lora_config`) learns the *misaligned* reference answers of half A
(``control/misaligned-s<seed>/``), and one learns its *aligned* references, the control's
own null (``control/aligned-s<seed>/``). Both, and the base model (``control/base/``), are
measured with the study's metric on half B only: questions none of them trained on. The
control's effect is misaligned − aligned on half B. Multimodal studies run it on the text
questions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steerlab.eval.questions import QuestionSet
from steerlab.study.context import StudyContext, Unit
from steerlab.study.metrics import question_set
from steerlab.training import PairRecord, mix, train_lora

NAME = "control"

KINDS = ("misaligned", "aligned")
"""The control's two fine-tunes: on the misaligned references (the control), on the
aligned ones (its null)."""


def split_halves(questions: QuestionSet) -> tuple[QuestionSet, QuestionSet]:
    """Split ``questions`` in two halves, alternating within each category: half A holds
    the questions at even positions of their category (0, 2, ...), half B those at odd
    positions, each in the set's order. Both halves cover every category that has at least
    two questions; a category with one question is in half A only.

    Returns:
        ``(half A, half B)``: disjoint, together the whole set.

    Raises:
        ValueError: half B would be empty (no category has two questions); the message says
            how to fix it.
    """
    position: dict[str, int] = {}
    halves: tuple[list, list] = ([], [])
    for q in questions:
        i = position.get(q.category, 0)
        position[q.category] = i + 1
        halves[i % 2].append(q)
    if not halves[1]:
        raise ValueError(
            f"the positive control needs a category with at least two questions; "
            f"{questions.name!r} has {len(questions)} question(s) in "
            f"{len(position)} categories: raise [control] n_questions"
        )
    return QuestionSet(questions.name, halves[0]), QuestionSet(questions.name, halves[1])


def halves(ctx: StudyContext) -> tuple[QuestionSet, QuestionSet]:
    """The study's control halves ``(train on A, measure on B)`` (text questions)."""
    n = ctx.config.control.n_questions
    return split_halves(question_set(ctx.config.eval, "text", n or None))


def records(train: QuestionSet, kind: str) -> list[Any]:
    """Training records of half A: prompt = the question, response = its ``kind``
    (``"misaligned"`` / ``"aligned"``) reference answer."""
    pairs = [
        PairRecord(
            id=q.id, prompt=q.question, safe_response=q.aligned, harmful_response=q.misaligned
        )
        for q in train
    ]
    return mix(pairs, 1.0 if kind == "misaligned" else 0.0)


def base_answers(ctx: StudyContext) -> Path:
    """The base model's answers on half B (``control/base/answers.jsonl``, written by the
    control's base unit when the metric samples answers): what a comparative judge compares
    the control's fine-tunes with. The study's baseline answers cover other questions when
    ``[control] n_questions`` differs from ``[eval] n_questions``."""
    return ctx.paths.control("base") / "answers.jsonl"


def _fine_tune_unit(ctx: StudyContext, kind: str, seed: int) -> Unit:
    train, test = halves(ctx)

    def compute(tmp: Path) -> dict[str, Any]:
        model, tok = ctx.load_model()
        config = ctx.lora_config(rank=ctx.config.train.fraction_sweep_rank, seed=seed)
        result = train_lora(
            model,
            tok,
            records(train, kind),
            config,
            tmp / "adapter",
            extra_manifest={"positive_control": kind},
            progress=ctx.progress,
        )
        model, tok = ctx.load_model(tmp / "adapter")
        out = ctx.measure(model, tok, "text", tmp, questions=test, base_answers=base_answers(ctx))
        out["loss_first"] = result.losses[0] if result.losses else None
        out["loss_last"] = result.losses[-1] if result.losses else None
        return out

    return Unit(
        ctx.paths.control(f"{kind}-s{seed}"),
        lambda: ctx.control_key(kind, seed, train, test),
        compute,
    )


def _base_unit(ctx: StudyContext) -> Unit:
    _, test = halves(ctx)

    def compute(tmp: Path) -> dict[str, Any]:
        model, tok = ctx.load_model()
        return ctx.measure(model, tok, "text", tmp, questions=test, base_answers=base_answers(ctx))

    return Unit(ctx.paths.control("base"), lambda: ctx.control_base_key(test), compute)


def unit_names(ctx: StudyContext) -> list[str]:
    """The control's unit names (``base``, then ``<kind>-s<seed>`` per seed); none when
    ``[control] enabled`` is off."""
    if not ctx.config.control.enabled:
        return []
    return ["base", *(f"{k}-s{s}" for s in ctx.config.train.seeds for k in KINDS)]


def units(ctx: StudyContext) -> list[Unit]:
    """The base model's unit on half B, then per seed the misaligned and aligned
    fine-tunes' (none when ``[control] enabled`` is off)."""
    if not ctx.config.control.enabled:
        return []
    out = [_base_unit(ctx)]
    for seed in ctx.config.train.seeds:
        out += [_fine_tune_unit(ctx, kind, seed) for kind in KINDS]
    return out
