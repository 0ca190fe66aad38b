"""Sampling answers to question sets, batched, resumable, and labelled with every setting.

:func:`sample_answers` draws ``n_samples`` answers per question with the model's chat template
(:func:`steerlab.text.render_prompt`, with its plain ``User:/Assistant:``
fallback for models without one). Vision-language models get each question's image through
their processor. The answers file is JSONL: a header line (settings, model and adapter
identity, intervention, question set) then one line per answer. It is rewritten atomically
after every batch, so an interrupted run resumes at the first unfinished batch, and because
each batch's sampling is seeded from ``(seed, index of its first question)``, the resumed file
equals the one an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from steerlab.eval.questions import Question, QuestionSet, load_questions
from steerlab.files import atomic_path, tensors_digest, text_digest
from steerlab.text import (
    collate_inputs,
    is_processor,
    load_image,
    pad_token_id,
    render_prompt,
    text_ids,
    text_tokenizer,
)

__all__ = [
    "Answer",
    "SamplingConfig",
    "encode_prompts",
    "model_identity",
    "read_answers",
    "sample_answers",
]

FORMAT = "steerlab.answers/1"


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings (all serialisable to JSON).

    Attributes:
        n_samples: answers per question.
        temperature, top_p, top_k, repetition_penalty: the sampler (defaults follow the
            emergent-misalignment evaluations: 0.7, 0.9, 50, 1.1).
        max_new_tokens: cap on generated tokens per answer.
        seed: base seed; each batch is seeded from ``(seed, first question index)``.
        batch_size: prompts per ``generate`` call (each prompt repeated ``n_samples`` times).
        system: optional system prompt.
    """

    n_samples: int = 3
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 8
    system: str | None = None

    def __post_init__(self) -> None:
        for name in ("n_samples", "max_new_tokens", "batch_size", "top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SamplingConfig.{name} must be a positive int, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SamplingConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class Answer:
    """One sampled answer.

    Attributes:
        question_id, category, question, image: copied from the :class:`Question`.
        sample: sample index among the question's ``n_samples`` (0-based).
        answer: the decoded answer (special tokens removed, stripped).
        n_tokens: number of generated tokens (up to and including EOS).
        finished: True when the model emitted EOS before ``max_new_tokens``.
    """

    question_id: str
    sample: int
    answer: str
    category: str = ""
    question: str = ""
    image: str | None = None
    n_tokens: int = 0
    finished: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- inputs


def _takes_images(model: Any) -> bool:
    config = getattr(model, "config", None)
    return config is not None and getattr(config, "vision_config", None) is not None


def check_modality(model: Any, tokenizer_or_processor: Any, questions: Sequence[Question]) -> None:
    """Raise ``ValueError`` when questions with images meet a text-only model or tokenizer
    (answers would silently ignore the image)."""
    with_image = [q.id for q in questions if q.image is not None]
    if not with_image:
        return
    problems = []
    if not _takes_images(model):
        problems.append(f"the model ({type(model).__name__}) has no vision tower")
    if not is_processor(tokenizer_or_processor):
        problems.append(
            f"{type(tokenizer_or_processor).__name__} is not a multimodal processor "
            "(expected a transformers ProcessorMixin with an image_processor and a tokenizer)"
        )
    if problems:
        raise ValueError(
            f"{len(with_image)} question(s) carry an image (e.g. {with_image[0]!r}) but "
            + " and ".join(problems)
            + ". Use a vision-language model and its processor (e.g. "
            "steerlab.models.load_model('gemma3-270m-hybrid')), or a text-only question set."
        )


def encode_prompts(
    tokenizer_or_processor: Any, questions: Sequence[Question], system: str | None = None
) -> list[dict[str, torch.Tensor]]:
    """One model-input dict per question (batch dimension 1, unpadded): ``input_ids`` and
    ``attention_mask`` ``[1, seq]``, plus the processor's image tensors (``pixel_values``,
    ``token_type_ids``, ...) for questions with an image. Join them with
    :func:`steerlab.text.collate_inputs`."""
    out = []
    processor = is_processor(tokenizer_or_processor)
    for q in questions:
        image = processor and q.image is not None
        text = render_prompt(tokenizer_or_processor, q.question, system, image=image)
        if processor:
            kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
            if image:
                kwargs["images"] = [[load_image(q.image)]]
            enc = dict(tokenizer_or_processor(**kwargs))
        else:
            ids = text_ids(tokenizer_or_processor, text)
            enc = {
                "input_ids": torch.tensor([ids]),
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            }
        out.append(enc)
    return out


# --------------------------------------------------------------------------- identity


def _active_hooks(model: torch.nn.Module) -> int:
    """Forward / pre-forward hooks on the model, excluding transformers' own."""
    n = 0
    for module in model.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks):
            n += sum(
                1 for h in hooks.values() if "output_capturing" not in getattr(h, "__name__", "")
            )
    return n


def model_identity(model: Any) -> dict[str, Any]:
    """JSON-serialisable identity of ``model``: class, ``name_or_path``, dtype, number of
    parameters and, for a ``PeftModel``, the active adapter's name, path, config and a
    sha256 fingerprint of its weights (so answers from different adapters never mix)."""
    config = getattr(model, "config", None)
    ident: dict[str, Any] = {
        "class": type(model).__name__,
        "name_or_path": getattr(config, "name_or_path", None)
        or getattr(model, "name_or_path", None),
        "dtype": str(getattr(model, "dtype", "")),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "adapter": None,
    }
    try:
        from peft import PeftModel  # lazy: peft loads transformers (slow)
    except ImportError:  # pragma: no cover - peft is a dependency
        PeftModel = ()  # type: ignore[assignment]
    disabled = getattr(getattr(model, "base_model", None), "disable_adapters", False)
    if isinstance(model, PeftModel) and disabled is not True:
        name = model.active_adapter
        name = name[0] if isinstance(name, (list, tuple)) else name
        cfg = model.peft_config[name]
        weights = sorted(model.state_dict().items())
        own = [(k, t) for k, t in weights if f".{name}." in k or k.endswith(f".{name}")]
        ident["adapter"] = {
            "name": name,
            "path": getattr(model, "_steerlab_adapter_path", None)
            or cfg.to_dict().get("base_model_name_or_path"),
            "type": str(cfg.peft_type),
            "r": getattr(cfg, "r", None),
            "fingerprint": tensors_digest(own),
        }
    return ident


# --------------------------------------------------------------------------- file


def _header(
    model: Any, questions: QuestionSet, sampling: SamplingConfig, intervention: Any
) -> dict[str, Any]:
    ids_digest = text_digest("\n".join(f"{q.id}\t{q.question}\t{q.image}" for q in questions))
    return {
        "format": FORMAT,
        "questions": {
            "name": questions.name,
            "n": len(questions),
            "sha256": ids_digest,
        },
        "sampling": sampling.to_dict(),
        "model": model_identity(model),
        "intervention": intervention,
        "active_hooks": _active_hooks(model),
    }


def read_answers(path: str | os.PathLike) -> tuple[dict[str, Any], list[Answer]]:
    """Read an answers file: ``(header, answers)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an answers file, or a malformed line (named).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty answers file")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line 1: bad header ({exc.msg})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a steerlab answers file (expected format {FORMAT!r})")
    answers = []
    for lineno, text in enumerate(lines[1:], start=2):
        try:
            answers.append(Answer(**json.loads(text)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}, line {lineno}: malformed answer ({exc})") from None
    return header, answers


def _write(path: Path, header: dict[str, Any], answers: list[Answer]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header, ensure_ascii=False) + "\n")
        for a in answers:
            fh.write(json.dumps(a.to_dict(), ensure_ascii=False) + "\n")


_COMPARED = ("format", "questions", "sampling", "model", "intervention")


def _resume(path: Path, header: dict[str, Any]) -> list[Answer]:
    if not path.exists():
        return []
    old, answers = read_answers(path)
    diff = [k for k in _COMPARED if old.get(k) != header[k]]
    if diff:
        raise ValueError(
            f"{path} holds answers made with different {', '.join(diff)} "
            f"(file: {[old.get(k) for k in diff]}; now: {[header[k] for k in diff]}). "
            "Use another output path, or delete the file to start over."
        )
    return answers


# --------------------------------------------------------------------------- sampling


def _batch_seed(seed: int, first_index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{first_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@torch.no_grad()
def _generate_batch(
    model: Any, tok_or_proc: Any, batch: Sequence[Question], sampling: SamplingConfig, seed: int
) -> list[list[tuple[str, int, bool]]]:
    tok = text_tokenizer(tok_or_proc)
    pad = pad_token_id(tok_or_proc)
    encoded = encode_prompts(tok_or_proc, batch, sampling.system)
    repeated = [e for e in encoded for _ in range(sampling.n_samples)]
    inputs = collate_inputs(repeated, pad, side="left")
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items()}
    torch.manual_seed(seed)
    out = model.generate(
        **inputs,
        do_sample=True,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        repetition_penalty=sampling.repetition_penalty,
        max_new_tokens=sampling.max_new_tokens,
        pad_token_id=pad,
    )
    new = out[:, inputs["input_ids"].shape[1] :].cpu()
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    results: list[list[tuple[str, int, bool]]] = []
    for qi in range(len(batch)):
        per_q = []
        for s in range(sampling.n_samples):
            row = new[qi * sampling.n_samples + s].tolist()
            stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
            n_tokens = len(row) if stop is None else stop + 1
            text = tok.decode(row[:n_tokens], skip_special_tokens=True).strip()
            per_q.append((text, n_tokens, stop is not None))
        results.append(per_q)
    return results


def sample_answers(
    model: Any,
    tokenizer_or_processor: Any,
    questions: QuestionSet | str | os.PathLike,
    *,
    sampling: SamplingConfig | None = None,
    out_path: str | os.PathLike | None = None,
    intervention: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Answer]:
    """Sample ``sampling.n_samples`` answers per question, batched with left padding.

    Runs plain forwards / ``generate``, so it works inside ``lab.steer(...)`` or
    ``lab.ablate(...)``: pass ``intervention`` (e.g. ``{"kind": "ablate", "k": 5, "layers":
    [...]}``) so the answers file says what was active (the header also counts the forward
    hooks found on the model, ``active_hooks``).

    Args:
        model: a causal LM, or a vision-language model for questions with images.
        tokenizer_or_processor: its tokenizer, or its processor (``ProcessorMixin``) for a VLM.
        questions: a :class:`QuestionSet` or anything :func:`load_questions` accepts.
        sampling: the settings (default :class:`SamplingConfig`).
        out_path: answers JSONL file. When given, it is rewritten atomically after every
            batch, and an existing file with the same header resumes where it stopped.
        intervention: JSON-serialisable description of an active intervention, or ``None``.
        progress: show a tqdm progress bar.

    Returns:
        The answers, ordered by question then sample.

    Raises:
        ValueError: questions with images but a text-only model or tokenizer; an existing
            ``out_path`` made with different settings, model, questions or intervention.
    """
    sampling = sampling or SamplingConfig()
    questions = load_questions(questions)
    check_modality(model, tokenizer_or_processor, questions)
    header = _header(model, questions, sampling, intervention)
    json.dumps(header)  # fail early on a non-serialisable intervention
    path = Path(out_path) if out_path is not None else None
    answers = _resume(path, header) if path is not None else []
    done = {(a.question_id, a.sample) for a in answers}

    was_training = model.training
    model.eval()
    starts = range(0, len(questions), sampling.batch_size)
    try:
        for start in tqdm(starts, desc=f"sampling {questions.name}", disable=not progress):
            batch = questions[start : start + sampling.batch_size]
            if all((q.id, s) in done for q in batch for s in range(sampling.n_samples)):
                continue
            texts = _generate_batch(
                model, tokenizer_or_processor, batch, sampling, _batch_seed(sampling.seed, start)
            )
            answers = [a for a in answers if a.question_id not in {q.id for q in batch}]
            for q, per_q in zip(batch, texts, strict=True):
                for s, (text, n_tokens, finished) in enumerate(per_q):
                    answers.append(
                        Answer(q.id, s, text, q.category, q.question, q.image, n_tokens, finished)
                    )
            if path is not None:
                _write(path, header, _ordered(answers, questions))
    finally:
        model.train(was_training)
    answers = _ordered(answers, questions)
    if path is not None and not path.exists():
        _write(path, header, answers)
    return answers


def _ordered(answers: list[Answer], questions: QuestionSet) -> list[Answer]:
    order = {q.id: i for i, q in enumerate(questions)}
    return sorted(answers, key=lambda a: (order.get(a.question_id, len(order)), a.sample))
