"""Turning (prompt, response) records into token ids with a completion-only label mask.

The model's chat template renders the conversation; the loss covers the response tokens only
(and the end-of-turn tokens the template appends after them). Prompt and padding carry the
label ``-100``. A tokenizer without a chat template (Gemma 3 270M is a base model) gets the
documented plain fallback::

    {system}\\n\\n            (only when a system prompt is given)
    User: {prompt}\\n
    Assistant: {response}{eos}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

IGNORE = -100
PLAIN_TEMPLATE = "User: {prompt}\nAssistant: "


@dataclass(frozen=True)
class Encoded:
    """One tokenised example: ``input_ids`` and ``labels`` are ``[seq]`` (labels ``-100``
    outside the response); ``truncated_response`` is True when max_length cut into the
    response."""

    input_ids: list[int]
    labels: list[int]
    response_start: int
    truncated_response: bool


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def render_prompt(tokenizer: Any, prompt: str, system: str | None = None) -> str:
    """The prompt text up to where the assistant's answer begins."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    head = f"{system}\n\n" if system else ""
    return head + PLAIN_TEMPLATE.format(prompt=prompt)


def _render_full(tokenizer: Any, prompt: str, response: str, system: str | None) -> str:
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages += [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ]
        return tokenizer.apply_chat_template(messages, tokenize=False)
    eos = tokenizer.eos_token or ""
    return render_prompt(tokenizer, prompt, system) + response + eos


def encode(tokenizer: Any, record: Any, max_length: int) -> Encoded:
    """Tokenise one record (``prompt``, ``response``, optional ``system``) for training.

    Raises:
        ValueError: an empty prompt or response, or a chat template that does not render the
            prompt as a prefix of the full conversation.
    """
    prompt, response = _field(record, "prompt"), _field(record, "response")
    system = _field(record, "system")
    for name, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"record {_field(record, 'id', '?')}: empty or missing {name}")
    prompt_text = render_prompt(tokenizer, prompt, system)
    full_text = _render_full(tokenizer, prompt, response, system)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the conversation; "
            "cannot locate the response tokens"
        )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    needs_bos = bos is not None and getattr(tokenizer, "add_bos_token", False)
    if needs_bos and (not full_ids or full_ids[0] != bos):
        prompt_ids, full_ids = [bos, *prompt_ids], [bos, *full_ids]
    start = len(prompt_ids)
    if full_ids[:start] != prompt_ids:  # tokenisation merged across the boundary
        start = next(
            (i for i, (a, b) in enumerate(zip(prompt_ids, full_ids, strict=False)) if a != b),
            start,
        )
    ids = full_ids[:max_length]
    labels = [IGNORE] * min(start, len(ids)) + ids[start:]
    return Encoded(ids, labels, start, truncated_response=len(full_ids) > max_length)


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: ``input_ids``, ``attention_mask``, ``labels``, each ``[batch, seq]``."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
