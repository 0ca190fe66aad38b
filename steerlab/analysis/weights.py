"""Weight-space view of a LoRA adapter: per module ``ΔW = scale · B · A``, its singular
values and effective rank, and how its output directions line up with an activation subspace.

LoRA (Hu et al. 2021) adds ``ΔW = scale · B A`` to a frozen weight ``W`` ``[d_out, d_in]``,
with ``A`` ``[r, d_in]``, ``B`` ``[r_out=d_out, r]`` and ``scale = alpha / r`` (or
``alpha / sqrt(r)`` with rsLoRA). The left singular vectors of ``ΔW`` are the directions the
update writes into; for ``o_proj`` / ``down_proj`` they live in the residual stream, so they
can be compared with the misalignment subspace found in activations at the same layer.

Effective rank (Roy & Vetterli 2007): with ``p_i = σ_i / Σ σ_j``,
``erank = exp(−Σ p_i log p_i)``; 1 for a rank-1 update, ``r`` for ``r`` equal singular
values. :func:`energy_rank` is the other common definition: the smallest k whose
``Σ_{i≤k} σ_i² / Σ σ_i²`` reaches a fraction (e.g. 0.9).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from steerlab.analysis.geometry import subspace_overlap
from steerlab.files import refuse_pickle
from steerlab.vectors import Subspace

_LAYER = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")


@dataclass(frozen=True)
class ModuleUpdate:
    """The SVD of one LoRA module's update.

    Attributes:
        name: module path, e.g. ``model.layers.3.self_attn.o_proj`` (peft prefixes removed).
        layer: decoder layer index parsed from the name, or ``None``.
        kind: the module's last name, e.g. ``"o_proj"``.
        shape: ``(d_out, d_in)`` of ``ΔW``.
        scale: the LoRA scale used.
        singular_values: ``[r]`` descending (float64).
        left: ``[r, d_out]`` left singular vectors as rows (output directions).
        effective_rank: Roy & Vetterli's ``exp(entropy)`` of the normalised singular values.
        k90: :func:`energy_rank` at 90% of ``Σ σ²``.
    """

    name: str
    layer: int | None
    kind: str
    shape: tuple[int, int]
    scale: float
    singular_values: torch.Tensor
    left: torch.Tensor
    effective_rank: float
    k90: int


def effective_rank(singular_values: torch.Tensor, *, eps: float = 1e-12) -> float:
    """Roy & Vetterli (2007) effective rank ``exp(−Σ p log p)``, ``p = σ / Σσ``.

    Raises:
        ValueError: not a 1-D tensor, negative or non-finite values, or all zero.
    """
    s = _check_sv(singular_values)
    p = s / s.sum()
    p = p[p > eps]
    return float(torch.exp(-(p * p.log()).sum()))


def energy_rank(singular_values: torch.Tensor, fraction: float = 0.9) -> int:
    """Smallest k with ``Σ_{i≤k} σ_i² ≥ fraction · Σ σ_i²`` (σ sorted descending).

    Raises:
        ValueError: ``fraction`` outside (0, 1], or bad singular values.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    s = _check_sv(singular_values).sort(descending=True).values
    energy = (s**2).cumsum(0) / (s**2).sum()
    return int((energy >= fraction - 1e-12).nonzero()[0]) + 1


def _check_sv(s: torch.Tensor) -> torch.Tensor:
    if not isinstance(s, torch.Tensor) or s.ndim != 1 or len(s) == 0:
        raise ValueError(f"singular values must be a non-empty 1-D tensor, got {s!r}")
    s = s.double()
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("singular values must be finite and >= 0")
    if float(s.sum()) == 0:
        raise ValueError("all singular values are zero (the update is zero)")
    return s


def _clean(name: str) -> str:
    name = name.removeprefix("base_model.model.")
    for suffix in (".lora_A.weight", ".lora_B.weight", ".lora_A", ".lora_B"):
        name = name.removesuffix(suffix)
    return name


def _update(name: str, a: torch.Tensor, b: torch.Tensor, scale: float) -> ModuleUpdate:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
        raise ValueError(
            f"{name}: LoRA A {tuple(a.shape)} and B {tuple(b.shape)} do not compose "
            "(expected A [r, d_in], B [d_out, r])"
        )
    # [d_out, d_in] as a map x -> ΔW x, also for GPT-2's Conv1D (peft's fan_in_fan_out only
    # transposes the stored weight, not lora_A / lora_B). ΔW has rank <= r, so its SVD comes
    # from two thin QRs and an r x r SVD: B = Q_b R_b, Aᵀ = Q_a R_a, ΔW = Q_b (R_b R_aᵀ) Q_aᵀ,
    # and R_b R_aᵀ = U S Vᵀ gives ΔW's left singular vectors Q_b U (never forms ΔW).
    q_b, r_b = torch.linalg.qr(b.double())
    _, r_a = torch.linalg.qr(a.double().T)
    u_small, s, _ = torch.linalg.svd(scale * (r_b @ r_a.T), full_matrices=False)
    u = q_b @ u_small
    m = _LAYER.search("." + name + ".")
    nonzero = float(s.sum()) > 0
    return ModuleUpdate(
        name=name,
        layer=int(m.group(1)) if m else None,
        kind=name.rsplit(".", 1)[-1],
        shape=(int(b.shape[0]), int(a.shape[1])),
        scale=float(scale),
        singular_values=s,
        left=u.T.contiguous(),
        effective_rank=effective_rank(s) if nonzero else 0.0,
        k90=energy_rank(s) if nonzero else 0,
    )


def lora_updates(source: nn.Module | str | Path, *, adapter: str = "default") -> list[ModuleUpdate]:
    """SVD of ``ΔW = scale · B A`` for every LoRA module of an adapter.

    Args:
        source: a peft ``PeftModel`` (its ``adapter`` is read), or a saved adapter
            directory (``adapter_config.json`` + ``adapter_model.safetensors``; read with
            safetensors, never unpickled).
        adapter: adapter name inside a ``PeftModel``.

    Returns:
        :class:`ModuleUpdate` per module, in module order.

    Raises:
        ValueError: no LoRA module found, malformed A/B, or a pickle checkpoint.
        FileNotFoundError: a directory without the two files.
    """
    if isinstance(source, nn.Module):
        return _from_model(source, adapter)
    return _from_dir(Path(source))


def _from_model(model: nn.Module, adapter: str) -> list[ModuleUpdate]:
    out = []
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if not isinstance(lora_a, nn.ModuleDict) or adapter not in lora_a:
            continue
        a = lora_a[adapter].weight.detach().cpu()
        b = module.lora_B[adapter].weight.detach().cpu()
        scale = float(module.scaling[adapter])
        out.append(_update(_clean(name), a, b, scale))
    if not out:
        raise ValueError(f"no LoRA modules with adapter {adapter!r} in {type(model).__name__}")
    return out


def _scale(config: dict[str, Any], name: str, r: int) -> float:
    alpha = config.get("lora_alpha", r)
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.search(pattern, name):
            alpha = value
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def _from_dir(directory: Path) -> list[ModuleUpdate]:
    config_path = directory / "adapter_config.json"
    weights = directory / "adapter_model.safetensors"
    if not config_path.is_file() or not weights.exists():
        raise FileNotFoundError(
            f"{directory} is not a saved LoRA adapter: expected adapter_config.json and "
            "adapter_model.safetensors"
        )
    refuse_pickle(weights)
    config = json.loads(config_path.read_text())
    tensors = load_file(str(weights))
    names = sorted({_clean(k) for k in tensors if ".lora_A." in k})
    if not names:
        raise ValueError(f"{weights} holds no lora_A / lora_B tensors")
    out = []
    for name in names:
        a_key = next(k for k in tensors if ".lora_A." in k and _clean(k) == name)
        b_key = a_key.replace(".lora_A.", ".lora_B.")
        if b_key not in tensors:
            raise ValueError(f"{weights}: {a_key} has no matching {b_key}")
        a, b = tensors[a_key], tensors[b_key]
        scale = _scale(config, name, int(a.shape[0]))
        out.append(_update(name, a, b, scale))
    return out


def update_overlap(
    update: ModuleUpdate, subspace: Subspace, *, k: int | None = None, layer: int | None = None
) -> float:
    """Overlap (mean cos² of principal angles, :func:`subspace_overlap`) between the top-``k``
    left singular vectors of a module's ``ΔW`` and an activation subspace at ``layer``
    (default: the update's own layer).

    Raises:
        ValueError: the output width differs from the subspace's ``d_model``, or ``k`` too
            large. KeyError: the subspace has no basis at that layer.
    """
    layer = update.layer if layer is None else layer
    if layer is None:
        raise ValueError(f"{update.name}: no layer index in the name; pass layer=")
    if update.shape[0] != subspace.d_model:
        raise ValueError(
            f"{update.name} writes d_out={update.shape[0]} but the subspace has "
            f"d_model={subspace.d_model}; compare o_proj / down_proj (residual writers) only"
        )
    k = len(update.left) if k is None else k
    if not 1 <= k <= len(update.left):
        raise ValueError(f"k must be in 1..{len(update.left)}, got {k}")
    if layer not in subspace.bases:
        raise KeyError(f"layer {layer} not in the subspace's layers {subspace.layers}")
    return subspace_overlap(update.left[:k].float(), subspace.bases[layer])


def weight_activation_overlap(
    updates: list[ModuleUpdate],
    subspace: Subspace,
    *,
    kinds: tuple[str, ...] = ("o_proj", "down_proj"),
    k: int | None = None,
) -> dict[tuple[int, str], float]:
    """:func:`update_overlap` for every residual-writing module (``kinds``) at a layer the
    subspace covers: ``{(layer, kind): overlap}``.

    Raises:
        ValueError: none of the updates is at a layer of the subspace.
    """
    out = {}
    for u in updates:
        if u.kind in kinds and u.layer in subspace.bases:
            kk = None if k is None else min(k, len(u.left))
            out[(u.layer, u.kind)] = update_overlap(u, subspace, k=kk)
    if not out:
        raise ValueError(
            f"no {kinds} update at the subspace's layers {subspace.layers}; updates cover "
            f"layers {sorted({u.layer for u in updates if u.layer is not None})}"
        )
    return out
