"""Judge backend for a local transformers chat model: probabilities read from the logits.

No sampling: for each prompt the backend computes the exact probability that the judge's
answer is each integer 0..100, from the model's next-token distributions.

- Every number ``n`` is spelled as the tokenizer spells ``"n"`` and ``" n"`` (the
  leading-space variant); both spellings count towards ``n``.
- A spelling of several tokens (SmolLM2 and Qwen2.5 split digits: ``"85"`` = ``"8"``,
  ``"5"``) gets the product of its tokens' conditional probabilities, read from one extra
  forward pass over the (few dozen) number prefixes, on top of the cached prompt; the
  prefixes are left-padded so that the head runs on their last position only.
- Where a spelling is also the start of another number (``"1"`` of ``"10"``, ``"10"`` of
  ``"100"``), it is multiplied by the probability that no further digit follows.
- A tokenizer with every number 0..100 as one token (Llama 3 style) reduces to the plain
  first-token softmax restricted to number tokens, as in Betley et al. (2025).

Spellings longer than 100 (``"735"``) are not numbers 0..100; their mass is excluded only
where a prefix is itself an internal node of the number trie (``"10"`` -> ``"100"``); for
a two-digit leaf like ``"73"`` a third digit is not checked (a judge asked for 0-100 almost
never writes one). Prompts are rendered with the tokenizer's chat template, or the plain
fallback of :func:`steerlab.text.render_prompt`, and run in batches (left
padding, explicit position ids).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from steerlab.eval.judges.backends import Completion, Messages
from steerlab.text import pad_ids, pad_token_id, render_prompt, text_tokenizer

__all__ = ["LocalBackend", "number_spellings"]


def number_spellings(tokenizer: Any) -> dict[tuple[int, ...], int]:
    """Token-id spellings of the numbers 0..100: ``{(id, ...): n}``.

    Each number contributes its plain and leading-space spelling when they decode back to
    the number; identical spellings are kept once.

    Raises:
        ValueError: the tokenizer cannot spell any number.
    """
    spellings: dict[tuple[int, ...], int] = {}
    for n in range(101):
        for text in (str(n), f" {n}"):
            ids = tuple(tokenizer.encode(text, add_special_tokens=False))
            if ids and tokenizer.decode(list(ids)).strip() == str(n):
                spellings.setdefault(ids, n)
    if not spellings:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} cannot spell the numbers 0..100")
    return spellings


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError(f"message content must be a string or a list of parts, got {content!r}")


class LocalBackend:
    """A transformers causal LM as a judge (text only).

    Args:
        model: a causal LM in eval mode (e.g. from :func:`steerlab.models.load_model`).
        tokenizer: its tokenizer (or processor).
        batch_size: prompts per forward pass. The number-prefix pass repeats each prompt's
            KV cache once per prefix (21 prefixes for a digit-splitting tokenizer), so memory
            grows as ``batch_size * 21 * prompt_length``.
        name: identifies the judge model (default: the model's ``name_or_path``).
        prefill: text the judge's reply is forced to start with (appended after the
            generation prompt), e.g. ``"Score: "`` to steer a small judge into the number
            format; the numbers are then read right after it. Default: none.

    Raises:
        ValueError: the tokenizer cannot spell numbers, or ``batch_size`` < 1.
    """

    vision = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 2,
        name: str | None = None,
        prefill: str = "",
    ) -> None:
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.model = model
        self.tokenizer = text_tokenizer(tokenizer)
        self.batch_size = batch_size
        self.prefill = prefill
        label = name or getattr(model, "name_or_path", "") or type(model).__name__
        self.name = f"local:{label}" + (f"+prefill={prefill!r}" if prefill else "")
        self._keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        tok = self.tokenizer
        self.spellings = number_spellings(tok)
        prefixes = {s[:k] for s in self.spellings for k in range(1, len(s))}
        self.nodes: list[tuple[int, ...]] = sorted(prefixes, key=lambda s: (len(s), s))
        self._node_index = {node: i for i, node in enumerate(self.nodes)}
        # Tokens that would extend a number ("7" after "1"): decoded text starts with a digit.
        texts = tok.batch_decode([[i] for i in range(len(tok))])
        self._digit_ids = torch.tensor(
            [i for i, t in enumerate(texts) if t[:1].isdigit()], dtype=torch.long
        )
        self._pad = pad_token_id(tok)

    def check(self) -> None:
        """Nothing to check: the model is already in memory."""

    def _encode(self, messages: Messages) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            plain = [{"role": m["role"], "content": _message_text(m["content"])} for m in messages]
            text = tok.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
            return list(tok(text + self.prefill, add_special_tokens=False)["input_ids"])
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = "\n\n".join(_message_text(m["content"]) for m in messages if m["role"] == "user")
        return list(tok(render_prompt(tok, user, system) + self.prefill)["input_ids"])

    @torch.no_grad()
    def _chunk(self, requests: Sequence[Messages]) -> list[Completion]:
        device = next(self.model.parameters()).device
        ids = [self._encode(m) for m in requests]
        n = len(ids)
        padded = pad_ids(ids, self._pad, side="left")
        input_ids, mask = padded["input_ids"], padded["attention_mask"]
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=position_ids.to(device),
            use_cache=bool(self.nodes),
            **({"logits_to_keep": 1} if self._keep else {}),
        )
        root = torch.softmax(out.logits[:, -1].float(), dim=-1).cpu()  # [n, vocab]
        k = len(self.nodes)
        node_probs = None
        if k:
            # row i * k + j continues prompt i with node j, left-padded so that every
            # node ends at the last position: only that position's logits are computed
            continued = pad_ids(self.nodes * n, self._pad, side="left")
            cont, cmask = continued["input_ids"], continued["attention_mask"]
            depth = cont.shape[1]
            node_len = torch.tensor([len(node) for node in self.nodes] * n)
            cache = out.get("cache")
            if cache is None:  # transformers before the ``cache`` rename
                cache = out.past_key_values
            cache.batch_repeat_interleave(k)
            # transformers >= 5.2x names the argument ``cache``; older ones past_key_values
            params = inspect.signature(self.model.forward).parameters
            cache_arg = {"cache" if "cache" in params else "past_key_values": cache}
            lengths = mask.sum(-1).repeat_interleave(k)
            offset = (torch.arange(depth)[None, :] - (depth - node_len)[:, None]).clamp(min=0)
            out2 = self.model(
                input_ids=cont.to(device),
                attention_mask=torch.cat([mask.repeat_interleave(k, 0), cmask], 1).to(device),
                position_ids=(lengths[:, None] + offset).to(device),
                use_cache=True,
                **cache_arg,
                **({"logits_to_keep": 1} if self._keep else {}),
            )
            picked = out2.logits[:, -1].float()  # [n * k, vocab]
            node_probs = torch.softmax(picked, dim=-1).cpu().view(n, k, -1)  # [n, k, vocab]
        results = []
        for row in range(n):
            results.append(
                Completion(
                    text=self.tokenizer.decode([int(root[row].argmax())]),
                    number_probs=self._number_probs(
                        root[row], None if node_probs is None else node_probs[row]
                    ),
                )
            )
        return results

    def _number_probs(self, root: torch.Tensor, nodes: torch.Tensor | None) -> dict[int, float]:
        """Exact P(answer = n) from the root distribution ``[vocab]`` and the per-prefix
        distributions ``[k, vocab]`` (see the module docstring)."""

        def dist(prefix: tuple[int, ...]) -> torch.Tensor:
            return root if not prefix else nodes[self._node_index[prefix]]

        probs: dict[int, float] = {}
        for spelling, number in self.spellings.items():
            p = 1.0
            for i, token in enumerate(spelling):
                p *= float(dist(spelling[:i])[token])
            if spelling in self._node_index:  # "1" of "10": no further digit
                p *= 1.0 - float(dist(spelling)[self._digit_ids].sum())
            probs[number] = probs.get(number, 0.0) + p
        return probs

    def complete(self, requests: Sequence[Messages]) -> list[Completion]:
        """One Completion per request (``number_probs`` set; ``text`` = the most likely
        first token). A request that fails (e.g. too long for the model) becomes a failed
        Completion instead of raising."""
        results: list[Completion] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            try:
                results.extend(self._chunk(chunk))
            except (RuntimeError, ValueError, IndexError) as exc:
                if len(chunk) == 1:
                    results.append(Completion.failed(f"local judge failed: {exc}"))
                else:  # isolate the bad request
                    results.extend(self._one_by_one(chunk))
        return results

    def _one_by_one(self, chunk: Sequence[Messages]) -> list[Completion]:
        out = []
        for request in chunk:
            try:
                out.extend(self._chunk([request]))
            except (RuntimeError, ValueError, IndexError) as exc:
                out.append(Completion.failed(f"local judge failed: {exc}"))
        return out
