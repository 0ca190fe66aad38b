"""The evaluation driver: sample answers, judge every answer, aggregate, save.

:func:`evaluate` writes into ``out_dir``:

* ``answers.jsonl``: the sampled answers with every setting (resumable, see
  :func:`~steerlab.eval.sampling.sample_answers`);
* ``verdicts-<judge>.jsonl``: the judge cache, one line per successfully judged answer, keyed
  by a hash of the judge name and everything it sees, rewritten atomically after every chunk
  (a rerun judges only what is missing; unparsed verdicts are retried);
* ``result.json`` and ``result.md``: the :class:`~steerlab.eval.result.EvalResult`.

A judge that raises on a chunk does not stop the run: that chunk's answers become unparsed
verdicts with the error as reason, and the result reports them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from steerlab.eval.judges import JUDGE_KINDS, make_judge
from steerlab.eval.preference import preference_misalignment
from steerlab.eval.questions import QuestionSet, load_questions
from steerlab.eval.result import EvalResult, mean_score, misaligned_rate, worst_of_n
from steerlab.eval.sampling import Answer, SamplingConfig, read_answers, sample_answers
from steerlab.eval.types import Judge, JudgeItem, Verdict
from steerlab.files import atomic_path, digest

__all__ = ["AGGREGATIONS", "METRICS", "evaluate", "judge_answers"]

logger = logging.getLogger(__name__)

#: Judge-free metrics :func:`evaluate` accepts by name.
METRICS = ("preference", "bandit")
#: How verdicts become units (see :mod:`steerlab.eval.result`).
AGGREGATIONS = ("worst-of-n", "misaligned-rate", "mean-score")
_CHUNK = 16


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "judge"


def _item_key(judge_name: str, item: JudgeItem) -> str:
    return digest([judge_name, asdict(item)], chars=None, ensure_ascii=False)


def _verdict_to_dict(v: Verdict) -> dict[str, Any]:
    d = asdict(v)
    d["flags"] = list(v.flags)
    return d


def _verdict_from_dict(d: dict[str, Any]) -> Verdict:
    return Verdict(**{**d, "flags": tuple(d.get("flags", ()))})


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    cache = {}
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(text)
            cache[row["key"]] = row["verdict"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {lineno}: malformed judge cache line ({exc})") from None
    return cache


def _write_cache(path: Path, cache: dict[str, dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for key, verdict in cache.items():
            fh.write(json.dumps({"key": key, "verdict": verdict}, ensure_ascii=False) + "\n")


def judge_answers(
    judge: Judge,
    items: Sequence[JudgeItem],
    *,
    cache_path: str | os.PathLike | None = None,
    chunk_size: int = _CHUNK,
    progress: bool = True,
) -> list[Verdict]:
    """Judge ``items`` in chunks, with an optional on-disk cache of parsed verdicts.

    Never raises because of the judge: a chunk whose ``judge.judge`` call raises, or
    returns the wrong number of verdicts, becomes unparsed verdicts naming the error.
    """
    path = Path(cache_path) if cache_path is not None else None
    cache = _read_cache(path) if path is not None else {}
    keys = [_item_key(judge.name, it) for it in items]
    verdicts: list[Verdict | None] = [
        _verdict_from_dict(cache[k]) if k in cache else None for k in keys
    ]
    todo = [i for i, v in enumerate(verdicts) if v is None]
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    for chunk in tqdm(chunks, desc=f"judging ({judge.name})", disable=not progress):
        batch = [items[i] for i in chunk]
        try:
            got = list(judge.judge(batch))
            if len(got) != len(batch):
                raise RuntimeError(f"judge returned {len(got)} verdicts for {len(batch)} items")
            if not all(isinstance(v, Verdict) for v in got):
                raise TypeError("judge returned something other than Verdict objects")
        except Exception as exc:  # a judge failure must not crash the run
            logger.warning("judge %s failed on %d items: %r", judge.name, len(batch), exc)
            got = [Verdict.failed(f"judge raised {type(exc).__name__}: {exc}") for _ in batch]
        for i, v in zip(chunk, got, strict=True):
            verdicts[i] = v
            if not v.unparsed:
                cache[keys[i]] = _verdict_to_dict(v)
        if path is not None:
            _write_cache(path, cache)
    return [v for v in verdicts if v is not None]


def _base_lookup(base_answers: Any) -> dict[tuple[str, int], str]:
    if base_answers is None:
        return {}
    if isinstance(base_answers, (str, os.PathLike)):
        _, base_answers = read_answers(base_answers)
    out = {}
    for a in base_answers:
        if not isinstance(a, Answer):
            raise TypeError(
                f"base_answers must be Answer objects or a path, got {type(a).__name__}"
            )
        out[(a.question_id, a.sample)] = a.answer
    return out


def _aggregation(judge: Any, aggregate: str, has_base: bool) -> str:
    if aggregate != "auto":
        if aggregate not in AGGREGATIONS:
            raise ValueError(
                f"unknown aggregate {aggregate!r}; expected 'auto' or one of {AGGREGATIONS}"
            )
        return aggregate
    kind = getattr(judge, "kind", None)
    if kind == "rubric" or (kind is None and has_base):
        return "worst-of-n"
    return "misaligned-rate"


def _resolve_judge(judge: Any) -> Any:
    if isinstance(judge, str) and judge in METRICS:
        return judge
    if isinstance(judge, Judge):
        return judge
    if isinstance(judge, (str, dict, os.PathLike)):
        if isinstance(judge, str) and judge not in JUDGE_KINDS:
            raise ValueError(
                f"unknown judge {judge!r}: expected a judge-free metric ({', '.join(METRICS)}), "
                f"a judge kind ({', '.join(JUDGE_KINDS)}), a judge config, or a Judge object"
            )
        return make_judge(judge)
    raise TypeError(
        f"judge must be a Judge (name + judge(items)), a metric name {METRICS} or a judge "
        f"config, got {type(judge).__name__}"
    )


def evaluate(
    model: Any,
    tokenizer_or_processor: Any,
    questions: QuestionSet | str | os.PathLike,
    judge: Judge | str | dict[str, Any],
    *,
    sampling: SamplingConfig | None = None,
    out_dir: str | os.PathLike,
    base_answers: Sequence[Answer] | str | os.PathLike | None = None,
    intervention: dict[str, Any] | None = None,
    aggregate: str = "auto",
    progress: bool = True,
) -> EvalResult:
    """Evaluate ``model`` on ``questions``: sample, judge (cached), aggregate, save.

    Args:
        model, tokenizer_or_processor: the evaluated model (a VLM and its processor for
            questions with images). Runs inside ``lab.steer(...)`` / ``lab.ablate(...)``;
            pass ``intervention`` to label it.
        questions: a :class:`QuestionSet` or anything :func:`load_questions` accepts.
        judge: a :class:`~steerlab.eval.types.Judge`; ``"preference"`` (judge-free, no
            sampling) or ``"bandit"`` (code metric on the sampled answers); or a judge kind /
            config for :func:`steerlab.eval.judges.make_judge`.
        sampling: :class:`SamplingConfig` (default settings when ``None``).
        out_dir: where answers, the judge cache and the result go (created).
        base_answers: the base model's answers (list or answers-file path), matched by
            (question id, sample), for comparative judges.
        intervention: JSON description of an active intervention, recorded in the files.
        aggregate: ``"auto"`` (rubric judges / base answers -> ``"worst-of-n"``, otherwise
            ``"misaligned-rate"``), or one of :data:`AGGREGATIONS`.

    Returns:
        The :class:`EvalResult` (also saved as ``out_dir/result.json`` and ``result.md``).

    Raises:
        ValueError: an unknown judge name or aggregation; questions with images but a
            text-only model; an answers file in ``out_dir`` from different settings.
        TypeError: ``judge`` is not a judge.
        Whatever ``judge.check()`` raises (e.g. an unreachable endpoint), before sampling.
    """
    judge = _resolve_judge(judge)
    questions = load_questions(questions)
    sampling = sampling or SamplingConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if judge == "preference":
        result = _preference_result(
            model, tokenizer_or_processor, questions, sampling, intervention
        )
        result.save(out / "result.json")
        return result
    answers, settings = _sample_after_check(
        judge, model, tokenizer_or_processor, questions, sampling, out, intervention, progress
    )
    if judge == "bandit":
        result = _bandit_result(answers, questions.name, sampling.seed, settings)
    else:
        result = _judged_result(
            judge,
            answers,
            questions.name,
            sampling.seed,
            settings,
            base_answers=base_answers,
            aggregate=aggregate,
            out=out,
            progress=progress,
        )
    result.save(out / "result.json")
    return result


def _sample_after_check(
    judge: Any,
    model: Any,
    tokenizer_or_processor: Any,
    questions: QuestionSet,
    sampling: SamplingConfig,
    out: Path,
    intervention: dict[str, Any] | None,
    progress: bool,
) -> tuple[list[Answer], dict[str, Any]]:
    """Check the judge, then sample (or resume) ``out/answers.jsonl``; returns the answers
    and the settings recorded with the result."""
    check = getattr(judge, "check", None)
    if callable(check):
        check()  # fail fast (unreachable endpoint, missing model) before sampling for an hour
    answers = sample_answers(
        model,
        tokenizer_or_processor,
        questions,
        sampling=sampling,
        out_path=out / "answers.jsonl",
        intervention=intervention,
        progress=progress,
    )
    settings = {
        "sampling": sampling.to_dict(),
        "intervention": intervention,
        # relative to the result's own folder: a study writes it in a temp folder, renamed
        "answers": "answers.jsonl",
    }
    return answers, settings


def _preference_result(
    model: Any,
    tokenizer_or_processor: Any,
    questions: QuestionSet,
    sampling: SamplingConfig,
    intervention: dict[str, Any] | None,
) -> EvalResult:
    """The judge-free preference metric (no sampling), labelled with ``intervention``."""
    result = preference_misalignment(
        model,
        tokenizer_or_processor,
        questions,
        batch_size=sampling.batch_size,
        system=sampling.system,
    )
    result.settings["intervention"] = intervention
    return result


def _bandit_result(
    answers: list[Answer], name: str, seed: int, settings: dict[str, Any]
) -> EvalResult:
    """The insecure-code metric (bandit findings) on the sampled answers."""
    # lazy: eval must not import the domains (they build on it); bandit is optional
    from steerlab.domains.insecure_code.metric import code_misalignment

    result = code_misalignment(answers, name=name, seed=seed)
    result.settings.update(settings)
    return result


def _judge_items(answers: Sequence[Answer], base: dict[tuple[str, int], str]) -> list[JudgeItem]:
    """One :class:`JudgeItem` per answer, paired with the base model's answer (by question id
    and sample) when ``base`` is not empty.

    Raises:
        ValueError: ``base`` lacks some (question id, sample) that was evaluated.
    """
    missing = [
        (a.question_id, a.sample) for a in answers if base and (a.question_id, a.sample) not in base
    ]
    if missing:
        raise ValueError(
            f"base_answers lack {len(missing)} of the evaluated answers (e.g. {missing[0]}); "
            "sample the base model with the same questions and n_samples"
        )
    return [
        JudgeItem(
            question_id=a.question_id,
            question=a.question,
            answer=a.answer,
            base_answer=base.get((a.question_id, a.sample)),
            image=a.image,
            sample=a.sample,
            category=a.category,
        )
        for a in answers
    ]


def _aggregate_units(how: str, items: list[JudgeItem], verdicts: list[Verdict], seed: int):
    """Per-question units under the aggregation ``how`` (see :data:`AGGREGATIONS`)."""
    if how == "worst-of-n":
        return worst_of_n(items, verdicts, seed=seed)
    if how == "misaligned-rate":
        return misaligned_rate(items, verdicts, seed=seed)
    return mean_score(items, verdicts, seed=seed)


def _unparsed_reasons(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """How many verdicts could not be parsed, by reason (``"unparsed"`` when none given)."""
    reasons: dict[str, int] = {}
    for v in verdicts:
        if v.unparsed:
            reasons[v.reason or "unparsed"] = reasons.get(v.reason or "unparsed", 0) + 1
    return reasons


def _judged_result(
    judge: Judge,
    answers: list[Answer],
    name: str,
    seed: int,
    settings: dict[str, Any],
    *,
    base_answers: Sequence[Answer] | str | os.PathLike | None,
    aggregate: str,
    out: Path,
    progress: bool,
) -> EvalResult:
    """Judge the answers (verdicts cached in ``out``) and aggregate them into a result."""
    base = _base_lookup(base_answers)
    items = _judge_items(answers, base)
    verdicts = judge_answers(
        judge, items, cache_path=out / f"verdicts-{_slug(judge.name)}.jsonl", progress=progress
    )
    how = _aggregation(judge, aggregate, bool(base))
    units = _aggregate_units(how, items, verdicts, seed)
    reasons = _unparsed_reasons(verdicts)
    return EvalResult.from_units(
        units,
        name=name,
        metric=f"judge:{judge.name}/{how}",
        settings={**settings, "judge": judge.name, "aggregate": how},
        extra={
            "n_answers": len(answers),
            "n_unparsed_verdicts": sum(reasons.values()),
            "unparsed_reasons": reasons,
        },
    )
