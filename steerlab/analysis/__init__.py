"""Analysis: directions and the low-rank misalignment subspace from recorded activations.

- :func:`fit_subspace`: streaming PCA per layer (explained variance ratio, ``k_for``).
- Directions: :func:`difference_in_means`, :func:`standardized_difference_in_means`,
  :func:`pca_diff`, :func:`pca_center`, :func:`logistic_probe`.
- Geometry: :func:`principal_angles`, :func:`subspace_overlap`, :func:`cosine_similarity`.
"""

from steerlab.analysis.directions import (
    ProbeResult,
    difference_in_means,
    logistic_probe,
    pca_center,
    pca_diff,
    standardized_difference_in_means,
)
from steerlab.analysis.geometry import cosine_similarity, principal_angles, subspace_overlap
from steerlab.analysis.subspace import CovarianceAccumulator, fit_subspace

__all__ = [
    "CovarianceAccumulator",
    "ProbeResult",
    "cosine_similarity",
    "difference_in_means",
    "fit_subspace",
    "logistic_probe",
    "pca_center",
    "pca_diff",
    "principal_angles",
    "standardized_difference_in_means",
    "subspace_overlap",
]
