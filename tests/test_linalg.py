"""steerlab.linalg: orthonormal bases and one-row bases."""

from __future__ import annotations

import pytest
import torch

from steerlab.linalg import as_rows, orthonormal_basis, span_basis


def _rows(k: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _projector(q: torch.Tensor) -> torch.Tensor:
    return q.T @ q


def test_orthonormal_basis_rows_are_orthonormal():
    q = orthonormal_basis(_rows(5, 16))
    assert q.shape == (5, 16)
    torch.testing.assert_close(q @ q.T, torch.eye(5, dtype=torch.float64))


def test_orthonormal_basis_preserves_the_span():
    b = _rows(4, 12, seed=1)
    q = orthonormal_basis(b)
    # every input row is its own projection onto the new basis
    torch.testing.assert_close(b @ _projector(q), b)


def test_orthonormal_basis_follows_gram_schmidt_order_and_signs():
    b = torch.tensor([[3.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    q = orthonormal_basis(b)
    torch.testing.assert_close(q, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert float(q[1] @ b[1]) > 0


def test_orthonormal_basis_keeps_the_input_dtype():
    assert orthonormal_basis(_rows(2, 8).float()).dtype == torch.float32
    assert orthonormal_basis(_rows(2, 8)).dtype == torch.float64


def test_orthonormal_basis_of_one_vector_is_its_unit_vector():
    v = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(orthonormal_basis(v), torch.tensor([[0.6, 0.8]]))


@pytest.mark.parametrize(
    "rows",
    [
        torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]),  # parallel rows
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),  # a zero row
        torch.ones(4, 3),  # more rows than dimensions
    ],
)
def test_orthonormal_basis_refuses_rank_deficient_rows(rows):
    with pytest.raises(ValueError, match="rank deficient"):
        orthonormal_basis(rows)


def test_as_rows_turns_a_vector_into_a_one_row_basis():
    v = torch.arange(4.0)
    assert as_rows(v).shape == (1, 4)
    assert torch.equal(as_rows(v)[0], v)
    b = _rows(3, 4)
    assert as_rows(b) is b


def test_span_basis_drops_dependent_rows():
    b = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    q = span_basis(b)
    assert q.shape == (2, 3)
    torch.testing.assert_close(q @ q.T, torch.eye(2))
    torch.testing.assert_close(b @ _projector(q), b)


def test_span_basis_of_zero_rows_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        span_basis(torch.zeros(2, 3))
