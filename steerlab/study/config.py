"""The study configuration: one TOML or YAML file, validated before anything loads.

Every section is a dataclass; an unknown key anywhere is an error that names the section and
lists the valid keys, and every value is type- and range-checked, so a typo fails in
milliseconds instead of after an hour of training.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from steerlab import files

TRAIN_AUTOCAST = ("off", "bf16")
"""``[train] autocast`` values: :data:`steerlab.training.lora.AUTOCAST_MODES`, kept here so that
reading a config does not import torch."""


class ConfigError(ValueError):
    """A study config is malformed: unknown key, wrong type or value out of range."""


@dataclass
class ModelSection:
    """The base (aligned) model.

    Attributes:
        name: an offline model name (``steerlab models list``), a local checkpoint
            directory, a ``.gguf`` file or a hub id ``org/name``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``"auto"`` takes CUDA when present.

    The multimodal arm of the evaluation runs when the model takes images (a
    vision-language model with a processor, e.g. ``"gemma3-270m-hybrid"``).
    """

    name: str = "smollm2-135m-instruct"
    dtype: str = "float32"
    device: str = "auto"

    def check(self) -> None:
        if not self.name:
            raise ConfigError("[model] name must name a model, got an empty string")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(
                f"[model] dtype must be float32, bfloat16 or float16, got {self.dtype!r}"
            )


@dataclass
class DataSection:
    """The narrow training data.

    Attributes:
        domain: a built-in domain (``insecure_code``, ``risky_finance``, ``extreme_sports``,
            ``photo_prompts``) or a JSONL/CSV file of paired records.
        n: number of paired records (built-in domains are generated with this many).
        columns: column mapping for a user file (``"face"`` or a table of name → column).
        seed: generation seed of a built-in domain.
    """

    domain: str = "insecure_code"
    n: int = 200
    columns: str | dict[str, str] | None = None
    seed: int = 0

    def check(self) -> None:
        _positive("[data] n", self.n)


@dataclass
class TrainSection:
    """The LoRA sweeps: a rank sweep at ``rank_sweep_fraction`` and a harmful-fraction
    sweep at ``fraction_sweep_rank``, each over ``seeds`` (grid points shared by both are
    trained once). Optimisation settings are those of
    :class:`steerlab.training.LoraTrainConfig`. ``benign_control`` (default on) adds, for
    every harmful (rank, seed), a fine-tune of the same recipe and prompts at harmful
    fraction 0: the baseline of the harmful − benign misalignment subspace and its null.
    ``autocast = "bf16"`` trains under bf16 autocast with the LoRA update summed in fp32
    (1.38x faster per step on a CPU with AVX-512 BF16, the same loss curve within bf16
    noise: ``benchmarks/bench_training_step.py``); the default ``"off"`` trains in fp32.
    """

    ranks: list[int] = field(default_factory=lambda: [1, 8, 32])
    harmful_fractions: list[float] = field(default_factory=lambda: [0.1, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    rank_sweep_fraction: float = 1.0
    fraction_sweep_rank: int = 8
    max_steps: int = 30
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 2e-4
    max_length: int = 256
    use_rslora: bool = False
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    include_vision: bool = False
    benign_control: bool = True
    autocast: str = "off"

    def check(self) -> None:
        if self.autocast not in TRAIN_AUTOCAST:
            raise ConfigError(
                f"[train] autocast must be one of {list(TRAIN_AUTOCAST)}, got {self.autocast!r}"
            )
        if not self.ranks or not self.harmful_fractions or not self.seeds:
            raise ConfigError("[train] ranks, harmful_fractions and seeds must be non-empty")
        for r in [*self.ranks, self.fraction_sweep_rank]:
            _positive("[train] rank", r)
        for p in [*self.harmful_fractions, self.rank_sweep_fraction]:
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"[train] harmful fraction must be in [0, 1], got {p}")
        for name in ("max_steps", "batch_size", "grad_accum", "max_length"):
            _positive(f"[train] {name}", getattr(self, name))
        if self.lr <= 0:
            raise ConfigError(f"[train] lr must be positive, got {self.lr}")

    def grid(self) -> list[tuple[int, float, int]]:
        """The (rank, fraction, seed) runs of both sweeps, each once, in a stable order."""
        runs: list[tuple[int, float, int]] = []
        for r in self.ranks:
            runs += [(r, self.rank_sweep_fraction, s) for s in self.seeds]
        for p in self.harmful_fractions:
            runs += [(self.fraction_sweep_rank, p, s) for s in self.seeds]
        return list(dict.fromkeys(runs))


@dataclass
class EvalSection:
    """Misalignment measurement.

    Attributes:
        questions: the broad question set (``"broad"`` or a JSONL path).
        multimodal_questions: the image-question set, used when the model takes images.
        n_questions: use the first n questions of each set (0 = all).
        metric: ``"preference"`` (judge-free log-likelihood preference, cheap and
            deterministic) or ``"judge"`` (sample answers, score them with ``judge``).
        judge: judge spec for ``metric = "judge"`` (see ``steerlab.eval.judges``).
        samples, max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed:
            sampling settings for ``metric = "judge"``.
        batch_size: questions per forward / generate batch.
    """

    questions: str = "broad"
    multimodal_questions: str = "broad-multimodal"
    n_questions: int = 0
    metric: str = "preference"
    judge: dict[str, Any] = field(default_factory=dict)
    samples: int = 3
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1
    seed: int = 0
    batch_size: int = 8

    def check(self) -> None:
        if self.metric not in ("preference", "judge"):
            raise ConfigError(f"[eval] metric must be 'preference' or 'judge', got {self.metric!r}")
        if self.metric == "judge" and not self.judge:
            raise ConfigError("[eval] metric = 'judge' needs a [eval.judge] table")
        if self.n_questions < 0:
            raise ConfigError(f"[eval] n_questions must be >= 0, got {self.n_questions}")
        for name in ("samples", "max_new_tokens", "batch_size"):
            _positive(f"[eval] {name}", getattr(self, name))


@dataclass
class RecordSection:
    """Activation recording for the subspace fit: fine-tuned − base ``resid_post``
    differences on the response tokens of ``n_examples`` training-domain examples.

    Attributes:
        layers: decoder layers (negative counts from the end).
        point: hook point (``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out``).
        n_examples: examples recorded per adapter.
        batch_size: examples per forward.
    """

    layers: list[int] = field(default_factory=lambda: [10, 15, 20])
    point: str = "resid_post"
    n_examples: int = 64
    batch_size: int = 8

    def check(self) -> None:
        if not self.layers:
            raise ConfigError("[record] layers must name at least one layer")
        if self.point not in ("resid_pre", "resid_post", "attn_out", "mlp_out"):
            raise ConfigError(
                "[record] point must be resid_pre, resid_post, attn_out or mlp_out, "
                f"got {self.point!r}"
            )
        _positive("[record] n_examples", self.n_examples)
        _positive("[record] batch_size", self.batch_size)


@dataclass
class AnalysisSection:
    """Subspace fit: ``max_k`` components kept per layer; ``k`` the subspace size used for
    principal angles across runs."""

    max_k: int = 32
    k: int = 10

    def check(self) -> None:
        _positive("[analysis] max_k", self.max_k)
        _positive("[analysis] k", self.k)
        if self.k > self.max_k:
            raise ConfigError(f"[analysis] k ({self.k}) must be <= max_k ({self.max_k})")


@dataclass
class MitigateSection:
    """Mitigations, applied to the highest-rank adapters of the rank sweep (every seed).

    Attributes:
        benign_steps: steps of benign narrow fine-tuning (safe responses of the domain).
        steer_alphas: α for steering with −α × (mean fine-tuned − base shift) at the
            recorded layers; α = 1 subtracts the average shift.
        ablate_ks: top-k subspace components ablated at the recorded layers.
        random_draws: random subspaces of the same dimension per k (the control).
    """

    benign_steps: int = 20
    steer_alphas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])
    ablate_ks: list[int] = field(default_factory=lambda: [0, 1, 2, 5, 10])
    random_draws: int = 2

    def check(self) -> None:
        _positive("[mitigate] benign_steps", self.benign_steps)
        if any(k < 0 for k in self.ablate_ks):
            raise ConfigError(f"[mitigate] ablate_ks must be >= 0, got {self.ablate_ks}")
        _positive("[mitigate] random_draws", self.random_draws)


@dataclass
class ControlSection:
    """The positive control (issue 11): before any finding, show that the instrument sees
    misalignment where it certainly exists. The study's text questions are split in two
    halves (alternating within each category); per seed, one LoRA fine-tune with the study's
    recipe (rank ``[train] fraction_sweep_rank``) on the misaligned reference answers of half
    A, and one on its aligned references (the control's null), are measured on half B.

    Attributes:
        enabled: run the positive control (stage ``control``).
        n_questions: questions of ``[eval] questions`` the control splits, spread evenly over
            the set like ``[eval] n_questions`` (0: the study's own text questions). Raise it
            when the study's set has fewer than two questions in a category.
    """

    enabled: bool = True
    n_questions: int = 0

    def check(self) -> None:
        if self.n_questions < 0:
            raise ConfigError(f"[control] n_questions must be >= 0, got {self.n_questions}")
        if self.n_questions == 1:
            raise ConfigError("[control] n_questions must be 0 or at least 2 (two halves), got 1")


@dataclass
class StudyConfig:
    """A whole study. ``name`` labels the report; ``source`` is the file it came from."""

    name: str = "study"
    description: str = ""
    expected_wall_time: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    record: RecordSection = field(default_factory=RecordSection)
    analysis: AnalysisSection = field(default_factory=AnalysisSection)
    mitigate: MitigateSection = field(default_factory=MitigateSection)
    control: ControlSection = field(default_factory=ControlSection)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self, *sections: str) -> str:
        """sha256 (hex, 16 chars) of the named sections (all when none), for cache keys."""
        d = self.to_dict()
        part = {s: d[s] for s in sections} if sections else d
        return files.digest(part)


_SECTIONS = {
    "model": ModelSection,
    "data": DataSection,
    "train": TrainSection,
    "eval": EvalSection,
    "record": RecordSection,
    "analysis": AnalysisSection,
    "mitigate": MitigateSection,
    "control": ControlSection,
}


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin is None:
        if hint is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if hint is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if hint is type(None):
            return value is None
        return isinstance(value, hint)
    if origin is list:
        (inner,) = get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    # Union (X | Y)
    return any(_type_ok(value, arg) for arg in get_args(hint))


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, got {type(data).__name__}: {data!r}")
    hints = get_type_hints(cls)
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {', '.join(valid)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if key in _SECTIONS and cls is StudyConfig:
            kwargs[key] = _build(_SECTIONS[key], value, f"[{key}]")
            continue
        if not _type_ok(value, hint):
            raise ConfigError(
                f"{where} {key} = {value!r}: expected {_hint_name(hint)}, "
                f"got {type(value).__name__}"
            )
        if hint is float or (get_origin(hint) is list and get_args(hint) == (float,)):
            value = [float(v) for v in value] if isinstance(value, list) else float(value)
        kwargs[key] = value
    return cls(**kwargs)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def parse_config(data: dict[str, Any], *, source: str = "<dict>") -> StudyConfig:
    """Validate a config mapping (as read from TOML/YAML) into a :class:`StudyConfig`.

    Raises:
        ConfigError: an unknown key (the message lists the valid keys of that section), a
            value of the wrong type, or a value out of range; the message names ``source``.
    """
    try:
        config = _build(StudyConfig, data, "the top level")
        for name in _SECTIONS:
            getattr(config, name).check()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study config from a ``.toml`` or ``.yaml``/``.yml`` file.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: unreadable syntax, an unknown extension, or an invalid config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml  # lazy: optional dependency, needed only for YAML configs

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: expected a .toml, .yaml or .yml file, got {path.suffix!r}")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))
