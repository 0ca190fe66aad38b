"""Tiny random-init models of every supported architecture, built offline from configs.

These models exist for tests and examples: they are small enough to build and run in a
fraction of a second on a CPU, yet they use the real ``transformers`` classes, so module
paths, hook points, caching and generation behave exactly as in the full-size models.

All text decoders have hidden size 64 and a vocabulary of 256 tokens. Token ids ``0``,
``1`` and ``2`` are pad, eos and bos; vision-language models reserve the top of the
vocabulary (ids 248-255) for image / wrapper tokens. Vision towers are tiny too (hidden
size 32, 32x32 images) but always have **more** blocks than the text decoder, so that
tests can tell when something hooks the vision tower by mistake.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel

__all__ = [
    "TEXT_FAMILIES",
    "TINY_FAMILIES",
    "VLM_FAMILIES",
    "tiny",
    "tiny_inputs",
    "tiny_tokenizer",
]

TEXT_FAMILIES: tuple[str, ...] = (
    "llama",
    "gemma2",
    "gemma3",
    "qwen2",
    "qwen3",
    "mistral",
    "phi3",
    "gpt2",
    "gpt_neox",
    "opt",
)
"""Text-only decoder families that :func:`tiny` can build."""

VLM_FAMILIES: tuple[str, ...] = ("gemma3-vlm", "llava", "qwen2-vl", "smolvlm", "paligemma")
"""Vision-language families that :func:`tiny` can build."""

TINY_FAMILIES: tuple[str, ...] = TEXT_FAMILIES + VLM_FAMILIES
"""Every family that :func:`tiny` can build."""

# Sizes shared by every tiny model.
_HIDDEN = 64
_HEADS = 4
_KV_HEADS = 2
_HEAD_DIM = _HIDDEN // _HEADS
_FFN = 128
_VOCAB = 256
_MAX_POS = 512
_PAD, _EOS, _BOS = 0, 1, 2
# Reserved ids at the top of the vocabulary (only used by the VLMs).
_IMAGE = 255
_BOI = 254  # begin-of-image / vision-start
_EOI = 253  # end-of-image / vision-end
_VIDEO = 252  # Qwen2-VL video placeholder (never emitted by tiny_inputs)
_FIRST_RESERVED = 248

# Vision tower sizes.
_V_HIDDEN = 32
_V_HEADS = 2
_V_FFN = 64
_IMAGE_SIZE = 32
_PATCH = 8

# model_type of the top-level config -> family name.
_MODEL_TYPE_TO_FAMILY: dict[str, str] = {
    "llama": "llama",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "mistral": "mistral",
    "phi3": "phi3",
    "gpt2": "gpt2",
    "gpt_neox": "gpt_neox",
    "opt": "opt",
    "gemma3": "gemma3-vlm",
    "llava": "llava",
    "qwen2_vl": "qwen2-vl",
    "smolvlm": "smolvlm",
    "idefics3": "smolvlm",
    "paligemma": "paligemma",
}

_SPECIAL_IDS = dict(pad_token_id=_PAD, eos_token_id=_EOS, bos_token_id=_BOS)


def _llama_like_text(num_layers: int, **extra: Any) -> dict[str, Any]:
    """Config kwargs shared by the Llama-style text decoders (RMSNorm, RoPE, GQA)."""
    base = dict(
        vocab_size=_VOCAB,
        hidden_size=_HIDDEN,
        intermediate_size=_FFN,
        num_hidden_layers=num_layers,
        num_attention_heads=_HEADS,
        num_key_value_heads=_KV_HEADS,
        head_dim=_HEAD_DIM,
        max_position_embeddings=_MAX_POS,
        tie_word_embeddings=False,
        **_SPECIAL_IDS,
    )
    return {**base, **extra}


def _gemma_text(num_layers: int, **extra: Any) -> dict[str, Any]:
    """Config kwargs shared by the Gemma-style text decoders."""
    return _llama_like_text(
        num_layers,
        query_pre_attn_scalar=_HEAD_DIM,
        sliding_window=512,
        tie_word_embeddings=True,
        **extra,
    )


def _siglip_vision(num_layers: int) -> dict[str, Any]:
    """A tiny SigLIP vision tower config (Gemma 3, PaliGemma, SmolVLM)."""
    return dict(
        hidden_size=_V_HIDDEN,
        intermediate_size=_V_FFN,
        num_hidden_layers=num_layers,
        num_attention_heads=_V_HEADS,
        image_size=_IMAGE_SIZE,
        patch_size=_PATCH,
    )


def _build_text(family: str, num_layers: int) -> PreTrainedModel:
    """Build a text-only decoder (random init) from its config."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    if family == "llama":
        config = tf.LlamaConfig(**_llama_like_text(num_layers), **eager)
        return tf.LlamaForCausalLM(config)
    if family == "mistral":
        config = tf.MistralConfig(**_llama_like_text(num_layers, sliding_window=None), **eager)
        return tf.MistralForCausalLM(config)
    if family == "qwen2":
        config = tf.Qwen2Config(**_llama_like_text(num_layers), **eager)
        return tf.Qwen2ForCausalLM(config)
    if family == "qwen3":
        config = tf.Qwen3Config(**_llama_like_text(num_layers), **eager)
        return tf.Qwen3ForCausalLM(config)
    if family == "gemma2":
        config = tf.Gemma2Config(
            **_gemma_text(num_layers, final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
            **eager,
        )
        return tf.Gemma2ForCausalLM(config)
    if family == "gemma3":
        config = tf.Gemma3TextConfig(**_gemma_text(num_layers), **eager)
        return tf.Gemma3ForCausalLM(config)
    if family == "phi3":
        kwargs = _llama_like_text(num_layers)
        kwargs.pop("head_dim")
        config = tf.Phi3Config(**kwargs, **eager)
        return tf.Phi3ForCausalLM(config)
    if family == "gpt2":
        config = tf.GPT2Config(
            vocab_size=_VOCAB,
            n_positions=_MAX_POS,
            n_embd=_HIDDEN,
            n_layer=num_layers,
            n_head=_HEADS,
            n_inner=_FFN,
            **_SPECIAL_IDS,
            **eager,
        )
        return tf.GPT2LMHeadModel(config)
    if family == "gpt_neox":
        config = tf.GPTNeoXConfig(
            vocab_size=_VOCAB,
            hidden_size=_HIDDEN,
            intermediate_size=_FFN,
            num_hidden_layers=num_layers,
            num_attention_heads=_HEADS,
            max_position_embeddings=_MAX_POS,
            tie_word_embeddings=False,
            **_SPECIAL_IDS,
            **eager,
        )
        return tf.GPTNeoXForCausalLM(config)
    if family == "opt":
        config = tf.OPTConfig(
            vocab_size=_VOCAB,
            hidden_size=_HIDDEN,
            ffn_dim=_FFN,
            num_hidden_layers=num_layers,
            num_attention_heads=_HEADS,
            max_position_embeddings=_MAX_POS,
            word_embed_proj_dim=_HIDDEN,
            **_SPECIAL_IDS,
            **eager,
        )
        return tf.OPTForCausalLM(config)
    raise AssertionError(family)  # pragma: no cover - guarded by tiny()


def _gemma3_vlm(num_layers: int) -> PreTrainedModel:
    """Gemma 3 with a SigLIP tower; images pooled to 2x2 tokens."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    v_layers = num_layers + 2
    config = tf.Gemma3Config(
        text_config=dict(_gemma_text(num_layers), model_type="gemma3_text"),
        vision_config=dict(_siglip_vision(v_layers), model_type="siglip_vision_model"),
        mm_tokens_per_image=4,  # 4x4 patches average-pooled to 2x2
        image_token_index=_IMAGE,
        boi_token_index=_BOI,
        eoi_token_index=_EOI,
        **_SPECIAL_IDS,
        **eager,
    )
    model = tf.Gemma3ForConditionalGeneration(config)
    # The projector matrix is zero-initialised, which would make images invisible.
    projector = model.model.multi_modal_projector
    with torch.no_grad():
        projector.mm_input_projection_weight.normal_(0.0, config.initializer_range)
    return model


def _llava(num_layers: int) -> PreTrainedModel:
    """LLaVA: a CLIP tower and a Llama decoder."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    v_layers = num_layers + 2
    config = tf.LlavaConfig(
        text_config=dict(_llama_like_text(num_layers), model_type="llama"),
        vision_config=dict(
            model_type="clip_vision_model",
            hidden_size=_V_HIDDEN,
            intermediate_size=_V_FFN,
            num_hidden_layers=v_layers,
            num_attention_heads=_V_HEADS,
            image_size=_IMAGE_SIZE,
            patch_size=_PATCH,
            projection_dim=_V_HIDDEN,
        ),
        image_token_index=_IMAGE,
        image_seq_length=(_IMAGE_SIZE // _PATCH) ** 2,  # CLS dropped ("default")
        **_SPECIAL_IDS,
        **eager,
    )
    return tf.LlavaForConditionalGeneration(config)


def _qwen2_vl(num_layers: int) -> PreTrainedModel:
    """Qwen2-VL: its own vision tower with a patch merger and M-RoPE."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    v_layers = num_layers + 2
    half = _HEAD_DIM // 2
    config = tf.Qwen2VLConfig(
        text_config=dict(
            _llama_like_text(num_layers),
            model_type="qwen2_vl_text",
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [half - 2 * (half // 3), half // 3, half // 3],
            },
        ),
        vision_config=dict(
            model_type="qwen2_vl_vision",
            depth=v_layers,
            embed_dim=_V_HIDDEN,
            hidden_size=_HIDDEN,  # output size of the patch merger
            num_heads=_V_HEADS,
            mlp_ratio=2,
            patch_size=_PATCH,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=_IMAGE,
        video_token_id=_VIDEO,
        vision_start_token_id=_BOI,
        vision_end_token_id=_EOI,
        **_SPECIAL_IDS,
        **eager,
    )
    return tf.Qwen2VLForConditionalGeneration(config)


def _smolvlm(num_layers: int) -> PreTrainedModel:
    """SmolVLM (Idefics3 on older transformers): SigLIP tower, pixel shuffle."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    v_layers = num_layers + 2
    cls_config = getattr(tf, "SmolVLMConfig", None) or tf.Idefics3Config
    cls_model = (
        getattr(tf, "SmolVLMForConditionalGeneration", None) or tf.Idefics3ForConditionalGeneration
    )
    config = cls_config(
        text_config=dict(_llama_like_text(num_layers), model_type="llama"),
        vision_config=_siglip_vision(v_layers),
        scale_factor=2,
        image_token_id=_IMAGE,
        **_SPECIAL_IDS,
        **eager,
    )
    return cls_model(config)


def _paligemma(num_layers: int) -> PreTrainedModel:
    """PaliGemma: a SigLIP tower and a Gemma decoder."""
    import transformers as tf  # lazy: transformers loads slowly

    eager = {"attn_implementation": "eager"}
    v_layers = num_layers + 2
    config = tf.PaliGemmaConfig(
        text_config=dict(
            _llama_like_text(num_layers, tie_word_embeddings=True), model_type="gemma"
        ),
        vision_config=dict(_siglip_vision(v_layers), model_type="siglip_vision_model"),
        image_token_index=_IMAGE,
        vocab_size=_VOCAB,
        projection_dim=_HIDDEN,
        hidden_size=_HIDDEN,
        **_SPECIAL_IDS,
        **eager,
    )
    return tf.PaliGemmaForConditionalGeneration(config)


_VLM_BUILDERS = {
    "gemma3-vlm": _gemma3_vlm,
    "llava": _llava,
    "qwen2-vl": _qwen2_vl,
    "smolvlm": _smolvlm,
    "paligemma": _paligemma,
}


def _build_vlm(family: str, num_layers: int) -> PreTrainedModel:
    """Build a vision-language model (random init) from its config."""
    if family not in _VLM_BUILDERS:  # pragma: no cover - guarded by tiny()
        raise AssertionError(family)
    return _VLM_BUILDERS[family](num_layers)


def tiny(
    family: str,
    *,
    seed: int = 0,
    num_layers: int = 3,
    dtype: torch.dtype = torch.float32,
) -> PreTrainedModel:
    """Build a tiny random-init model of ``family``, in eval mode, fully offline.

    The text decoder has hidden size 64, ``num_layers`` blocks and a vocabulary of 256
    token ids (``logits`` have shape ``[batch, seq, 256]``). Vision-language models get a
    vision tower with ``num_layers + 2`` blocks (hidden size 32, 32x32 images, 8x8
    patches). Attention is the ``"eager"`` implementation so results are deterministic.

    Args:
        family: One of :data:`TINY_FAMILIES`.
        seed: Seed for ``torch.manual_seed`` before the weights are initialised; the same
            seed always gives identical weights.
        num_layers: Number of decoder blocks in the text model (at least 1).
        dtype: Parameter dtype of the returned model.

    Returns:
        The model (a ``PreTrainedModel`` with a causal-LM head), in eval mode, with
        ``config.name_or_path == "tiny-<family>"``.

    Raises:
        ValueError: If ``family`` is unknown (the message lists the valid families) or
            ``num_layers < 1``.
    """
    if family not in TINY_FAMILIES:
        raise ValueError(
            f"Unknown tiny model family {family!r}; valid families are: {', '.join(TINY_FAMILIES)}"
        )
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    torch.manual_seed(seed)
    if family in TEXT_FAMILIES:
        model = _build_text(family, num_layers)
    else:
        model = _build_vlm(family, num_layers)
    model.config.name_or_path = f"tiny-{family}"
    model.name_or_path = model.config.name_or_path
    model._steerlab_tiny_family = family
    model.to(dtype)
    model.eval()
    return model


def _family_of(model: PreTrainedModel) -> str:
    """The tiny family name of ``model`` (from the attribute set by :func:`tiny`, or the
    config's ``model_type``)."""
    family = getattr(model, "_steerlab_tiny_family", None)
    if family is not None:
        return family
    model_type = getattr(model.config, "model_type", None)
    if model_type not in _MODEL_TYPE_TO_FAMILY:
        raise ValueError(
            f"Cannot build tiny inputs for model_type {model_type!r}; supported model types "
            f"are: {', '.join(sorted(_MODEL_TYPE_TO_FAMILY))}"
        )
    return _MODEL_TYPE_TO_FAMILY[model_type]


def _special_ids(config: Any) -> set[int]:
    """Every special token id named in ``config`` or its text sub-config."""
    text_names = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")
    mm_names = (
        "image_token_id",
        "image_token_index",
        "video_token_id",
        "boi_token_index",
        "eoi_token_index",
        "vision_start_token_id",
        "vision_end_token_id",
    )
    text_config = config.get_text_config()
    ids: set[int] = set()
    # The text ids are read from the text config only: some composite configs (SmolVLM)
    # warn when their top-level ``pad_token_id`` is accessed.
    for cfg, names in ((text_config, text_names + mm_names), (config, mm_names)):
        for name in names:
            value = getattr(cfg, name, None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(v for v in value if isinstance(v, int))
    return ids


def _image_block(family: str, config: Any) -> list[int]:
    """Token ids that stand for one image in the prompt: the image-feature placeholders,
    wrapped in begin/end-of-image tokens where the architecture uses them."""
    if family == "gemma3-vlm":
        n = int(config.mm_tokens_per_image)
        return [config.boi_token_index] + [config.image_token_index] * n + [config.eoi_token_index]
    if family == "llava":
        v = config.vision_config
        n = (v.image_size // v.patch_size) ** 2
        if config.vision_feature_select_strategy == "full":
            n += 1
        return [config.image_token_index] * n
    if family == "qwen2-vl":
        v = config.vision_config
        side = _IMAGE_SIZE // v.patch_size
        n = side * side // (v.spatial_merge_size**2)
        return (
            [config.vision_start_token_id]
            + [config.image_token_id] * n
            + [config.vision_end_token_id]
        )
    if family == "smolvlm":
        v = config.vision_config
        n = (v.image_size // v.patch_size) ** 2 // (config.scale_factor**2)
        return [config.image_token_id] * n
    if family == "paligemma":
        v = config.vision_config
        n = (v.image_size // v.patch_size) ** 2
        return [config.image_token_index] * n
    raise AssertionError(family)  # pragma: no cover


def _pixel_inputs(
    family: str, config: Any, batch: int, generator: torch.Generator, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The pixel tensors (and grid / mask tensors) for one image per example."""
    if family == "qwen2-vl":
        v = config.vision_config
        side = _IMAGE_SIZE // v.patch_size
        patch_dim = v.in_channels * v.temporal_patch_size * v.patch_size**2
        pixel_values = torch.randn(batch * side * side, patch_dim, generator=generator)
        grid = torch.tensor([[1, side, side]] * batch, dtype=torch.long)
        return {"pixel_values": pixel_values.to(dtype), "image_grid_thw": grid}
    size = config.vision_config.image_size
    channels = getattr(config.vision_config, "num_channels", 3)
    if family == "smolvlm":
        pixel_values = torch.randn(batch, 1, channels, size, size, generator=generator)
        mask = torch.ones(batch, 1, size, size, dtype=torch.bool)
        return {"pixel_values": pixel_values.to(dtype), "pixel_attention_mask": mask}
    pixel_values = torch.randn(batch, channels, size, size, generator=generator)
    return {"pixel_values": pixel_values.to(dtype)}


def tiny_inputs(
    model: PreTrainedModel,
    *,
    batch: int = 2,
    seq: int = 8,
    image: bool = True,
    padding: str | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random keyword inputs for a model from :func:`tiny`.

    ``model(**inputs)`` and ``model.generate(**inputs, max_new_tokens=4, do_sample=False)``
    accept the result. Text token ids are drawn (with their own generator seeded by
    ``seed``) from the non-special ids of the vocabulary.

    For a vision-language model with ``image=True`` each example gets one random image:
    ``pixel_values`` plus whatever else the class needs (``image_grid_thw`` and
    ``mm_token_type_ids`` for Qwen2-VL, ``pixel_attention_mask`` for SmolVLM,
    ``token_type_ids`` for Gemma 3 and PaliGemma), and the image's placeholder block (image
    tokens, plus begin/end-of-image tokens where the architecture uses them) is inserted
    into ``input_ids``: after the first text token, or at the very start for PaliGemma.
    The sequence length is then ``seq`` plus the block length.

    Args:
        model: A model built by :func:`tiny` (or any model of a supported ``model_type``).
        batch: Number of examples.
        seq: Number of text tokens per (unpadded) example.
        image: Whether vision-language models get an image; ignored for text models.
        padding: ``None`` (all examples full length), ``"left"`` or ``"right"``: example
            0 has ``min(3, seq - 1)`` fewer text tokens, padded on that side with the pad
            token id (or 0) and zeros in ``attention_mask``.
        seed: Seed for the token ids and pixel values.

    Returns:
        A dict with ``input_ids`` and ``attention_mask`` (both ``[batch, total_seq]``,
        int64) and, for images, the pixel tensors (in the model's dtype).

    Raises:
        ValueError: If ``padding`` is not ``None``, ``"left"`` or ``"right"``, ``batch`` or
            ``seq`` is not positive, or the model's family is not supported.
    """
    if padding not in (None, "left", "right"):
        raise ValueError(f"padding must be None, 'left' or 'right', got {padding!r}")
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be positive, got batch={batch}, seq={seq}")
    family = _family_of(model)
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    text = _random_text(config, batch, seq, generator)
    use_image = image and family in VLM_FAMILIES
    block = _image_block(family, config) if use_image else []
    rows = [
        text[b, : seq - min(3, seq - 1)] if (padding and b == 0) else text[b] for b in range(batch)
    ]
    if use_image:
        cut = 0 if family == "paligemma" else 1
        block_t = torch.tensor(block, dtype=torch.long)
        rows = [torch.cat([row[:cut], block_t, row[cut:]]) for row in rows]
    input_ids, attention_mask = _place(rows, seq + len(block), padding, _pad_id(config))
    inputs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if use_image:
        inputs.update(_pixel_inputs(family, config, batch, generator, model.dtype))
        inputs.update(_token_types(family, config, input_ids, attention_mask))
    return inputs


def _pad_id(config: Any) -> int:
    """The text model's pad token id (else the outer config's, else 0)."""
    text_config = config.get_text_config()
    pad_id = getattr(text_config, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(config, "pad_token_id", None)
    return 0 if pad_id is None else int(pad_id)


def _random_text(config: Any, batch: int, seq: int, generator: torch.Generator) -> torch.Tensor:
    """Random non-special token ids ``[batch, seq]`` (avoiding the reserved top of a tiny
    vocabulary)."""
    vocab = int(config.get_text_config().vocab_size)
    special = _special_ids(config)
    limit = _FIRST_RESERVED if vocab == _VOCAB else vocab
    allowed = torch.tensor([i for i in range(limit) if i not in special], dtype=torch.long)
    return allowed[torch.randint(len(allowed), (batch, seq), generator=generator)]


def _place(
    rows: list[torch.Tensor], total: int, padding: str | None, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, both ``[len(rows), total]``: each row padded with
    ``pad_id`` on the left when ``padding == "left"``, else on the right."""
    input_ids = torch.full((len(rows), total), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), total), dtype=torch.long)
    for b, row in enumerate(rows):
        start = total - len(row) if padding == "left" else 0
        input_ids[b, start : start + len(row)] = row
        attention_mask[b, start : start + len(row)] = 1
    return input_ids, attention_mask


def _token_types(
    family: str, config: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The per-token type ids a VLM family needs beside its pixels (1 marks image tokens)."""
    image_ids = {
        getattr(config, name, None)
        for name in ("image_token_id", "image_token_index")
        if getattr(config, name, None) is not None
    }
    is_image = torch.isin(input_ids, torch.tensor(sorted(image_ids), dtype=torch.long))
    is_image = (is_image & attention_mask.bool()).long()
    if family == "qwen2-vl":
        return {"mm_token_type_ids": is_image}
    if family == "gemma3-vlm":
        return {"token_type_ids": is_image}
    if family == "paligemma":
        # 0 = bidirectional prefix (image + prompt), as the processor returns when
        # there is no suffix; generated tokens are appended as 1 (causal suffix).
        return {"token_type_ids": torch.zeros_like(input_ids)}
    return {}


_TOKENIZER_SPECIALS = ("<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
_TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer() -> Any:
    """A character-level tokenizer that fits the tiny models' 256-token vocabulary.

    Ids ``0``/``1``/``2`` are ``<pad>``/``</s>``/``<s>`` (as in the tiny models), then one
    token per printable ASCII character and newline, then ``<unk>`` and the chat markers
    ``<|system|>``, ``<|user|>``, ``<|assistant|>``, ``<|end|>`` (104 ids in all, so no id
    reaches the VLMs' reserved range). It has a chat template, pads on the left, and
    decodes exactly what it encodes for ASCII text; anything else becomes ``<unk>``.

    With :func:`tiny`, it makes ``steerlab.models.load_model("tiny-llama")`` a complete
    (model, tokenizer) pair for fast end-to-end tests of training, evaluation and the study.
    """
    # lazy: tokenizer construction code, needed only for the tiny test models
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": _PAD, "</s>": _EOS, "<s>": _BOS}
    for ch in [chr(i) for i in range(32, 127)] + ["\n"]:
        vocab[ch] = len(vocab)
    for special in _TOKENIZER_SPECIALS:
        vocab[special] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        unk_token="<unk>",
        additional_special_tokens=list(_TOKENIZER_SPECIALS[1:]),
        chat_template=_TINY_CHAT_TEMPLATE,
        padding_side="left",
    )
    tok.name_or_path = "tiny-char"
    return tok
