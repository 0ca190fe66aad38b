"""Training: LoRA fine-tunes of an aligned model on narrow harmful or benign data.

- Data: :class:`PairRecord` (prompt, safe and harmful response, optional image/system),
  :func:`load_pairs` (JSONL, CSV, a ``datasets.Dataset``, with a column mapping),
  :func:`mix` (exactly ``round(p·n)`` harmful responses, seeded). The built-in narrow
  domains that generate such data are in :mod:`steerlab.domains`.
- :class:`LoraTrainConfig` and :func:`train_lora`: one LoRA fine-tune with the loss on the
  response tokens only (chat template applied; plain fallback without one), saved as a
  peft adapter with a manifest; ``adapter=`` continues a saved adapter (benign narrow
  fine-tuning as a mitigation).
- :func:`train_sweep`: one adapter per rank × harmful fraction × seed, resumable.
"""

from steerlab.text import encode, render_prompt
from steerlab.training.data import (
    COLUMN_PRESETS,
    FACE_COLUMNS,
    MixedRecord,
    PairDataError,
    PairRecord,
    PairSet,
    PairSummary,
    load_pairs,
    mix,
)
from steerlab.training.lora import LoraTrainConfig, TrainResult, train_lora
from steerlab.training.sweep import SweepRun, run_name, train_sweep

__all__ = [
    "COLUMN_PRESETS",
    "FACE_COLUMNS",
    "LoraTrainConfig",
    "MixedRecord",
    "PairDataError",
    "PairRecord",
    "PairSet",
    "PairSummary",
    "SweepRun",
    "TrainResult",
    "encode",
    "load_pairs",
    "mix",
    "render_prompt",
    "run_name",
    "train_lora",
    "train_sweep",
]
