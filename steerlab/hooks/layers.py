"""Finding a model's language-decoder blocks and the TransformerLens-style hook points in them.

No per-model patches: the decoder is the stack of homogeneous blocks (an ``nn.ModuleList``)
that sits closest to the model's *text* input embedding (``get_input_embeddings()``). That
one rule finds the decoder of causal LMs (``model.layers``, ``transformer.h``,
``gpt_neox.layers``, ``model.decoder.layers``) and of vision-language models
(``model.language_model.layers``, ``model.text_model.layers``) and never the vision tower,
however many blocks the tower has.

Hook points follow TransformerLens (``blocks.{layer}.hook_{point}``):

- ``resid_pre``: the block's input residual stream, ``[batch, seq, d_model]``;
- ``resid_post``: the block's output residual stream;
- ``attn_out``: what the attention sub-layer adds to the residual stream;
- ``mlp_out``: what the MLP sub-layer adds to the residual stream.

For Gemma 2/3 ("sandwich" norms) the attention and MLP outputs pass through a
post-norm before they are added; ``attn_out`` / ``mlp_out`` are those post-norm outputs,
so ``resid_post == resid_pre + attn_out + mlp_out`` holds.

A point is offered only where the one-time self-check (:mod:`steerlab.hooks.selfcheck`)
shows that it means what its name says; elsewhere :meth:`ModelLayout.site` raises
:class:`ArchitectureError` naming the architecture, the point and the reason.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from steerlab.hooks import selfcheck

HOOK_POINTS: tuple[str, ...] = ("resid_pre", "resid_post", "attn_out", "mlp_out")

_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn", "block_sparse_moe")
_MLP_LINEAR_NAMES = ("fc2",)  # OPT: the MLP is two bare Linears on the block
_FINAL_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f", "final_norm", "norm_f")
_OUT_PROJ_NAMES = (
    "o_proj",
    "out_proj",
    "c_proj",
    "dense",
    "down_proj",
    "dense_4h_to_h",
    "fc2",
    "wo",
)
_SANDWICH = ("post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")


class ArchitectureError(ValueError):
    """The model's decoder blocks or a hook point could not be found, or a hook point is
    refused because steerlab cannot show that it means what its name says."""


@dataclass(frozen=True)
class HookSite:
    """Where a hook point lives: a module, and whether the point is its input or output."""

    module: nn.Module
    mode: Literal["input", "output"]


@dataclass
class ModelLayout:
    """What steerlab knows about a model's structure.

    Attributes:
        root: the module whose forward receives the user's ``input_ids`` / ``attention_mask``
            (for a ``PeftModel``, its base model). Call tracking hooks it.
        blocks: the decoder blocks, in order.
        blocks_path: dotted path of the block list inside ``root``, e.g. ``"model.layers"``.
        embed: the token embedding module (``None`` for TransformerLens models).
        final_norm: the norm HF applies after the last block (``None`` if not found).
        family: the text model's ``model_type`` (e.g. ``"llama"``, ``"gemma3_text"``).
        d_model: width of the residual stream.
    """

    root: nn.Module
    blocks: list[nn.Module]
    blocks_path: str
    embed: nn.Module | None
    final_norm: nn.Module | None
    family: str
    d_model: int
    tl_hooks: dict[str, nn.Module] | None = None
    _sites: dict[tuple[int, str], HookSite] = field(default_factory=dict, repr=False)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def layer_index(self, layer: int) -> int:
        """Normalise a layer index; negative indices count from the end.

        Raises:
            IndexError: if the index is out of range, naming the valid range.
            TypeError: if ``layer`` is not an int.
        """
        n = self.num_layers
        try:
            if isinstance(layer, bool):
                raise TypeError
            layer = operator.index(layer)  # int, numpy integer, 0-d integer tensor
        except TypeError:
            raise TypeError(f"layer must be an int, got {type(layer).__name__} {layer!r}") from None
        if not -n <= layer < n:
            raise IndexError(
                f"layer {layer} out of range: model has {n} decoder layers (valid: {-n}..{n - 1})"
            )
        return layer % n

    def available_points(self, layer: int = 0) -> tuple[str, ...]:
        out = []
        for point in HOOK_POINTS:
            try:
                self.site(layer, point)
            except ArchitectureError:
                continue
            out.append(point)
        return tuple(out)

    @property
    def architecture(self) -> str:
        """The model's class name, e.g. ``"BloomForCausalLM"``."""
        return type(self.root).__name__

    def verdict(self) -> selfcheck.Verdict:
        """The one-time self-check's verdict (cached per model; see :mod:`selfcheck`).
        TransformerLens hook points are defined by TransformerLens and not re-checked."""
        if self.tl_hooks is not None:
            return selfcheck.Verdict()
        return selfcheck.verdict(self)

    def site(self, layer: int, point: str) -> HookSite:
        """The module and mode for ``blocks.{layer}.hook_{point}``.

        The first call runs the self-check (one 4-token forward pass, cached per model); a
        point that fails it is refused.

        Raises:
            ValueError: unknown point name.
            ArchitectureError: the point is refused for this architecture; the message
                names the architecture, the point and the reason.
        """
        if point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {point!r}: expected one of {HOOK_POINTS}")
        layer = self.layer_index(layer)
        reason = self.verdict().refused.get(point)
        if reason is not None:
            raise ArchitectureError(
                f"{point} is not available for {self.architecture} ({self.family}): {reason}"
            )
        return self.raw_site(layer, point)

    def raw_site(self, layer: int, point: str) -> HookSite:
        """Like :meth:`site`, without the self-check (the self-check itself uses this)."""
        layer = self.layer_index(layer)
        key = (layer, point)
        if key not in self._sites:
            self._sites[key] = self._find_site(layer, point)
        return self._sites[key]

    def _find_site(self, layer: int, point: str) -> HookSite:
        if self.tl_hooks is not None:
            hook = getattr(self.blocks[layer], f"hook_{point}", None)
            if not isinstance(hook, nn.Module):
                raise ArchitectureError(
                    f"TransformerLens model has no hook point blocks.{layer}.hook_{point}"
                )
            return HookSite(hook, "output")
        block = self.blocks[layer]
        if point == "resid_pre":
            return HookSite(block, "input")
        if point == "resid_post":
            return HookSite(block, "output")
        children = dict(block.named_children())
        sandwich = all(name in children for name in _SANDWICH)
        if point == "attn_out":
            if sandwich:
                return HookSite(children["post_attention_layernorm"], "output")
            names = _ATTN_NAMES
        else:
            if sandwich:
                return HookSite(children["post_feedforward_layernorm"], "output")
            names = _MLP_NAMES + _MLP_LINEAR_NAMES
        for name in names:
            if name in children:
                return HookSite(children[name], "output")
        raise ArchitectureError(
            f"no {point} sub-layer found in block {layer} ({type(block).__name__}); "
            f"looked for children named {names}, block has {sorted(children)}"
        )

    def writer(self, layer: int, point: str) -> tuple[nn.Module, nn.Module | None]:
        """The linear layer that writes ``point`` (``attn_out``/``mlp_out``) into the residual.

        Returns ``(linear, post_norm)``: ``post_norm`` is the Gemma-style norm applied after
        the linear, or ``None``. Used by weight orthogonalization.

        Raises:
            ArchitectureError: the self-check found that editing the output projections (and
                embeddings) is not the same as ablating the sub-layers on this architecture.
        """
        reason = self.verdict().orthogonalize
        if reason is not None:
            raise ArchitectureError(
                f"weight orthogonalization is not available for {self.architecture} "
                f"({self.family}): {reason}"
            )
        self.site(layer, point)
        return self.writer_path(layer, point)

    def writer_path(self, layer: int, point: str) -> tuple[nn.Module, nn.Module | None]:
        """Like :meth:`writer`, without the self-check."""
        site = self.raw_site(layer, point)
        children = dict(self.blocks[layer].named_children())
        post_norm = None
        module = site.module
        if all(name in children for name in _SANDWICH):
            post_norm = module
            names = _ATTN_NAMES if point == "attn_out" else _MLP_NAMES
            module = next(children[n] for n in names if n in children)
        if _is_linear(module):
            return module, post_norm
        sub = dict(module.named_children())
        for name in _OUT_PROJ_NAMES:
            if name in sub and _is_linear(sub[name]):
                return sub[name], post_norm
        raise ArchitectureError(
            f"no output projection found in {type(module).__name__} of block {layer}; "
            f"looked for {_OUT_PROJ_NAMES}, found {sorted(sub)}"
        )

    def embeddings(self) -> list[tuple[str, nn.Module]]:
        """Modules outside the blocks that write the first block's input (width ``d_model``):
        token and learned position embeddings, or a projection such as OPT's
        ``project_in``. Weight orthogonalization edits these."""
        blocks = set(map(id, self.blocks))
        parent_path = self.blocks_path.rsplit(".", 1)[0] if "." in self.blocks_path else ""
        parent = self.root.get_submodule(parent_path) if parent_path else self.root
        found = []
        stack = [(f"{parent_path}.{n}".lstrip("."), m) for n, m in parent.named_children()]
        while stack:
            name, module = stack.pop()
            if id(module) in blocks or isinstance(module, nn.ModuleList):
                continue
            base = getattr(module, "base_layer", module)
            embedding = isinstance(base, nn.Embedding) and base.embedding_dim == self.d_model
            projection = isinstance(module, nn.Linear) and module.out_features == self.d_model
            if embedding or projection:
                found.append((name, module))
            else:
                stack.extend((f"{name}.{n}", m) for n, m in module.named_children())
        return found


def _is_linear(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":
        return True
    base = getattr(module, "base_layer", None)  # peft LoRA wrapper
    return base is not None and _is_linear(base)


def unwrap(model: nn.Module) -> nn.Module:
    """The module that receives user inputs: a ``PeftModel``'s base model, else ``model``."""
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base) and type(model).__name__.startswith("Peft"):
        return get_base()
    return model


def _get_path(root: nn.Module, path: str) -> nn.Module:
    module = root
    for part in path.split("."):
        if not hasattr(module, part):
            raise ArchitectureError(f"module path {path!r} not found: {part!r} missing")
        module = getattr(module, part)
    return module


def _homogeneous_lists(root: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    out = []
    for name, module in root.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            kinds = {type(m) for m in module}
            if len(kinds) == 1:
                out.append((name, module))
    return out


def _common_prefix(a: str, b: str) -> int:
    pa, pb = a.split("."), b.split(".")
    n = 0
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            break
        n += 1
    return n


def _text_config(model: nn.Module):
    config = getattr(model, "config", None)
    if config is None:
        return None
    get = getattr(config, "get_text_config", None)
    return get() if callable(get) else config


def find_layout(model: nn.Module, layers: str | None = None) -> ModelLayout:
    """Locate the language decoder's blocks, embedding and final norm.

    Args:
        model: any HF causal LM or VLM, a peft ``PeftModel`` (active, disabled or merged
            adapter), or a TransformerLens model with ``blocks.{i}.hook_resid_post`` hooks.
        layers: an explicit dotted module path to the block list (e.g.
            ``"model.language_model.layers"``), for architectures the search doesn't find.

    Raises:
        ArchitectureError: no decoder found; the message lists the candidate module lists.
    """
    tl = _tl_hooks(model)
    if tl is not None and layers is None:
        return _tl_layout(model, tl)
    root = unwrap(model)
    candidates = _homogeneous_lists(root)
    if layers is not None:
        try:
            blocks = _get_path(root, layers)
            path = layers
        except ArchitectureError:
            blocks = _get_path(model, layers)
            path = layers
        if not isinstance(blocks, (nn.ModuleList, nn.Sequential)) or len(blocks) == 0:
            raise ArchitectureError(
                f"layers={layers!r} is a {type(blocks).__name__}, expected a non-empty "
                f"nn.ModuleList of blocks; candidates: {_describe(candidates)}"
            )
    else:
        blocks, path = _search_blocks(root, candidates)
    embed = _input_embedding(root)
    parent = _get_path(root, path.rsplit(".", 1)[0]) if "." in path else root
    final_norm = None
    for name in _FINAL_NORM_NAMES:
        child = getattr(parent, name, None)
        if isinstance(child, nn.Module) and not isinstance(child, nn.ModuleList):
            final_norm = child
            break
    text_config = _text_config(root)
    family = getattr(text_config, "model_type", None) or type(root).__name__
    d_model = _d_model(embed, text_config, blocks)
    return ModelLayout(
        root=root,
        blocks=list(blocks),
        blocks_path=path,
        embed=embed,
        final_norm=final_norm,
        family=family,
        d_model=d_model,
    )


def _describe(candidates: list[tuple[str, nn.ModuleList]]) -> str:
    if not candidates:
        return "none (the model has no non-empty homogeneous nn.ModuleList)"
    return ", ".join(f"{n} ({len(m)} x {type(m[0]).__name__})" for n, m in candidates)


def _input_embedding(root: nn.Module) -> nn.Module | None:
    get = getattr(root, "get_input_embeddings", None)
    if not callable(get):
        return None
    try:
        return get()
    except (NotImplementedError, AttributeError):
        return None


def _search_blocks(root: nn.Module, candidates) -> tuple[nn.ModuleList, str]:
    embed = _input_embedding(root)
    if not candidates:
        raise ArchitectureError(
            f"could not find decoder blocks in {type(root).__name__}: {_describe(candidates)}. "
            "Pass layers='dotted.path.to.blocks'."
        )
    embed_path = None
    if embed is not None:
        for name, module in root.named_modules():
            if module is embed:
                embed_path = name
                break
    if embed_path is None:
        raise ArchitectureError(
            f"could not find the text input embedding of {type(root).__name__}, so the decoder "
            f"is ambiguous; candidate module lists: {_describe(candidates)}. "
            "Pass layers='dotted.path.to.blocks'."
        )
    parent = embed_path.rsplit(".", 1)[0] if "." in embed_path else ""
    scored = []
    for name, module in candidates:
        share = _common_prefix(parent, name) if parent else 0
        # Blocks must live under the embedding's parent (the text model).
        if parent and not (name.startswith(parent + ".")):
            continue
        scored.append((share, -name.count("."), name, module))
    if not scored:
        raise ArchitectureError(
            f"no block list lives beside the text embedding {embed_path!r} in "
            f"{type(root).__name__}; candidate module lists: {_describe(candidates)}. "
            "Pass layers='dotted.path.to.blocks'."
        )
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    best = scored[0]
    ties = [s for s in scored if s[:2] == best[:2]]
    if len(ties) > 1:
        raise ArchitectureError(
            f"ambiguous decoder in {type(root).__name__}: "
            f"{_describe([(s[2], s[3]) for s in ties])}. Pass layers='dotted.path.to.blocks'."
        )
    return best[3], best[2]


def _d_model(embed: nn.Module | None, text_config, blocks) -> int:
    # The config's width first: OPT-350m embeds at 512 and projects into a 1024-wide stream.
    for attr in ("hidden_size", "n_embd", "d_model"):
        value = getattr(text_config, attr, None)
        if isinstance(value, int):
            return value
    weight = getattr(embed, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[1])
    raise ArchitectureError(f"cannot determine d_model of {type(blocks[0]).__name__} blocks")


def _tl_hooks(model: nn.Module) -> dict[str, nn.Module] | None:
    """TransformerLens models (``HookedTransformer`` or 4.x ``TransformerBridge``): blocks
    expose ``hook_resid_pre`` / ``hook_resid_post`` ... (directly or as aliases)."""
    hook_dict = getattr(model, "hook_dict", None)
    blocks = getattr(model, "blocks", None)
    if (
        isinstance(hook_dict, dict)
        and isinstance(blocks, nn.ModuleList)
        and len(blocks) > 0
        and isinstance(getattr(blocks[0], "hook_resid_post", None), nn.Module)
    ):
        return hook_dict
    return None


def _tl_layout(model: nn.Module, hooks: dict[str, nn.Module]) -> ModelLayout:
    blocks = model.blocks
    cfg = getattr(model, "cfg", None)
    d_model = int(getattr(cfg, "d_model", 0)) or _d_model(None, _text_config(model), blocks)
    original = getattr(getattr(model, "original_model", None), "config", None)
    family = str(
        getattr(original, "model_type", None)
        or getattr(cfg, "architecture", None)
        or getattr(cfg, "original_architecture", None)
        or getattr(cfg, "model_name", "transformer_lens")
    )
    return ModelLayout(
        root=model,
        blocks=list(blocks),
        blocks_path="blocks",
        embed=None,
        final_norm=getattr(model, "ln_final", None),
        family=family,
        d_model=d_model,
        tl_hooks=hooks,
    )
