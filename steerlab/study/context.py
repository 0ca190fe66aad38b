"""What every study stage shares: the run's config, its output paths, its fingerprints and
cache keys, model loading and the misalignment measurement.

Every output path of the study is defined once, in :class:`StudyPaths`; every cache key once,
in :class:`StudyContext` (a key hashes a stage's config and the fingerprints of its inputs, so
that a finished unit is reused exactly when nothing it depends on changed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from tqdm.auto import tqdm

from steerlab.domains import DOMAINS
from steerlab.eval.judges import make_judge
from steerlab.eval.questions import QuestionSet
from steerlab.files import adapter_digest, atomic_path, digest
from steerlab.models import load_model as load_weights
from steerlab.study.cache import UNIT_FILE, cached_result
from steerlab.study.config import StudyConfig
from steerlab.study.metrics import RESULT_FILE, measure, question_set
from steerlab.text import is_processor
from steerlab.training import LoraTrainConfig, load_pairs, run_name
from steerlab.training.lora import quiet_peft

ARMS = ("text", "multimodal")
MITIGATIONS = ("benign", "steer", "ablate")
MEAN_SHIFT_FILE = "mean_shift.safetensors"
SUBSPACE_FILE = "subspace.safetensors"
MEAN_DIFF_FILE = "mean_diff.safetensors"
FINETUNED_BASE_FILE = "finetuned_minus_base.safetensors"


@dataclass(frozen=True)
class Unit:
    """One cached unit of work: its directory, its cache key (computed lazily, since keys
    hash input files) and ``compute(tmp_dir) -> JSON-ready result``."""

    path: Path
    key: Callable[[], str]
    compute: Callable[[Path], dict[str, Any]]


@dataclass(frozen=True)
class Run:
    """One LoRA fine-tune of the sweeps."""

    rank: int
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        return run_name(self.rank, self.fraction, self.seed)


@dataclass(frozen=True)
class StudyPaths:
    """Every file and directory the study writes, under ``out``::

    config.json           the validated config        study.log    the log
    base/<arm>/           baseline evaluation units   adapters/    one peft adapter per run
    eval/<run>/<arm>/     evaluation units            acts/<run>/  activation-difference shards
    subspace/<run>/       subspace.safetensors        geometry/    principal angles
    mitigate/{benign,steer,ablate}/<run>/             report/      report.md, report.json, PNGs
    control/{base,misaligned-s<seed>,aligned-s<seed>}/ the positive control's units
    """

    out: Path

    def control(self, name: str) -> Path:
        """A positive-control unit: ``base`` or ``<misaligned|aligned>-s<seed>``."""
        return self.out / "control" / name

    @staticmethod
    def result(unit_dir: Path) -> Path:
        """The full evaluation result (per-question values) a measuring unit keeps."""
        return unit_dir / RESULT_FILE

    @property
    def config(self) -> Path:
        return self.out / "config.json"

    @property
    def log(self) -> Path:
        return self.out / "study.log"

    @property
    def model_info(self) -> Path:
        """``{"name", "takes_images"}`` of the model, written at its first load."""
        return self.out / "model.json"

    def base(self, arm: str) -> Path:
        return self.out / "base" / arm

    def base_answers(self, arm: str) -> Path:
        """The base model's answers (for comparative judges)."""
        return self.base(arm) / "answers.jsonl"

    def eval(self, run: str, arm: str) -> Path:
        return self.out / "eval" / run / arm

    def adapters(self, train_key: str) -> Path:
        return self.out / "adapters" / train_key

    def acts(self, run: str) -> Path:
        return self.out / "acts" / run

    def acts_result(self, run: str) -> Path:
        """The record unit's ``unit.json`` (its result, for the fit stage)."""
        return self.acts(run) / UNIT_FILE

    def mean_shift(self, run: str) -> Path:
        """The per-layer mean fine-tuned − base difference (a :class:`SteeringVector`)."""
        return self.acts(run) / MEAN_SHIFT_FILE

    def subspace_dir(self, run: str) -> Path:
        return self.out / "subspace" / run

    def subspace(self, run: str) -> Path:
        """The run's misalignment subspace (a :class:`Subspace`)."""
        return self.subspace_dir(run) / SUBSPACE_FILE

    @property
    def geometry(self) -> Path:
        return self.out / "geometry"

    def contrast(self, name: str) -> Path:
        """Harmful − benign (or benign − benign null) differences of a contrast
        (``<input set>/<contrast>/`` stores)."""
        return self.out / "contrast" / name

    def contrast_fit(self, name: str) -> Path:
        """A contrast's spectra, ``subspace.safetensors`` (its primary difference, all
        inputs, token level), ``mean_diff.safetensors`` and, for harmful − benign,
        ``finetuned_minus_base.safetensors`` on the same tokens."""
        return self.out / "subspace-contrast" / name

    @property
    def contrast_geometry(self) -> Path:
        return self.out / "geometry-contrast"

    def mitigate(self, kind: str, run: str) -> Path:
        """``kind`` is one of :data:`MITIGATIONS`."""
        return self.out / "mitigate" / kind / run

    @property
    def report(self) -> Path:
        return self.out / "report"

    @property
    def export(self) -> Path:
        return self.out / "export"


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _device(name: str) -> str | None:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else None
    return None if name == "cpu" else name


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{time.time_ns()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(
            f"output directory {str(out)!r} is not writable ({exc.strerror or exc}); "
            "choose another with --out"
        ) from None


class StudyContext:
    """One study's config, paths, fingerprints, model loading and measurement.

    Args:
        config: the validated :class:`StudyConfig`.
        out_dir: where every stage writes (created; must be writable).
        progress: show progress bars.

    Raises:
        PermissionError: ``out_dir`` cannot be created or written.
    """

    def __init__(self, config: StudyConfig, out_dir: str | Path, *, progress: bool = True):
        self.config = config
        self.out = Path(out_dir)
        self.paths = StudyPaths(self.out)
        self.progress = progress
        _check_writable(self.out)
        self._pairs: Any = None
        self._data_digest: str | None = None
        self._takes_images: bool | None = None
        self._judge: Any = None

    # -- plumbing -----------------------------------------------------------------------
    @contextmanager
    def logging(self) -> Iterator[None]:
        """Send the ``steerlab`` loggers to ``out_dir/study.log`` while active."""
        handler = logging.FileHandler(self.paths.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("steerlab")
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()

    def write_config(self) -> None:
        with atomic_path(self.paths.config) as tmp:
            tmp.write_text(json.dumps(self.config.to_dict(), indent=2))

    def bar(self, items, desc: str):
        main_process = os.environ.get("RANK", "0") == "0"  # one bar under accelerate launch
        # ``disable`` only when off, so that TQDM_DISABLE=1 still silences the bars.
        off = {} if self.progress and main_process else {"disable": True}
        return tqdm(items, desc=desc, leave=False, **off)

    def stored(self, stage: str, units: list[Unit]) -> dict[str, Any]:
        """The stored results of ``stage``'s ``units`` (``{unit path relative to out:
        result}``), without computing anything.

        Raises:
            FileNotFoundError: a unit has not run (or ran with another config); the
                message names the stage to run.
        """
        out = {}
        for unit in units:
            result = cached_result(unit.path, unit.key())
            if result is None:
                raise FileNotFoundError(
                    f"{unit.path.relative_to(self.out)} is missing or stale: run the {stage} "
                    f"stage first (steerlab {stage} CONFIG --out {self.out})"
                )
            out[str(unit.path.relative_to(self.out))] = result
        return out

    # -- model, data, runs ----------------------------------------------------------------
    def load_model(self, adapter: Path | None = None) -> tuple[Any, Any]:
        """The base model (with ``adapter`` loaded on top, as a ``PeftModel``), eval mode."""
        m = self.config.model
        model, tok = load_weights(m.name, dtype=_dtype(m.dtype), device=_device(m.device))
        if self._takes_images is None:
            self._takes_images = is_processor(tok)
            with atomic_path(self.paths.model_info) as tmp:
                info = {"name": m.name, "takes_images": self._takes_images}
                tmp.write_text(json.dumps(info))
        if adapter is not None:
            with quiet_peft():
                model = PeftModel.from_pretrained(model, str(adapter))
            model.eval()
        return model, tok

    @property
    def pairs(self):
        """The paired training records (built-in domain or user file)."""
        if self._pairs is None:
            d = self.config.data
            if d.domain in DOMAINS:
                self._pairs = DOMAINS[d.domain].generate(d.n, d.seed)
            else:
                pairs = load_pairs(d.domain, columns=d.columns)
                if len(pairs) < d.n:
                    raise ValueError(
                        f"[data] n = {d.n} but {d.domain} has only {len(pairs)} records"
                    )
                self._pairs = pairs[: d.n]
        return self._pairs

    def arms(self) -> list[str]:
        """``["text"]``, plus ``"multimodal"`` when the model takes images (remembered in
        ``out_dir/model.json`` after the first load, so later stages need no model)."""
        info = self.paths.model_info
        if self._takes_images is None and info.is_file():
            stored = json.loads(info.read_text())
            if stored.get("name") == self.config.model.name:
                self._takes_images = bool(stored["takes_images"])
        if self._takes_images is None:
            self.load_model()
        return list(ARMS) if self._takes_images else ["text"]

    def runs(self) -> list[Run]:
        return [Run(r, p, s) for r, p, s in self.config.train.grid()]

    def benign_runs(self) -> list[Run]:
        """The benign controls (harmful fraction 0, same rank, seed and recipe) of every
        harmful run, when ``[train] benign_control`` is on (issue 14 / the EM literature:
        misalignment is the harmful fine-tune's excess over a benign one)."""
        if not self.config.train.benign_control:
            return []
        pairs = dict.fromkeys((r.rank, r.seed) for r in self.runs() if r.fraction > 0)
        return [Run(rank, 0.0, seed) for rank, seed in pairs]

    def extra_benign_runs(self) -> list[Run]:
        """Benign controls the sweep grid does not already train."""
        grid = set(self.runs())
        return [r for r in self.benign_runs() if r not in grid]

    def contrasts(self) -> dict[str, tuple[Run, Run]]:
        """``{name: (a, b)}`` of the adapter contrasts: every harmful run against its benign
        control (named after the harmful run), and the null, two benign controls of the
        highest rank that differ only in seed (``null-r<rank>-s<a>-s<b>``; needs two
        seeds)."""
        if not self.config.train.benign_control:
            return {}
        out = {r.name: (r, Run(r.rank, 0.0, r.seed)) for r in self.runs() if r.fraction > 0}
        seeds, rank = self.config.train.seeds, max(self.config.train.ranks)
        if len(seeds) >= 2:
            a, b = Run(rank, 0.0, seeds[0]), Run(rank, 0.0, seeds[1])
            out[f"null-r{rank}-s{seeds[0]}-s{seeds[1]}"] = (a, b)
        return out

    def null_name(self) -> str | None:
        return next((n for n in self.contrasts() if n.startswith("null-")), None)

    def top_runs(self) -> list[Run]:
        """The mitigation targets: the highest rank of the rank sweep, every seed."""
        t = self.config.train
        return [Run(max(t.ranks), t.rank_sweep_fraction, s) for s in t.seeds]

    def adapters_dir(self) -> Path:
        return self.paths.adapters(self.train_key())

    def adapter(self, run: Run) -> Path:
        """The trained adapter of ``run``.

        Raises:
            FileNotFoundError: the train stage has not trained it yet.
        """
        path = self.adapters_dir() / run.name
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(
                f"adapter {run.name} has not been trained yet ({path}); run the train stage "
                "(steerlab train CONFIG) first"
            )
        return path

    def lora_config(self, **overrides: Any) -> LoraTrainConfig:
        t = self.config.train
        settings = dict(
            use_rslora=t.use_rslora,
            dropout=t.dropout,
            target_modules=t.target_modules,
            include_vision=t.include_vision,
            lr=t.lr,
            epochs=t.epochs,
            max_steps=t.max_steps,
            batch_size=t.batch_size,
            grad_accum=t.grad_accum,
            max_length=t.max_length,
            autocast=t.autocast,
        )
        return LoraTrainConfig(**{**settings, **overrides})

    def measure(
        self,
        model: Any,
        tok: Any,
        arm: str,
        out_dir: Path | None = None,
        questions: QuestionSet | None = None,
        base_answers: Path | None = None,
    ) -> dict[str, Any]:
        """Misalignment of ``model`` on the ``arm`` question set, or on ``questions`` (a
        JSON-ready dict, see :func:`steerlab.study.metrics.measure`; the full result, and
        for judges the answers and verdicts, go to ``out_dir`` if given). The judge is built
        once per study. ``base_answers``: the base model's answers to the same questions
        (default: the baseline stage's, ``base/<arm>/answers.jsonl``); a file that does not
        exist yet means none."""
        judge = None
        if self.config.eval.metric == "judge":
            if self._judge is None:
                self._judge = make_judge(dict(self.config.eval.judge))
            judge = self._judge
        base = self.paths.base_answers(arm) if base_answers is None else base_answers
        return measure(
            self.config.eval,
            model,
            tok,
            arm,
            out_dir,
            judge=judge,
            base_answers=base,
            questions=questions,
        )

    # -- fingerprints and cache keys (bit-identical to earlier versions: runs resume) ----
    def data_digest(self) -> str:
        """Fingerprint of the paired records themselves (not just their config)."""
        if self._data_digest is None:
            self._data_digest = digest([repr(p) for p in self.pairs])
        return self._data_digest

    def questions_digest(self, arm: str) -> str:
        """Fingerprint of the questions an arm evaluates (their text, references, images)."""
        return digest([q.to_dict() for q in question_set(self.config.eval, arm)])

    def train_key(self) -> str:
        """The adapters' directory name: model, data, the records and the optimiser."""
        t = self.config.train
        sweep = ("ranks", "harmful_fractions", "seeds", "rank_sweep_fraction", "benign_control")
        optim = {k: v for k, v in t.__dict__.items() if k not in (*sweep, "fraction_sweep_rank")}
        if optim["autocast"] == "off":  # keys from before [train] autocast stay identical
            del optim["autocast"]
        return digest(
            {
                "model": self.config.model.name,
                "data": self.config.data.__dict__,
                "records": self.data_digest(),
                **optim,
            }
        )

    def eval_key(self, arm: str, adapter: Path | None) -> str:
        """One arm's evaluation of the base model with ``adapter`` (``None``: none) on top."""
        return digest(
            {
                "model": self.config.model.__dict__,
                "eval": self.config.eval.__dict__,
                "arm": arm,
                "questions": self.questions_digest(arm),
                "adapter": adapter_digest(adapter),
            }
        )

    def record_key(self, run: Run) -> str:
        return digest(
            {
                "model": self.config.model.__dict__,
                "data": self.config.data.__dict__,
                "record": self.config.record.__dict__,
                "adapter": adapter_digest(self.adapter(run)),
            }
        )

    def fit_key(self, run: Run) -> str:
        return digest({"acts": self.record_key(run), "analysis": self.config.analysis.__dict__})

    def control_key(self, kind: str, seed: int, train: QuestionSet, test: QuestionSet) -> str:
        """A positive-control fine-tune (``kind``: ``"misaligned"`` / ``"aligned"``
        references of the ``train`` half) and its measurement on the ``test`` half."""
        rank = self.config.train.fraction_sweep_rank
        return digest(
            {
                "model": self.config.model.__dict__,
                "lora": asdict(self.lora_config(rank=rank, seed=seed)),
                "kind": kind,
                "train": [q.to_dict() for q in train],
                "eval": self.config.eval.__dict__,
                "test": [q.to_dict() for q in test],
            }
        )

    def control_base_key(self, test: QuestionSet) -> str:
        """The base model's measurement on the positive control's ``test`` half."""
        return digest(
            {
                "model": self.config.model.__dict__,
                "eval": self.config.eval.__dict__,
                "test": [q.to_dict() for q in test],
            }
        )

    def contrast_base_key(self) -> str:
        """The base model's activations on the contrasts' input sets."""
        return digest(
            {
                "model": self.config.model.__dict__,
                "data": self.config.data.__dict__,
                "record": self.config.record.__dict__,
                **self._contrast_inputs(),
            }
        )

    def _contrast_inputs(self) -> dict[str, str]:
        """What the contrasts record on: the text questions, plus the image questions when
        the model takes images (absent for a text model, so its keys stay as they were)."""
        inputs = {
            "questions": self.questions_digest("text"),
            "inputs": "domain+broad_aligned+broad_misaligned",
        }
        if "multimodal" in self.arms():
            inputs["image_questions"] = self.questions_digest("multimodal")
        return inputs

    def contrast_key(self, name: str) -> str:
        a, b = self.contrasts()[name]
        null = name.startswith("null-")
        return digest(
            {
                "model": self.config.model.__dict__,
                "data": self.config.data.__dict__,
                "record": self.config.record.__dict__,
                **self._contrast_inputs(),
                "a": adapter_digest(self.adapter(a)),
                "b": adapter_digest(self.adapter(b)),
                "base": None if null else self.contrast_base_key(),
            }
        )

    def contrast_fit_key(self, name: str) -> str:
        return digest({"acts": self.contrast_key(name), "analysis": self.config.analysis.__dict__})

    def contrast_geometry_key(self) -> str:
        fits = {n: self.contrast_fit_key(n) for n in self.contrasts()}
        return digest({**fits, "fit": self.geometry_key()})

    def mitigation_source_key(self, run: Run) -> str | None:
        """The harmful − benign fit the steer/ablate units use (``None``: no benign
        control, they use fine-tuned − base)."""
        if run.name not in self.contrasts():
            return None
        return self.contrast_fit_key(run.name)

    def geometry_key(self) -> str:
        return digest({r.name: self.fit_key(r) for r in self.runs()})

    def benign_key(self, run: Run) -> str:
        cfg = self.config
        return digest(
            {
                "adapter": adapter_digest(self.adapter(run)),
                "steps": cfg.mitigate.benign_steps,
                "train": self.train_key(),
                "eval": cfg.eval.__dict__,
                "questions": self.questions_digest("text"),
                "model": cfg.model.__dict__,
            }
        )

    def steer_key(self, run: Run) -> str:
        cfg = self.config
        key = {
            "acts": self.record_key(run),
            "alphas": cfg.mitigate.steer_alphas,
            "eval": cfg.eval.__dict__,
            "questions": self.questions_digest("text"),
        }
        source = self.mitigation_source_key(run)
        return digest(key if source is None else {**key, "harmful_minus_benign": source})

    def ablate_key(self, run: Run) -> str:
        cfg = self.config
        key = {
            "fit": self.fit_key(run),
            "ks": cfg.mitigate.ablate_ks,
            "draws": cfg.mitigate.random_draws,
            "eval": cfg.eval.__dict__,
            "questions": self.questions_digest("text"),
        }
        source = self.mitigation_source_key(run)
        return digest(key if source is None else {**key, "harmful_minus_benign": source})
