"""Early-stopped forwards: run the decoder only as far as the hooks need, never the head.

A recording of layers 10, 15 and 20 of a 30-layer model needs blocks 0-20; the other nine
blocks and the vocabulary head (49k × d_model for SmolLM2) are wasted work. Inside
:meth:`Lab.stop_early() <steerlab.hooks.lab.Lab.stop_early>` every forward of the model
stops right before the first block that no active hook needs (TransformerLens's
``stop_at_layer``, nnsight's ``stop()``) and returns a :class:`StoppedEarly` marker instead
of logits. What ran is exactly what the full forward would have run up to there, so the
recorded activations are bitwise the full forward's.

How: a forward pre-hook on each block (and on the output embedding) raises a private
exception once it is past the last layer that any of the lab's hooks (recordings,
steering, ablation) uses; a wrapper around the root module's ``forward`` catches it and
returns :class:`StoppedEarly`, so the lab's own root hooks see a finished call and commit
the recording. Everything is removed when the ``with`` block exits.

Refused, because a partial forward would leave something half-done:
- inside ``generate()`` (it needs logits);
- with a caller's ``past_key_values`` (the cache would hold new tokens in some layers only).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn
from torch.utils.hooks import RemovableHandle

if TYPE_CHECKING:
    from steerlab.hooks.lab import Lab

_MARK = "_steerlab_early_stop"


@dataclass(frozen=True)
class StoppedEarly:
    """What an early-stopped forward returns instead of the model's output.

    Attributes:
        last_layer: the last decoder block that ran (``-1``: none; ``num_layers - 1``: all
            blocks ran, only the head was skipped).
    """

    last_layer: int
    logits: None = None


class _Stop(Exception):
    """Raised from a pre-hook to leave the forward; never escapes :func:`stop_early`."""

    def __init__(self, last_layer: int) -> None:
        super().__init__(last_layer)
        self.last_layer = last_layer


def needed_layer(lab: Lab) -> int:
    """The last block any of ``lab``'s active hooks uses (``-1`` if none is active)."""
    layers = [key.layer for key, slot in lab._slots.items() if slot.interventions or slot.recorders]
    return max(layers, default=-1)


def _head(root: nn.Module) -> nn.Module | None:
    get = getattr(root, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        head = getattr(root, "unembed", None)  # TransformerLens
    return head if isinstance(head, nn.Module) else None


def _stopper(lab: Lab, index: int):
    def pre_hook(module: nn.Module, args: Any) -> None:
        if index > needed_layer(lab):
            raise _Stop(index - 1)

    return pre_hook


def _wrap_forward(lab: Lab, root: nn.Module) -> Any:
    original = root.forward

    @functools.wraps(original)
    def forward(*args: Any, **kwargs: Any) -> Any:
        if lab._tracker.in_generate:
            raise RuntimeError(
                "stop_early() cannot run inside generate(): generation needs the logits; "
                "leave the stop_early() block before generating"
            )
        if kwargs.get("past_key_values") is not None:
            raise ValueError(
                "stop_early() refuses a forward with past_key_values: the cache would be "
                "updated in the first layers only; record without a cache, or without "
                "stop_early()"
            )
        try:
            return original(*args, **kwargs)
        except _Stop as stop:
            return StoppedEarly(stop.last_layer)

    setattr(forward, _MARK, True)
    return forward


@contextlib.contextmanager
def stop_early(lab: Lab) -> Iterator[None]:
    """Stop every forward of ``lab.model`` after the last block an active hook needs.

    Nested use is a no-op. See the module docstring; :meth:`Lab.stop_early` is the public
    entry point.

    Raises (from the forward):
        RuntimeError: inside ``generate()``. ValueError: ``past_key_values`` given.
    """
    root = lab.layout.root
    if getattr(root.__dict__.get("forward"), _MARK, False):
        yield
        return
    previous = root.__dict__.get("forward")  # an instance-level forward (accelerate), or None
    with lab._tracking():  # watches generate()
        handles: list[RemovableHandle] = []
        try:
            for i, block in enumerate(lab.layout.blocks):
                handles.append(block.register_forward_pre_hook(_stopper(lab, i)))
            head = _head(root)
            if head is not None and head is not lab.layout.embed:
                handles.append(head.register_forward_pre_hook(_stopper(lab, lab.num_layers)))
            root.forward = _wrap_forward(lab, root)
            yield
        finally:
            for handle in handles:
                handle.remove()
            if previous is None:
                root.__dict__.pop("forward", None)
            else:
                root.forward = previous
