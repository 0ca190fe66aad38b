"""Linear-algebra helpers shared by the hooks and the analysis: rows and orthonormal bases.

A basis is a tensor ``[k, d_model]`` whose rows span a k-dimensional subspace of the
residual stream; a single direction ``[d_model]`` is the one-row basis ``[1, d_model]``.
"""

from __future__ import annotations

import torch

__all__ = ["as_rows", "orthonormal_basis", "span_basis"]


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """A direction ``[d_model]`` as the one-row basis ``[1, d_model]`` (a view); rows
    ``[k, d_model]`` (or any other shape) are returned unchanged.

    Example:
        >>> as_rows(torch.ones(4)).shape
        torch.Size([1, 4])
    """
    return x.unsqueeze(0) if x.ndim == 1 else x


def orthonormal_basis(rows: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows ``[k, d_model]`` spanning the same subspace as ``rows``
    ``[k, d_model]`` (Gram-Schmidt order: row ``i`` of the result lies in the span of input
    rows ``0..i`` and has a positive component along input row ``i``).

    Computed by QR in float64 (Householder, ``torch.linalg.qr``), with the signs fixed so
    that ``R`` has a positive diagonal; the result has the input's dtype.

    Raises:
        ValueError: the rows are rank deficient: some row keeps at most ``1e-6`` of its own
            norm after removing its projection on the earlier rows (e.g. a zero row, a
            repeated row, or ``k > d_model``).
    """
    b64 = rows.double()
    q, r = torch.linalg.qr(b64.T)
    diag = torch.diagonal(r)
    # Each row must keep a meaningful part of its own norm after removing the earlier rows.
    if diag.numel() < len(rows) or (diag.abs() <= 1e-6 * b64.norm(dim=1).clamp_min(1e-30)).any():
        raise ValueError(f"basis of shape {tuple(rows.shape)} is rank deficient")
    q = q * torch.sign(diag)
    return q.T.to(rows.dtype)


def span_basis(rows: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """Orthonormal basis ``[r, d_model]`` of the span of ``rows`` ``[k, d_model]``, where
    ``r`` is the numerical rank: the right singular vectors (SVD in float64) whose singular
    value exceeds ``tol × max(1, largest singular value)``, largest first. Unlike
    :func:`orthonormal_basis`, dependent rows are dropped instead of refused. The result has
    the input's dtype.

    Raises:
        ValueError: every singular value is below the threshold (the span is empty).
    """
    _, s, vh = torch.linalg.svd(rows.double(), full_matrices=False)
    keep = s > tol * max(1.0, float(s.max()) if len(s) else 1.0)
    if not keep.any():
        raise ValueError("the resulting subspace is empty")
    return vh[keep].to(rows.dtype)
