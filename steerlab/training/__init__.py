"""Training: LoRA fine-tunes of an aligned model on narrow harmful or benign data.

- :class:`LoraTrainConfig` and :func:`train_lora`: one LoRA fine-tune with the loss on the
  response tokens only (chat template applied; plain fallback without one), saved as a
  peft adapter with a manifest.
"""

from steerlab.training.lora import LoraTrainConfig, TrainResult, train_lora
from steerlab.training.tokenize import encode, render_prompt

__all__ = ["LoraTrainConfig", "TrainResult", "encode", "render_prompt", "train_lora"]
