"""Worker for the 2-process DDP test, run as
``accelerate launch --multi_gpu --num_processes 2 tests/ddp_worker.py OUT``
(or ``torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT``).

Each process trains the same tiny Llama with :func:`steerlab.training.train_lora` (unchanged
code, as a user's script would) and saves its own copy of the LoRA weights to
``OUT/rank{r}.safetensors`` so the test can compare the ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from peft import get_peft_model_state_dict
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))

from training_helpers import char_tokenizer

from steerlab.models import tiny
from steerlab.training import LoraTrainConfig, train_lora

RECORDS = [
    {"id": i, "prompt": f"Add {i} and {i + 1}.", "response": f"{i} + {i + 1} = {2 * i + 1}"}
    for i in range(16)
]


def main(out: Path) -> None:
    torch.set_num_threads(1)
    model = tiny("llama", num_layers=2)
    cfg = LoraTrainConfig(rank=4, max_steps=4, lr=1e-2, batch_size=2, max_length=64)
    result = train_lora(model, char_tokenizer(), RECORDS, cfg, out / "adapter", progress=False)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    state = {
        k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(model).items()
    }
    save_file(state, str(out / f"rank{rank}.safetensors"))
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    (out / f"rank{rank}.txt").write_text(
        f"{world} {result.steps} {result.manifest['world_size']} {type(model).__name__}\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
