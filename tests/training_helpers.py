"""Test helpers for steerlab.training: a character tokenizer and a processor for the tiny VLM.

The tiny models of :mod:`steerlab.models.tiny` have a 256-token vocabulary (0 pad, 1 eos,
2 bos; 248-255 reserved for image tokens), so no real tokenizer fits them. These helpers
build one from scratch: one token per printable ASCII character, the Gemma-style chat markers
and image tokens at the ids the tiny Gemma 3 VLM expects.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

BOI, EOI, IMAGE = "<start_of_image>", "<end_of_image>", "<image_soft_token>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def char_tokenizer(chat_template: str | None = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    """A character-level tokenizer with ids < 256 that matches the tiny models."""
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    vocab["<start_of_turn>"] = len(vocab)
    vocab["<end_of_turn>"] = len(vocab)
    while len(vocab) < 248:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    for i in range(248, 253):
        vocab[f"<reserved{i}>"] = i
    vocab[EOI], vocab[BOI], vocab[IMAGE] = 253, 254, 255
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.add_special_tokens([t for t in vocab if t.startswith("<") and len(t) > 1])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        extra_special_tokens={"boi_token": BOI, "eoi_token": EOI, "image_token": IMAGE},
    )
    fast.chat_template = chat_template
    return fast


def tiny_gemma3_processor():
    """A ``Gemma3Processor`` for ``steerlab.models.tiny("gemma3-vlm")``: 32x32 images, 4 image
    tokens each, the character tokenizer above."""
    from transformers import Gemma3ImageProcessorPil, Gemma3Processor

    image_processor = Gemma3ImageProcessorPil(size={"height": 32, "width": 32})
    return Gemma3Processor(
        image_processor=image_processor,
        tokenizer=char_tokenizer(),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=4,
    )
