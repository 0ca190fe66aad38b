"""Analysis: directions and the low-rank misalignment subspace from recorded activations.

- :func:`fit_subspace`: streaming PCA per layer (explained variance ratio, ``k_for``).
- Directions: :func:`difference_in_means`, :func:`standardized_difference_in_means`,
  :func:`pca_diff`, :func:`pca_center`, :func:`logistic_probe`.
- Separation per layer: :func:`separation`, :func:`strongest_layer`.
- Geometry: :func:`principal_angles`, :func:`subspace_overlap`, :func:`cosine_similarity`.
- Weight space (:mod:`.weights`): :func:`lora_updates`, :func:`effective_rank`,
  :func:`weight_activation_overlap`.
- Monitor (:mod:`.monitor`): :func:`projection_norm`, :class:`ActivationProbe`, :func:`auroc`.

Recording activations lives in :mod:`steerlab.hooks.collect`, the steer/ablate sweeps in
:mod:`steerlab.eval.sweeps` and the plots in :mod:`steerlab.study.plots`.
"""

from steerlab.analysis.directions import (
    ProbeResult,
    difference_in_means,
    logistic_probe,
    pca_center,
    pca_diff,
    separation,
    standardized_difference_in_means,
    strongest_layer,
)
from steerlab.analysis.geometry import cosine_similarity, principal_angles, subspace_overlap
from steerlab.analysis.monitor import ActivationProbe, auroc, per_response, projection_norm
from steerlab.analysis.subspace import CovarianceAccumulator, fit_subspace
from steerlab.analysis.weights import (
    ModuleUpdate,
    effective_rank,
    energy_rank,
    lora_updates,
    update_overlap,
    weight_activation_overlap,
)

__all__ = [
    "ActivationProbe",
    "CovarianceAccumulator",
    "ModuleUpdate",
    "ProbeResult",
    "auroc",
    "cosine_similarity",
    "difference_in_means",
    "effective_rank",
    "energy_rank",
    "fit_subspace",
    "logistic_probe",
    "lora_updates",
    "pca_center",
    "pca_diff",
    "per_response",
    "principal_angles",
    "projection_norm",
    "separation",
    "standardized_difference_in_means",
    "strongest_layer",
    "subspace_overlap",
    "update_overlap",
    "weight_activation_overlap",
]
