"""Weight orthogonalization: a permanent directional ablation (Arditi et al. 2024).

Every module that writes into the residual stream is edited so it cannot write into the
subspace spanned by ``Q`` (``[k, d_model]``, orthonormal rows):

- the token (and learned position) embeddings: ``W_E ← W_E − W_E Qᵀ Q``;
- every attention and MLP output projection: ``W_out ← W_out − Qᵀ Q W_out`` (and its bias);
  for peft LoRA layers the base weight and every ``lora_B`` are edited, so the adapter
  cannot write there either.

For pre-norm models (Llama, Qwen, Mistral, Phi-3, GPT-2, GPT-NeoX, OPT) this equals runtime
ablation of ``attn_out`` and ``mlp_out`` at every layer plus the embedding, to float
precision. Gemma 2/3 pass each sub-layer output through an RMSNorm with gain ``g`` before the
residual add; there the output projection is made orthogonal to ``g ∘ q`` instead, which still
guarantees that nothing is written into the subspace, but the norm's rescaling means the
result is not identical to runtime ablation.

A tied output embedding is untied first, so the unembedding is left unchanged. Image
features of vision-language models enter through the projector, which is not edited: ablate
``resid_pre`` at layer 0 at runtime to cover them.
"""

from __future__ import annotations

import torch
from torch import nn

from steerlab.hooks.layers import find_layout
from steerlab.linalg import as_rows, orthonormal_basis
from steerlab.vectors import SteeringVector, Subspace

_POINTS = ("attn_out", "mlp_out")


def _rows(module: nn.Module) -> list[tuple[torch.Tensor, str]]:
    """Weights of a linear-like module with their layout: 'out_in' ([out, in]) or 'in_out'."""
    base = getattr(module, "base_layer", None)
    out: list[tuple[torch.Tensor, str]] = []
    if base is not None:
        out += _rows(base)
        for b in getattr(module, "lora_B", {}).values():
            out.append((b.weight, "out_in"))
        for b in getattr(module, "lora_embedding_B", {}).values():
            out.append((b, "out_in"))
        return out
    if type(module).__name__ == "Conv1D":  # GPT-2: y = x W + b, W is [in, out]
        out.append((module.weight, "in_out"))
    elif isinstance(module, nn.Linear):
        out.append((module.weight, "out_in"))
    elif isinstance(module, nn.Embedding):
        out.append((module.weight, "in_out"))
    else:
        raise TypeError(f"cannot orthogonalize a {type(module).__name__}")
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        out.append((bias, "vector"))
    return out


@torch.no_grad()
def _project_out(module: nn.Module, u: torch.Tensor) -> None:
    for w, layout in _rows(module):
        q = u.to(device=w.device, dtype=torch.float64)
        w64 = w.double()
        # "out_in": [d_model, in]; "in_out" / "vector": the last dimension is d_model.
        new = w64 - q.T @ (q @ w64) if layout == "out_in" else w64 - (w64 @ q.T) @ q
        w.copy_(new.to(w.dtype))


def _untie_output_embedding(model: nn.Module, embed: nn.Module) -> None:
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    if head is None or getattr(head, "weight", None) is None:
        return
    if head.weight is getattr(embed, "weight", None) or (
        head.weight.data_ptr() == embed.weight.data_ptr()
    ):
        head.weight = nn.Parameter(head.weight.detach().clone())
        for config in (getattr(model, "config", None),):
            if config is None:
                continue
            config.tie_word_embeddings = False
            get_text = getattr(config, "get_text_config", None)
            if callable(get_text):
                get_text().tie_word_embeddings = False


def _norm_gain(norm: nn.Module, d_model: int, like: torch.Tensor) -> torch.Tensor:
    """Elementwise gain ``g`` of an RMSNorm-like module, up to a positive scale."""
    ones = torch.ones(1, d_model, device=like.device, dtype=like.dtype)
    with torch.no_grad():
        return norm(ones).reshape(-1).double()


def orthogonalize_weights(
    model: nn.Module,
    subspace: Subspace | SteeringVector,
    *,
    layer: int | None = None,
    k: int | None = None,
) -> nn.Module:
    """Edit ``model`` in place so that no layer can write into ``subspace``.

    Args:
        model: an HF model (or ``PeftModel``) that :func:`steerlab.attach` supports.
        subspace: the directions to remove; one basis ``[k, d_model]`` is used everywhere.
        layer: which layer's basis to use when the object holds several.
        k: keep only the top-``k`` rows of a :class:`Subspace`.

    Returns:
        The same model, edited.

    Raises:
        ValueError: several layers and no ``layer=``; ``d_model`` mismatch.
        ArchitectureError: the architecture's self-check refuses weight orthogonalization
            (a sub-layer is not its output projection's output, or the first block's input
            is not the embeddings' sum); the model is left unedited.
    """
    if isinstance(subspace, SteeringVector):
        bases = {i: as_rows(v) for i, v in subspace.directions.items()}
    elif isinstance(subspace, Subspace):
        bases = (subspace.top(k) if k is not None else subspace).bases
    else:
        raise TypeError(f"expected a Subspace or SteeringVector, got {type(subspace).__name__}")
    layout = find_layout(model)
    if layer is None:
        if len(bases) != 1:
            raise ValueError(
                f"the subspace has bases for layers {sorted(bases)}; pick one with layer="
            )
        (basis,) = bases.values()
    else:
        norm = {layout.layer_index(i): b for i, b in bases.items()}
        if layout.layer_index(layer) not in norm:
            raise ValueError(f"layer={layer} has no basis; the subspace has layers {sorted(bases)}")
        basis = norm[layout.layer_index(layer)]
    if basis.shape[-1] != layout.d_model:
        raise ValueError(
            f"subspace has d_model={basis.shape[-1]}, model has d_model={layout.d_model}"
        )
    q = orthonormal_basis(basis.detach().double().cpu())

    writers = [layout.writer(i, p) for i in range(layout.num_layers) for p in _POINTS]
    embeddings = [module for _, module in layout.embeddings()]
    if layout.embed is not None:
        _untie_output_embedding(layout.root, getattr(layout.embed, "base_layer", layout.embed))
    for emb in embeddings:
        _project_out(emb, q)

    for linear, post_norm in writers:
        u = q
        if post_norm is not None:
            weight = _rows(linear)[0][0]
            g = _norm_gain(post_norm, layout.d_model, weight)
            u = orthonormal_basis((q * g.cpu()).double())
        _project_out(linear, u)
    return model
