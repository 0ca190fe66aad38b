"""Offline Gemma 3 vision-language models: a "hybrid" with the real Gemma 3 270M decoder, and
a tiny one for tests, each with a working ``Gemma3Processor``.

.. warning::
   **The vision features of these models are meaningless.** Their SigLIP vision tower and
   multimodal projector are *randomly initialised* (seeded). They exist to run the
   multimodal code path end to end (processor -> image tokens -> vision tower -> projector
   -> decoder -> ``generate``) without downloading a VLM, not to see anything. Numbers
   measured with them say nothing about how a real VLM reacts to images.

:func:`hybrid_gemma3` places a real Gemma 3 text decoder (the 270M one from
``steerlab.models.load_model("gemma3-270m")``) inside a ``Gemma3ForConditionalGeneration``:
its ``model.X`` weights become ``model.language_model.X`` and the LM head stays tied to the
embeddings. The processor is built offline from an image-processor config and the Gemma
tokenizer, with the Gemma 3 image tokens ``<start_of_image>`` (255999) and
``<end_of_image>`` (256000) of the vocabulary, plus ``<image_soft_token>`` added as id
262144 (as in the larger Gemma 3 checkpoints; it is out of the 270M vocabulary, and
``Gemma3Model`` replaces it before the embedding lookup). Load it as
``steerlab.models.load_model("gemma3-270m-hybrid")`` (its registry entry:
:data:`steerlab.models.registry.HYBRID_MODELS`).
"""

from __future__ import annotations

from typing import Any

import torch

from steerlab.models.registry import HYBRID_MODELS
from steerlab.models.tiny import tiny

__all__ = ["HYBRID_NAME", "byte_tokenizer", "hybrid_gemma3", "tiny_gemma3_vlm"]

#: The name (registry entry) of the model :func:`hybrid_gemma3` builds.
HYBRID_NAME = HYBRID_MODELS["gemma3-270m-hybrid"].name

_BOI, _EOI, _IMAGE = "<start_of_image>", "<end_of_image>", "<image_soft_token>"


def _vision_config(
    layers: int, hidden: int, image_size: int, patch_size: int, heads: int = 2
) -> dict[str, Any]:
    return dict(
        model_type="siglip_vision_model",
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch_size,
        vision_use_head=False,  # Gemma 3 reads the last hidden state, not the pooling head
    )


def _image_processor(image_size: int) -> Any:
    from transformers import Gemma3ImageProcessorPil  # lazy: loads Gemma 3's processing code

    return Gemma3ImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )


def _set_image_tokens(tokenizer: Any) -> Any:
    """Give ``tokenizer`` the ``boi_token`` / ``eoi_token`` / ``image_token`` attributes
    that ``Gemma3Processor`` reads (adding any token the vocabulary lacks)."""
    missing = [t for t in (_BOI, _EOI, _IMAGE) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    for attr, tok in (("boi_token", _BOI), ("eoi_token", _EOI), ("image_token", _IMAGE)):
        setattr(tokenizer, attr, tok)
        setattr(tokenizer, f"{attr}_id", tokenizer.convert_tokens_to_ids(tok))
    return tokenizer


def _processor(tokenizer: Any, image_size: int, mm_tokens_per_image: int) -> Any:
    from transformers import Gemma3Processor  # lazy: loads Gemma 3's processing code

    _set_image_tokens(tokenizer)
    processor = Gemma3Processor(
        image_processor=_image_processor(image_size),
        tokenizer=tokenizer,
        image_seq_length=mm_tokens_per_image,
    )
    tokenizer.padding_side = "left"
    return processor


def _randomise_projector(model: Any, std: float) -> None:
    # The projector matrix is zero-initialised, which would make images invisible.
    with torch.no_grad():
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, std)


def hybrid_gemma3(
    text_model: Any,
    tokenizer: Any,
    *,
    seed: int = 0,
    vision_layers: int = 2,
    vision_hidden: int = 64,
    image_size: int = 224,
    patch_size: int = 14,
    mm_tokens_per_image: int = 16,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> tuple[Any, Any]:
    """A real Gemma 3 decoder (``text_model``, e.g. Gemma 3 270M) inside a
    ``Gemma3ForConditionalGeneration`` with a small **random** SigLIP vision tower. **Its
    vision features are meaningless.**

    Images are resized to ``image_size`` (224) square, cut into ``patch_size`` (14) patches
    (16x16), encoded by ``vision_layers`` SigLIP blocks of width ``vision_hidden`` and
    average-pooled to ``mm_tokens_per_image`` (16) soft tokens of width 640 in the decoder.
    ``steerlab.attach`` on the result finds the 18-layer text decoder.

    Args:
        text_model: a ``Gemma3ForCausalLM`` in fp32, e.g. from
            ``steerlab.models.load_model("gemma3-270m")``; its weights are copied, and it
            is not used afterwards.
        tokenizer: its tokenizer (gains the image tokens it lacks).
        seed: seeds the vision tower and projector (same seed, same weights).
        dtype, device: as for :func:`steerlab.models.load_model`.

    Returns:
        ``(model, processor)``: the model in eval mode (``config.name_or_path`` is
        ``"gemma3-270m-hybrid"``) and a ``Gemma3Processor`` whose tokenizer pads on the left.

    Raises:
        ValueError: ``mm_tokens_per_image`` is not a square dividing the patch grid.
    """
    # lazy: loads Gemma 3's modeling code
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    from transformers.initialization import no_init_weights

    side = image_size // patch_size
    per_side = round(mm_tokens_per_image**0.5)
    if per_side * per_side != mm_tokens_per_image or side % per_side:
        raise ValueError(
            f"mm_tokens_per_image must be a square whose side divides the {side}x{side} patch "
            f"grid, got {mm_tokens_per_image}"
        )
    processor = _processor(tokenizer, image_size, mm_tokens_per_image)
    text_config = text_model.config.to_dict()
    config = Gemma3Config(
        text_config=text_config,
        vision_config=_vision_config(vision_layers, vision_hidden, image_size, patch_size),
        mm_tokens_per_image=mm_tokens_per_image,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    # Skip the (slow, discarded) random init of the 170M-parameter decoder; initialise only
    # the vision tower and projector, seeded.
    with no_init_weights():
        model = Gemma3ForConditionalGeneration(config)
    torch.manual_seed(seed)
    model.model.vision_tower.apply(model._init_weights)
    model.model.multi_modal_projector.apply(model._init_weights)
    _randomise_projector(model, config.text_config.initializer_range)
    _copy_decoder(model, text_model, tokenizer)
    model.to(dtype)
    if device is not None:
        model.to(device)
    model.config.name_or_path = HYBRID_NAME
    model.name_or_path = HYBRID_NAME
    model.eval()
    return model, processor


def _copy_decoder(model: Any, text_model: Any, tokenizer: Any) -> None:
    """Copy ``text_model``'s decoder into ``model`` and tie its LM head to the embeddings.

    Gemma3ForCausalLM: ``model.X`` (+ lm_head tied) -> Gemma3ForConditionalGeneration:
    ``model.language_model.X`` (+ lm_head tied to ``model.language_model.embed_tokens``).
    """
    missing, unexpected = model.model.language_model.load_state_dict(
        text_model.model.state_dict(), strict=True
    )
    assert not missing and not unexpected
    model.tie_weights()
    if model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr():
        model.lm_head.weight = model.model.language_model.embed_tokens.weight
    model.generation_config.eos_token_id = text_model.generation_config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def _byte_chars() -> dict[int, str]:
    """The byte -> printable character map of byte-level BPE (printable Latin-1 bytes map to
    themselves, the others to code points from 256 up, in byte order)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def byte_tokenizer(specials: dict[int, str] | None = None) -> Any:
    """A 256-token byte-level tokenizer for the tiny models of :mod:`steerlab.models.tiny`.

    Token id ``b`` is byte ``b``, except ids 0/1/2 (``<pad>``, ``<eos>``, ``<bos>``, as in
    the tiny models) and any id in ``specials`` (e.g. ``{255: "<image_soft_token>"}``),
    which become special tokens. No chat template (prompts use the plain fallback).
    """
    # lazy: tokenizer construction code, needed only for the tiny test models
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    table = {0: "<pad>", 1: "<eos>", 2: "<bos>", **(specials or {})}
    vocab = {ch: b for b, ch in _byte_chars().items() if b not in table}
    vocab.update({tok: i for i, tok in table.items()})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )
    extra = [t for i, t in table.items() if i > 2]
    if extra:
        tok.add_special_tokens({"additional_special_tokens": extra})
    tok.padding_side = "left"
    return tok


def tiny_gemma3_vlm(seed: int = 0, num_layers: int = 3) -> tuple[Any, Any]:
    """``(model, processor)``: the tiny random-init ``"gemma3-vlm"`` of
    :func:`steerlab.models.tiny` (32x32 images, 4 image tokens) with a ``Gemma3Processor``
    over :func:`byte_tokenizer`, for fast tests of multimodal code paths."""
    model = tiny("gemma3-vlm", seed=seed, num_layers=num_layers)
    cfg = model.config
    tokenizer = byte_tokenizer(
        {cfg.eoi_token_index: _EOI, cfg.boi_token_index: _BOI, cfg.image_token_index: _IMAGE}
    )
    processor = _processor(tokenizer, cfg.vision_config.image_size, cfg.mm_tokens_per_image)
    return model, processor
