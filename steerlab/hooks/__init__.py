"""Hooks: the only part of steerlab that touches model internals.

:func:`attach` finds a model's decoder and returns a :class:`Lab`, through which recording
(:meth:`Lab.record`), steering (:meth:`Lab.steer`) and directional ablation
(:meth:`Lab.ablate`) run as ``with`` blocks. :func:`orthogonalize_weights` makes an ablation
permanent by editing weights. :mod:`.collect` records datasets of activations (base vs
fine-tuned on one ``PeftModel``, contrast pairs, judge-labelled answers), streamed to disk.
"""

from steerlab.hooks.collect import (
    ContrastStores,
    Example,
    PairedStores,
    collect_contrast,
    collect_labelled,
    collect_paired,
    encode_examples,
    record_examples,
    response_means,
)
from steerlab.hooks.lab import Lab, attach
from steerlab.hooks.layers import HOOK_POINTS, ArchitectureError, ModelLayout, find_layout
from steerlab.hooks.names import HookName
from steerlab.hooks.orthogonalize import orthogonalize_weights
from steerlab.hooks.record import Recording
from steerlab.hooks.store import ActivationStore

__all__ = [
    "HOOK_POINTS",
    "ActivationStore",
    "ArchitectureError",
    "ContrastStores",
    "Example",
    "HookName",
    "Lab",
    "ModelLayout",
    "PairedStores",
    "Recording",
    "attach",
    "collect_contrast",
    "collect_labelled",
    "collect_paired",
    "encode_examples",
    "find_layout",
    "orthogonalize_weights",
    "record_examples",
    "response_means",
]
