"""Hooks: the only part of steerlab that touches model internals.

:func:`attach` finds a model's decoder and returns a :class:`Lab`, through which recording
(:meth:`Lab.record`), steering (:meth:`Lab.steer`) and directional ablation
(:meth:`Lab.ablate`) run as ``with`` blocks. :func:`orthogonalize_weights` makes an ablation
permanent by editing weights.
"""

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
    "HookName",
    "Lab",
    "ModelLayout",
    "Recording",
    "attach",
    "find_layout",
    "orthogonalize_weights",
]
