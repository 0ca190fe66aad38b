"""Models for steerlab: real pretrained models that ship inside PyPI packages, and tiny
random-init models of every supported architecture for tests and examples.

- :func:`available` lists the offline models (one table, :mod:`steerlab.models.registry`);
  :func:`load_model` loads one (or a hybrid, a tiny model, any local directory / hub id) as
  ``(model, tokenizer_or_processor)``.
- :func:`tiny` builds a tiny random-init model of a family; :func:`tiny_inputs` builds
  matching inputs (with an image for vision-language models).
"""

from steerlab.models.offline import load_model, resolve_gguf
from steerlab.models.registry import OfflineModel, available
from steerlab.models.tiny import (
    TEXT_FAMILIES,
    TINY_FAMILIES,
    VLM_FAMILIES,
    tiny,
    tiny_inputs,
    tiny_tokenizer,
)

__all__ = [
    "TEXT_FAMILIES",
    "TINY_FAMILIES",
    "VLM_FAMILIES",
    "OfflineModel",
    "available",
    "load_model",
    "resolve_gguf",
    "tiny",
    "tiny_inputs",
    "tiny_tokenizer",
]
