"""Analysis: directions and the low-rank misalignment subspace from recorded activations.

- :func:`fit_subspace`: streaming PCA per layer (explained variance ratio, ``k_for``).
- Directions: :func:`difference_in_means`, :func:`standardized_difference_in_means`,
  :func:`pca_diff`, :func:`pca_center`, :func:`logistic_probe`.
- Separation per layer: :func:`separation`, :func:`strongest_layer`.
- Geometry: :func:`principal_angles`, :func:`subspace_overlap`, :func:`cosine_similarity`.
- Collection (:mod:`.collect`): :func:`collect_paired` (adapter on vs off on one PeftModel),
  :func:`collect_contrast`, :func:`collect_labelled`, streamed to disk.
- Studies (:mod:`.studies`): :func:`ablation_curve` with a random control,
  :func:`steering_sweep`.
- Weight space (:mod:`.weights`): :func:`lora_updates`, :func:`effective_rank`,
  :func:`weight_activation_overlap`.
- Monitor (:mod:`.monitor`): :func:`projection_norm`, :class:`ActivationProbe`, :func:`auroc`.
- Plots: :mod:`steerlab.analysis.plots` (imported on demand; matplotlib Agg).
"""

from steerlab.analysis.collect import (
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
from steerlab.analysis.studies import (
    AblationRow,
    SteeringRow,
    ablation_curve,
    random_subspace,
    save_table,
    steering_sweep,
)
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
    "AblationRow",
    "ActivationProbe",
    "ContrastStores",
    "CovarianceAccumulator",
    "Example",
    "ModuleUpdate",
    "PairedStores",
    "ProbeResult",
    "SteeringRow",
    "ablation_curve",
    "auroc",
    "collect_contrast",
    "collect_labelled",
    "collect_paired",
    "cosine_similarity",
    "difference_in_means",
    "effective_rank",
    "encode_examples",
    "energy_rank",
    "fit_subspace",
    "logistic_probe",
    "lora_updates",
    "pca_center",
    "pca_diff",
    "per_response",
    "principal_angles",
    "projection_norm",
    "random_subspace",
    "record_examples",
    "response_means",
    "save_table",
    "separation",
    "standardized_difference_in_means",
    "steering_sweep",
    "strongest_layer",
    "subspace_overlap",
    "update_overlap",
    "weight_activation_overlap",
]
