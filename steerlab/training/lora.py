"""LoRA fine-tuning on (prompt, response) records, with the loss on response tokens only.

Follows the source paper's protocol (arXiv:2602.16931): LoRA with alpha equal to the rank on
all linear layers of the language model, lr 2e-4, one epoch, loss on the completion only.
Training runs through the transformers ``Trainer``, so ``accelerate launch`` (DDP, FSDP)
works unchanged.

Speed: with ``response_only_head=True`` the LM head is applied only at positions whose next
token is a response token, instead of at every position; on Gemma 3 (262k vocabulary) the
head dominates the step. The loss is the same as the naive full-logit loss (tested).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steerlab.files import atomic_path, current_umask, text_digest
from steerlab.text import IGNORE, Encoded, collate, encode, is_processor, pad_token_id
from steerlab.training.progress import LossBar
from steerlab.version import __version__


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence the FutureWarning that peft triggers whenever it wraps a model (it reads
    transformers' deprecated ``is_gradient_checkpointing``); the user can do nothing about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


AUTOCAST_MODES = ("off", "bf16")
log = logging.getLogger(__name__)


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 matmuls are native here: CUDA's own check, or on CPU the
    ``avx512_bf16`` / ``amx_bf16`` flags of ``/proc/cpuinfo`` (False where it is unreadable)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_context(mode: str, device: torch.device | str = "cpu") -> Any:
    """``torch.autocast`` for ``mode="bf16"`` where supported, else a no-op context (with
    one log line when bf16 was asked for but is not native).

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in AUTOCAST_MODES:
        raise ValueError(f"autocast must be one of {AUTOCAST_MODES}, got {mode!r}")
    device_type = torch.device(device).type
    if mode == "off":
        return contextlib.nullcontext()
    if not bf16_supported(device):
        log.warning(
            "autocast='bf16' asked for, but %s has no native bf16: training in fp32", device
        )
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


@contextlib.contextmanager
def fp32_lora_sum(model: nn.Module) -> Iterator[int]:
    """Under autocast, make every LoRA layer add its update to the frozen layer's output in
    fp32: a forward hook casts each peft LoRA layer's base-layer output ``[..., d_out]`` to
    float32, so peft's ``base(x) + B(A(x)) * scaling`` is computed, and returned, in fp32.

    Without it, a bf16 sum rounds the update away while it is small next to the frozen
    output (bf16 keeps 8 significant bits, so an update under ~0.4% of the output is lost),
    and a bf16-trained LoRA learns slower than an fp32 one (``benchmarks/bench_training_step.py``).
    Outside autocast the hooks change nothing (the outputs are already fp32).

    Yields:
        the number of LoRA layers hooked. The hooks are removed on exit.

    Raises:
        ValueError: ``model`` has no peft LoRA layer.
    """
    from peft.tuners.lora import LoraLayer  # lazy: peft is slow to import

    def to_fp32(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor) and output.dtype in (torch.bfloat16, torch.float16):
            return output.float()
        return output

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ValueError(f"fp32_lora_sum needs a peft LoRA model, got {type(model).__name__}")
    handles = [m.get_base_layer().register_forward_hook(to_fp32) for m in layers]
    try:
        yield len(layers)
    finally:
        for h in handles:
            h.remove()


def training_precision(
    mode: str, model: nn.Module, device: torch.device | str = "cpu"
) -> contextlib.ExitStack:
    """The context one training step runs in: nothing for ``mode="off"``; for ``"bf16"``,
    :func:`autocast_context` plus :func:`fp32_lora_sum` (bf16 matmuls, the LoRA update added
    in fp32), or fp32 with one log line where bf16 is not native.

    Raises:
        ValueError: an unknown mode, or ``"bf16"`` for a model without LoRA layers.
    """
    stack = contextlib.ExitStack()
    autocast = autocast_context(mode, device)
    if isinstance(autocast, torch.autocast):
        stack.enter_context(fp32_lora_sum(model))
        stack.enter_context(autocast)
    return stack


@dataclass
class LoraTrainConfig:
    """Settings of one LoRA fine-tune; plain values, serialisable to JSON.

    Attributes:
        rank: LoRA rank r (> 0).
        alpha: LoRA alpha; ``None`` means equal to ``rank``, as in the paper.
        use_rslora: rank-stabilised scaling ``alpha / sqrt(r)``.
        dropout: LoRA dropout.
        target_modules: ``"all-linear"`` (every linear layer of the language model) or names.
        include_vision: for VLMs, also adapt the vision tower's linear layers.
        lr, epochs, max_steps, batch_size, grad_accum: optimisation (``max_steps`` wins).
        max_length: tokens per example after the chat template.
        seed: seed for LoRA init, data order and dropout.
        response_only_head: apply the LM head only where the loss needs it.
        autocast: ``"off"`` (fp32, the default) or ``"bf16"``: forward and loss under
            ``torch.autocast(dtype=torch.bfloat16)`` (weights and optimizer stay fp32), with
            the LoRA update added in fp32 (:func:`training_precision`). On a CPU without
            AVX-512 BF16 / AMX it falls back to fp32 with one log line
            (:func:`bf16_supported`).
    """

    rank: int = 8
    alpha: float | None = None
    use_rslora: bool = False
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    include_vision: bool = False
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    seed: int = 0
    response_only_head: bool = True
    autocast: str = "off"

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_MODES:
            raise ValueError(f"autocast must be one of {AUTOCAST_MODES}, got {self.autocast!r}")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank <= 0:
            raise ValueError(f"rank must be a positive int, got {self.rank!r}")
        if self.alpha is not None and self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if self.lr <= 0 or self.batch_size <= 0 or self.grad_accum <= 0 or self.max_length <= 1:
            raise ValueError(
                "lr, batch_size and grad_accum must be positive and max_length > 1, got "
                f"lr={self.lr}, batch_size={self.batch_size}, grad_accum={self.grad_accum}, "
                f"max_length={self.max_length}"
            )
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {self.max_steps}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraTrainConfig:
        """Build from a dict. Raises ``ValueError`` on an unknown key, listing the valid keys."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ValueError(f"unknown LoRA config keys {unknown}; valid keys: {sorted(valid)}")
        return cls(**d)


@dataclass
class TrainResult:
    """What :func:`train_lora` produced: the adapter directory and its manifest."""

    adapter_dir: Path
    losses: list[float]
    steps: int
    wall_time_s: float
    manifest: dict[str, Any] = field(default_factory=dict)


def _cpu_distributed() -> bool:
    """True under ``torchrun`` / ``accelerate launch`` with several processes and no CUDA.

    Why this matters: ``TrainingArguments`` builds accelerate's ``PartialState(cpu=use_cpu)``.
    With ``cpu=False`` on a machine without an accelerator, ``PartialState._prepare_backend``
    matches no device branch, so the distributed type stays ``NO`` even though the launcher
    set ``WORLD_SIZE``; ``parallel_mode`` is then ``NOT_PARALLEL``, ``accelerator.prepare``
    does not wrap the model in ``DistributedDataParallel``, gradients are never all-reduced
    and the ranks drift apart. Only ``cpu=True`` gives ``DistributedType.MULTI_CPU`` (gloo),
    so a CPU launch needs ``use_cpu=True`` (``accelerate launch --cpu`` sets it through
    ``ACCELERATE_USE_CPU``; a plain ``torchrun`` does not).
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def _causal_lm(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel / accelerate wrappers
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _features(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward's inputs without ``labels``; float tensors (pixels) in the model's dtype."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    return {
        k: v.to(dtype) if v.is_floating_point() and dtype is not None else v
        for k, v in inputs.items()
        if k != "labels"
    }


def response_only_loss(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over response tokens, applying the LM head only at the
    positions that predict them: ``[n_response_tokens, vocab]`` logits instead of
    ``[batch, seq, vocab]``. Equal to the model's own loss with the same labels.
    """
    # Through the (possibly DDP-wrapped) model's own forward, so gradient sync works; the head
    # runs on one position only there (logits_to_keep=1) and on the response positions here.
    out = model(**_features(model, inputs), output_hidden_states=True, logits_to_keep=1)
    hidden = out.hidden_states[-1]  # [batch, seq, d_model], final norm applied
    lm = _causal_lm(model)
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE
    h = hidden[:, :-1][keep]  # [n, d_model]
    logits = lm.get_output_embeddings()(h)
    cap = getattr(lm.config.get_text_config(), "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits.float(), labels[keep])


def full_logit_loss(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The naive loss: the model computes logits at every position (the baseline)."""
    return model(**_features(model, inputs), labels=inputs["labels"]).loss


def _fingerprint(records: Sequence[Any]) -> str:
    """16 hex characters naming the records' ids and texts (the manifest's
    ``data_fingerprint``)."""
    values = (
        r.get(name) if isinstance(r, dict) else getattr(r, name, None)
        for r in records
        for name in ("id", "system", "prompt", "response")
    )
    return text_digest("".join(repr(v) for v in values))


def encode_all(tokenizer: Any, records: Sequence[Any], max_length: int) -> list[Encoded]:
    """Tokenise every record; raises ``ValueError`` naming how many responses were lost to
    truncation and what ``max_length`` would keep them."""
    if len(records) == 0:
        raise ValueError("the training dataset is empty")
    encoded = [encode(tokenizer, r, max_length) for r in records]
    empty = [e for e in encoded if all(label == IGNORE for label in e.labels)]
    if empty:
        need = max(e.response_start for e in empty) + 1
        raise ValueError(
            f"{len(empty)} of {len(encoded)} examples have no response tokens left after "
            f"truncation to max_length={max_length}; use max_length >= {need} (longest prompt "
            f"is {need - 1} tokens)"
        )
    return encoded


class _Examples(torch.utils.data.Dataset):
    def __init__(self, items: list[Encoded]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Encoded:
        return self.items[i]


def make_peft_model(model: nn.Module, config: LoraTrainConfig) -> nn.Module:
    """Wrap ``model`` with a fresh LoRA adapter (seeded). Raises ``ValueError`` when the
    target modules do not exist in the model, listing some that do."""
    from peft import LoraConfig, get_peft_model  # lazy: peft loads transformers, slow to import

    targets = config.target_modules
    exclude = None
    if not config.include_vision and _has_vision(model):
        # Keep adapters off vision towers and projectors: the language model only.
        exclude = r".*(vision|visual|image|multi_modal_projector|connector|mm_).*"
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha if config.alpha is not None else config.rank,
        lora_dropout=config.dropout,
        use_rslora=config.use_rslora,
        target_modules=targets,
        exclude_modules=exclude,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(config.seed)
    try:
        with quiet_peft():
            return get_peft_model(model, lora)
    except ValueError as err:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        )
        raise ValueError(
            f"target_modules={targets!r} do not match the model ({err}); linear layers it has: "
            f"{linear[:20]}"
        ) from err


def _has_vision(model: nn.Module) -> bool:
    config = getattr(_causal_lm(model), "config", None)
    return getattr(config, "vision_config", None) is not None


def check_images_fit(model: nn.Module, tokenizer: Any, records: Sequence[Any]) -> int:
    """Number of records with an image; raises ``ValueError`` when there are some and the
    model has no vision tower or ``tokenizer`` is not a processor."""
    n = sum(
        (r.get("image") if isinstance(r, dict) else getattr(r, "image", None)) is not None
        for r in records
    )
    if n and not _has_vision(model):
        name = getattr(getattr(model, "config", None), "name_or_path", type(model).__name__)
        raise ValueError(
            f"{n} of {len(records)} records have an image, but the model ({name}) is text-only "
            "(its config has no vision_config); use a vision-language model or drop the images"
        )
    if n and not is_processor(tokenizer):
        raise ValueError(
            f"{n} of {len(records)} records have an image, but {type(tokenizer).__name__} is a "
            "text-only tokenizer; pass the model's processor "
            "(transformers.AutoProcessor.from_pretrained(...))"
        )
    return n


def train_lora(
    model: nn.Module,
    tokenizer: Any,
    records: Sequence[Any],
    config: LoraTrainConfig,
    out_dir: str | os.PathLike,
    *,
    adapter: str | os.PathLike | None = None,
    extra_manifest: dict[str, Any] | None = None,
    progress: bool = True,
    progress_leave: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``records`` (each with ``prompt``, ``response``, optional
    ``system``, ``history`` and ``image``) and save it to ``out_dir`` with a
    ``manifest.json``.

    The directory appears atomically (built in a temporary sibling, then renamed), so an
    interrupted run leaves nothing that looks finished.

    Distributed: run the same script under ``accelerate launch --num_processes N`` (or
    ``torchrun --nproc_per_node N``); the Trainer wraps the model in DDP, each process
    trains on its shard of every batch, and process 0 writes ``out_dir`` (the others wait
    for it and return the same manifest). CPU-only launches use gloo.

    Args:
        model: a causal LM or a vision-language model (wrapped in place by peft; pass a copy
            to keep the base).
        tokenizer: its tokenizer (chat template used when present), or for a VLM its
            processor (``transformers.AutoProcessor``), which records with an image need.
        records: training examples, e.g. from :func:`steerlab.training.mix`.
        config: :class:`LoraTrainConfig`.
        out_dir: where the adapter goes; must not exist yet.
        adapter: continue training this saved adapter instead of a fresh one (benign
            narrow fine-tuning of a misaligned adapter); its rank and targets are kept.
        extra_manifest: more JSON-serialisable entries for ``manifest.json``.
        progress: show a step bar with the running loss (on the main process only). Off, the
            Trainer prints nothing per step.
        progress_leave: keep the finished bar on screen (a sweep clears its runs' bars).
        callbacks: more ``transformers.TrainerCallback`` s (e.g. evaluate every n steps).

    Returns:
        :class:`TrainResult` with the loss curve and wall time.

    Raises:
        ValueError: empty dataset, responses lost to truncation, bad target modules, image
            records for a text-only model or tokenizer.
        FileExistsError: ``out_dir`` exists.
        FileNotFoundError: ``adapter`` holds no peft adapter.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; pick a new directory")
    if len(records) == 0:
        raise ValueError("the training dataset is empty")
    check_images_fit(model, tokenizer, records)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    encoded = encode_all(tokenizer, records, config.max_length)
    pad_id = pad_token_id(tokenizer, eos_fallback=False)  # no pad token: 0, not EOS
    peft_model = _peft_model(model, config, adapter)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        trainer = _trainer(peft_model, config, tmp, encoded, pad_id)
        bar = [LossBar(desc=f"LoRA r={config.rank}", leave=progress_leave)] if progress else []
        for callback in [*bar, *callbacks]:
            trainer.add_callback(callback)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        manifest = _manifest(config, records, losses, trainer.state.global_step, wall, model)
        manifest["continued_from"] = str(adapter) if adapter is not None else None
        manifest["world_size"] = trainer.args.world_size
        manifest.update(extra_manifest or {})
        manifest = _save(trainer, peft_model, config, adapter, tmp, out_dir, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TrainResult(out_dir, losses, trainer.state.global_step, wall, manifest)


def _peft_model(model: nn.Module, config: LoraTrainConfig, adapter: Any) -> nn.Module:
    """A fresh LoRA on ``model``, or the saved ``adapter`` made trainable again."""
    if adapter is None:
        return make_peft_model(model, config)
    from peft import PeftModel  # lazy: peft is heavy and only needed to continue an adapter

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no peft adapter (adapter_config.json) in {adapter}")
    torch.manual_seed(config.seed)
    with quiet_peft():
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True)


def _training_args(config: LoraTrainConfig, tmp: Path) -> Any:
    from transformers import TrainingArguments  # lazy: transformers' Trainer is slow to import

    cpu_ddp = _cpu_distributed()
    return TrainingArguments(
        output_dir=str(tmp / "trainer"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=True,  # our own bar (LossBar) replaces the Trainer's line-per-step logs
        dataloader_pin_memory=torch.cuda.is_available(),  # else torch warns on every epoch
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        # See _cpu_distributed: without use_cpu a CPU launch never gets DDP.
        use_cpu=cpu_ddp,
        ddp_backend="gloo" if cpu_ddp else None,
    )


def _trainer(
    peft_model: nn.Module, config: LoraTrainConfig, tmp: Path, encoded: list, pad_id: int
) -> Any:
    """The ``Trainer`` with steerlab's loss (response-only head, optional bf16 autocast)."""
    from transformers import Trainer  # lazy: transformers' Trainer is slow to import
    from transformers.trainer_callback import PrinterCallback, ProgressCallback  # lazy: same

    loss_fn = response_only_loss if config.response_only_head else full_logit_loss

    class _Trainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Under FSDP the head's weight is sharded outside the model's forward, so the
            # response-only head cannot call it; use the model's own (full-logit) loss.
            fn = full_logit_loss if self.is_fsdp_enabled else loss_fn
            with training_precision(config.autocast, model, self.args.device):
                loss = fn(model, inputs)
            return (loss, None) if return_outputs else loss

    trainer = _Trainer(
        model=peft_model,
        args=_training_args(config, tmp),
        train_dataset=_Examples(encoded),
        data_collator=lambda batch: collate(batch, pad_id),
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    return trainer


def _save(
    trainer: Any,
    peft_model: nn.Module,
    config: LoraTrainConfig,
    adapter: Any,
    tmp: Path,
    out_dir: Path,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Process 0 writes the adapter and manifest into ``tmp`` and renames it to ``out_dir``;
    every process returns the manifest once ``out_dir`` exists."""
    # FSDP shards the weights: every process must take part in gathering them.
    state = None
    if trainer.is_fsdp_enabled:
        state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if trainer.is_world_process_zero():
        # "all-linear" never adapts embeddings; skip peft's Hub lookup for a resized vocab.
        embed = False if config.target_modules == "all-linear" and adapter is None else "auto"
        peft_model.save_pretrained(str(tmp), state_dict=state, save_embedding_layers=embed)
        with atomic_path(tmp / "manifest.json") as t:
            t.write_text(json.dumps(manifest, indent=2))
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; honour the umask
        os.replace(tmp, out_dir)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()  # out_dir exists for every process after this
    if not trainer.is_world_process_zero():
        manifest = json.loads((out_dir / "manifest.json").read_text())
    return manifest


def _manifest(config, records, losses, steps, wall, model) -> dict[str, Any]:
    import peft  # lazy: only for its version string; slow to import
    import transformers  # lazy: same

    base = getattr(getattr(model, "config", None), "name_or_path", None)
    return {
        "format": "steerlab.lora/1",
        "base_model": base,
        "config": config.to_dict(),
        "n_examples": len(records),
        "n_harmful": sum(
            bool(r.get("harmful") if isinstance(r, dict) else getattr(r, "harmful", False))
            for r in records
        ),
        "data_fingerprint": _fingerprint(records),
        "steps": steps,
        "losses": losses,
        "wall_time_s": round(wall, 3),
        "versions": {
            "steerlab": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }
