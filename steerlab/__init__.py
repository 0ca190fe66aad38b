"""steerlab: activation steering and emergent-misalignment analysis for (vision-)language models.

Quick start::

    import steerlab
    lab = steerlab.attach(model)
    with lab.record(layers=[6, -1], positions="last") as rec:
        model(**batch)
    vec = steerlab.SteeringVector({6: direction})
    with lab.steer(vec, coefficient=4.0, positions="generated"):
        model.generate(**inputs)
"""

from steerlab.hooks import (
    HOOK_POINTS,
    ActivationStore,
    ArchitectureError,
    HookName,
    Lab,
    attach,
    orthogonalize_weights,
)
from steerlab.vectors import SteeringVector, Subspace, load
from steerlab.version import __version__

__all__ = [
    "HOOK_POINTS",
    "ActivationStore",
    "ArchitectureError",
    "HookName",
    "Lab",
    "SteeringVector",
    "Subspace",
    "__version__",
    "attach",
    "load",
    "orthogonalize_weights",
]
