"""Every study plot writes a valid PNG and rejects bad input."""

from __future__ import annotations

import math

import pytest
import torch

from steerlab.analysis import (
    fit_subspace,
)
from steerlab.eval.sweeps import AblationRow
from steerlab.study import plots
from steerlab.vectors import Subspace

PNG = b"\x89PNG\r\n\x1a\n"


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 2000


def test_every_plot_writes_a_valid_png_and_rejects_bad_input(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=g) * torch.linspace(4, 0.5, 16)
    sub = fit_subspace({2: x, 5: x * 2}, max_k=8)
    _png_ok(plots.plot_explained_variance(sub, tmp_path / "evr.png"))
    rows = [AblationRow(k, 10.0 - k, 80.0, 10.0, 0.5, 80.0, (9.5, 10.5)) for k in range(0, 5)]
    _png_ok(plots.plot_ablation_curve(rows, tmp_path / "abl.png"))
    subs = {f"r={r}": fit_subspace(torch.randn(200, 16, generator=g), max_k=3) for r in (1, 8, 32)}
    _png_ok(plots.plot_principal_angles(subs, tmp_path / "angles.png", k=3))
    _png_ok(plots.plot_principal_angles(subs, tmp_path / "ov.png", value="overlap"))
    _png_ok(plots.plot_layer_sweep({0: 0.5, 1: 2.0, 2: 1.0}, tmp_path / "sweep.png"))
    with pytest.raises(ValueError, match="no explained_variance_ratio"):
        plots.plot_explained_variance(Subspace({0: torch.eye(3)[:2]}), tmp_path / "a.png")
    with pytest.raises(ValueError, match="AblationRow"):
        plots.plot_ablation_curve([], tmp_path / "b.png")
    with pytest.raises(ValueError, match="at least 2 subspaces"):
        plots.plot_principal_angles({"a": sub}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="non-finite"):
        plots.plot_layer_sweep({0: math.nan}, tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"ending in \.png"):
        plots.plot_layer_sweep({0: 1.0}, tmp_path / "e.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "abl.png",
        "angles.png",
        "evr.png",
        "ov.png",
        "sweep.png",
    ]
