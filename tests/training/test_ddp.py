"""Distributed training: ``train_lora`` unchanged under a 2-process CPU launch (DDP, gloo).

The worker (``ddp_worker.py``) is a plain user script; under ``torchrun --standalone
--nproc_per_node 2`` it behaves the same (accelerate's launcher runs torch.distributed.run).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "ddp_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_under_accelerate_launch_end_with_identical_adapters(tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2`` on a machine without CUDA: two gloo
    processes (accelerate's own ``--cpu`` flag starts a single process in accelerate 1.x)."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TQDM_DISABLE="1")
    proc = subprocess.run(
        [*launch, str(WORKER), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rank in (0, 1):  # world size, steps, manifest world size, model class
        assert (tmp_path / f"rank{rank}.txt").read_text().split() == [
            "2",
            "4",
            "2",
            "LlamaForCausalLM",
        ]
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert len(a) == 2 * 7 * 2  # lora_A and lora_B on 7 linear layers of 2 blocks
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "ranks diverged: gradients not all-reduced"
    assert all(torch.equal(saved["base_model.model." + k], a[k]) for k in a)
    # lora_B starts at zero: every one of them was trained.
    assert all(a[k].abs().max() > 1e-4 for k in a if "lora_B" in k)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
