"""``steerlab study``: the source paper's whole study, end to end, from one config.

Stages, in order (each also runs on its own, from the files the earlier stages wrote):

1. ``baseline``: misalignment of the base model (text-only; multimodal when it takes images).
2. ``train``: the LoRA rank sweep and harmful-fraction sweep (:func:`train_sweep`).
3. ``eval``: misalignment of every adapter, text-only and multimodal.
4. ``record``: fine-tuned − base activation differences on the training domain's response
   tokens, with the adapter enabled and disabled on one ``PeftModel``, streamed to disk.
5. ``fit``: the misalignment subspace per run and layer (streaming PCA), and its geometry
   across ranks, seeds and fractions (principal angles).
6. ``mitigate``: benign narrow fine-tuning, steering with −α × the mean shift, and top-k
   ablation with a random-subspace control, on the highest-rank adapters.
7. ``report``: ``report.md``, ``report.json`` and PNG plots.

Output layout (under ``out_dir``)::

    config.json           the validated config        study.log    the log
    base/<arm>/           baseline evaluation units   adapters/    one peft adapter per run
    eval/<run>/<arm>/     evaluation units            acts/<run>/  activation-difference shards
    subspace/<run>/       subspace.safetensors        geometry/    principal angles
    mitigate/{benign,steer,ablate}/<run>/             report/      report.md, report.json, PNGs

Every unit is cached by a hash of its config and inputs (:mod:`steerlab.study.cache`):
kill the study at any point and rerun it, and it resumes without redoing finished work.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from steerlab._io import atomic_path
from steerlab.models.registry import param_count
from steerlab.study.cache import cached_result, digest, file_digest, run_unit
from steerlab.study.config import StudyConfig
from steerlab.training.tokenize import is_processor

logger = logging.getLogger("steerlab.study")

STAGES = ("baseline", "train", "eval", "record", "fit", "mitigate", "report")
"""The stages of ``steerlab study``, in order."""

ARMS = ("text", "multimodal")


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
        from steerlab.training import run_name

        return run_name(self.rank, self.fraction, self.seed)


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _device(name: str) -> str | None:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else None
    return None if name == "cpu" else name


class Study:
    """One study: a validated config and its output directory.

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
        self.progress = progress
        _check_writable(self.out)
        self._log_handler: logging.Handler | None = None
        self._pairs = None
        self._takes_images: bool | None = None
        self._judge: Any = None

    # -- plumbing -----------------------------------------------------------------------
    @contextmanager
    def logging(self) -> Iterator[None]:
        """Send the ``steerlab`` loggers to ``out_dir/study.log`` while active."""
        handler = logging.FileHandler(self.out / "study.log")
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
        with atomic_path(self.out / "config.json") as tmp:
            tmp.write_text(json.dumps(self.config.to_dict(), indent=2))

    def load_model(self, adapter: Path | None = None) -> tuple[Any, Any]:
        """The base model (with ``adapter`` loaded on top, as a ``PeftModel``), eval mode."""
        from steerlab.models import load_model

        m = self.config.model
        model, tok = load_model(m.name, dtype=_dtype(m.dtype), device=_device(m.device))
        if self._takes_images is None:
            self._takes_images = is_processor(tok)
            with atomic_path(self.out / "model.json") as tmp:
                info = {"name": m.name, "takes_images": self._takes_images}
                tmp.write_text(json.dumps(info))
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
            model.eval()
        return model, tok

    @property
    def pairs(self):
        """The paired training records (built-in domain or user file)."""
        if self._pairs is None:
            from steerlab.domains import DOMAINS
            from steerlab.training import load_pairs

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
        info = self.out / "model.json"
        if self._takes_images is None and info.is_file():
            stored = json.loads(info.read_text())
            if stored.get("name") == self.config.model.name:
                self._takes_images = bool(stored["takes_images"])
        if self._takes_images is None:
            self.load_model()
        return ["text", "multimodal"] if self._takes_images else ["text"]

    def runs(self) -> list[Run]:
        return [Run(r, p, s) for r, p, s in self.config.train.grid()]

    def top_runs(self) -> list[Run]:
        """The mitigation targets: the highest rank of the rank sweep, every seed."""
        t = self.config.train
        return [Run(max(t.ranks), t.rank_sweep_fraction, s) for s in t.seeds]

    def bar(self, items, desc: str):
        main_process = os.environ.get("RANK", "0") == "0"  # one bar under accelerate launch
        # ``disable`` only when off, so that TQDM_DISABLE=1 still silences the bars.
        off = {} if self.progress and main_process else {"disable": True}
        return tqdm(items, desc=desc, leave=False, **off)

    # -- stage: train -------------------------------------------------------------------
    def train_key(self) -> str:
        t = self.config.train
        optim = {
            k: v
            for k, v in t.__dict__.items()
            if k not in ("ranks", "harmful_fractions", "seeds")
            and k not in ("rank_sweep_fraction", "fraction_sweep_rank")
        }
        return digest(
            {
                "model": self.config.model.name,
                "data": self.config.data.__dict__,
                "records": self.data_digest(),
                **optim,
            }
        )

    def data_digest(self) -> str:
        """Fingerprint of the paired records themselves (not just their config)."""
        if getattr(self, "_data_digest", None) is None:
            self._data_digest = digest([repr(p) for p in self.pairs])
        return self._data_digest

    def questions_digest(self, arm: str) -> str:
        """Fingerprint of the questions an arm evaluates (their text, references, images)."""
        from steerlab.study.metrics import question_set

        return digest([q.to_dict() for q in question_set(self.config.eval, arm)])

    def adapters_dir(self) -> Path:
        return self.out / "adapters" / self.train_key()

    def adapter(self, run: Run) -> Path:
        path = self.adapters_dir() / run.name
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(
                f"adapter {run.name} has not been trained yet ({path}); run the train stage "
                "(steerlab train CONFIG) first"
            )
        return path

    def lora_config(self, **overrides: Any):
        from steerlab.training import LoraTrainConfig

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
        )
        return LoraTrainConfig(**{**settings, **overrides})

    def stage_train(self) -> dict[str, Any]:
        from steerlab.training import train_sweep

        done = {}
        for run in self.bar(self.runs(), "train"):
            logger.info("train %s", run.name)
            (sweep,) = train_sweep(
                self.load_model,
                self.pairs,
                self.adapters_dir(),
                ranks=[run.rank],
                harmful_fractions=[run.fraction],
                seeds=[run.seed],
                config=self.lora_config(),
                progress=self.progress,
            )
            m = sweep.manifest
            losses = m.get("losses") or m.get("loss_curve") or []
            done[run.name] = {
                "skipped": sweep.skipped,
                "wall_time_s": m.get("wall_time_s"),
                "loss_first": losses[0] if losses else None,
                "loss_last": losses[-1] if losses else None,
            }
        return done

    # -- units: (directory, cache key, compute) for every stage except train ------------
    def _adapter_digest(self, adapter: Path | None) -> str | None:
        return None if adapter is None else file_digest(adapter / "adapter_model.safetensors")

    def eval_units(self, where: Path, adapter: Callable[[], Path | None]) -> list[Unit]:
        """One evaluation unit per arm of the model loaded with ``adapter()`` on top."""
        loaded: dict[str, Any] = {}

        def model_and_tok():
            if not loaded:
                loaded["m"] = self.load_model(adapter())
            return loaded["m"]

        units = []
        for arm in self.arms():
            key = lambda arm=arm: digest(  # noqa: E731 - keys need the adapter's digest
                {
                    "model": self.config.model.__dict__,
                    "eval": self.config.eval.__dict__,
                    "arm": arm,
                    "questions": self.questions_digest(arm),
                    "adapter": self._adapter_digest(adapter()),
                }
            )
            units.append(
                Unit(
                    where / arm, key, lambda tmp, arm=arm: self.measure(*model_and_tok(), arm, tmp)
                )
            )
        return units

    def baseline_units(self) -> list[Unit]:
        return self.eval_units(self.out / "base", lambda: None)

    def eval_stage_units(self) -> list[Unit]:
        return [
            u
            for run in self.runs()
            for u in self.eval_units(
                self.out / "eval" / run.name, lambda run=run: self.adapter(run)
            )
        ]

    def record_key(self, run: Run) -> str:
        return digest(
            {
                "model": self.config.model.__dict__,
                "data": self.config.data.__dict__,
                "record": self.config.record.__dict__,
                "adapter": self._adapter_digest(self.adapter(run)),
            }
        )

    def record_units(self) -> list[Unit]:
        from steerlab.study.activations import record_differences

        def compute(tmp: Path, run: Run) -> dict[str, Any]:
            model, tok = self.load_model(self.adapter(run))
            return record_differences(
                model,
                tok,
                self.pairs,
                self.config.record,
                tmp,
                max_length=self.config.train.max_length,
            )

        return [
            Unit(
                self.out / "acts" / run.name,
                lambda run=run: self.record_key(run),
                lambda tmp, run=run: compute(tmp, run),
            )
            for run in self.runs()
        ]

    def fit_key(self, run: Run) -> str:
        return digest({"acts": self.record_key(run), "analysis": self.config.analysis.__dict__})

    def fit_units(self) -> list[Unit]:
        from steerlab.study.activations import fit_run, geometry

        def compute(tmp: Path, run: Run) -> dict[str, Any]:
            acts = self.out / "acts" / run.name
            recorded = json.loads((acts / "unit.json").read_text())["result"]
            return fit_run(acts, recorded, self.config.analysis, tmp)

        units = [
            Unit(
                self.out / "subspace" / run.name,
                lambda run=run: self.fit_key(run),
                lambda tmp, run=run: compute(tmp, run),
            )
            for run in self.runs()
        ]
        runs = {r.name: r for r in self.runs()}
        units.append(
            Unit(
                self.out / "geometry",
                lambda: digest({n: self.fit_key(r) for n, r in runs.items()}),
                lambda tmp: geometry(self, runs, self.config.analysis.k),
            )
        )
        return units

    def mitigate_units(self) -> list[Unit]:
        from steerlab.study import mitigate

        units = []
        for run in self.top_runs():
            units += mitigate.units(self, run)
        return units

    def measure(
        self, model: Any, tok: Any, arm: str, out_dir: Path | None = None
    ) -> dict[str, Any]:
        """Misalignment of ``model`` on the ``arm`` question set (a JSON-ready dict; the
        full result, and for judges the answers and verdicts, go to ``out_dir`` if given)."""
        from steerlab.study.metrics import measure

        judge = None
        if self.config.eval.metric == "judge":
            if self._judge is None:
                from steerlab.eval.judges import make_judge

                self._judge = make_judge(dict(self.config.eval.judge))
            judge = self._judge
        base = self.out / "base" / arm / "answers.jsonl"
        return measure(self.config.eval, model, tok, arm, out_dir, judge=judge, base_answers=base)

    def units(self, stage: str) -> list[Unit]:
        """The cached units of ``stage`` (every stage but ``train`` and ``report``)."""
        return {
            "baseline": self.baseline_units,
            "eval": self.eval_stage_units,
            "record": self.record_units,
            "fit": self.fit_units,
            "mitigate": self.mitigate_units,
        }[stage]()

    def run_stage(self, stage: str) -> dict[str, Any]:
        """Run one stage (its finished units are reused); return ``{unit path: result}``."""
        if stage == "train":
            return self.stage_train()
        if stage == "report":
            from steerlab.study.report import write_report

            return write_report(self)
        results = {}
        for unit in self.bar(self.units(stage), stage):
            rel = str(unit.path.relative_to(self.out))
            result, reused = run_unit(unit.path, unit.key(), unit.compute)
            logger.info("%s %s: %s", stage, rel, "reused" if reused else "done")
            results[rel] = result
        return results

    def results(self, stage: str) -> dict[str, Any]:
        """The stored results of ``stage``'s units, without computing anything.

        Raises:
            FileNotFoundError: a unit has not run (or ran with another config); the
                message names the stage to run.
        """
        out = {}
        for unit in self.units(stage):
            result = cached_result(unit.path, unit.key())
            if result is None:
                raise FileNotFoundError(
                    f"{unit.path.relative_to(self.out)} is missing or stale: run the {stage} "
                    f"stage first (steerlab {stage} CONFIG --out {self.out})"
                )
            out[str(unit.path.relative_to(self.out))] = result
        return out

    # -- the whole study ------------------------------------------------------------------
    def run(
        self, stages: tuple[str, ...] = STAGES, *, on_stage: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Run ``stages`` in order; return each stage's JSON-ready result."""
        results: dict[str, Any] = {}
        self.write_config()
        with self.logging():
            for stage in stages:
                if on_stage is not None:
                    on_stage(stage)
                start = time.perf_counter()
                logger.info("stage %s: start", stage)
                results[stage] = self.run_stage(stage)
                logger.info("stage %s: done in %.1f s", stage, time.perf_counter() - start)
        return results


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


def plan(config: StudyConfig) -> dict[str, Any]:
    """What ``steerlab study`` would do, without loading a model: stages, run counts and a
    rough cost (CPU-equivalent minutes from the model's parameter count)."""
    t, e, m = config.train, config.eval, config.mitigate
    runs = config.train.grid()
    n_top = len(t.seeds)
    evals = 1 + len(runs) + n_top  # baseline, adapters, benign
    evals += n_top * (len(m.steer_alphas) + len(m.ablate_ks) * (1 + m.random_draws))
    params = _param_guess(config.model.name)
    step_s = (
        None if params is None else 4.4 * params / 135e6 * t.batch_size / 4 * t.max_length / 128
    )
    train_steps = len(runs) * t.max_steps + n_top * m.benign_steps
    return {
        "model": config.model.name,
        "model_status": _model_status(config.model.name),
        "stages": list(STAGES),
        "training_runs": len(runs),
        "runs": [f"r{r}-p{p:g}-s{s}" for r, p, s in runs],
        "benign_runs": n_top,
        "training_steps": train_steps,
        "evaluations": evals,
        "metric": e.metric,
        "params_guess": params,
        "rough_cpu_minutes": None
        if step_s is None
        else math.ceil((train_steps * step_s + evals * 20 * params / 135e6) / 60),
        "cost_note": "2-core CPU estimate from the parameter count (SmolLM2-135M: 4.4 s per "
        "LoRA step of 4 x 128 tokens); a GPU is one to two orders of magnitude faster",
    }


def _model_status(name: str) -> str:
    """Whether an offline model's package is installed (checked without loading it)."""
    from steerlab.models import offline

    base = name.removesuffix("-hybrid")
    try:
        spec = offline.get(base)
    except KeyError as exc:
        if name.startswith("tiny-"):
            return "tiny random-init model"
        if Path(name).expanduser().exists():
            return "local path"
        if "/" in name:
            return "hub id (needs the hub or its cache)"
        return f"UNKNOWN: {str(exc).strip(chr(34) + chr(39))}"
    return "installed" if spec.installed else f"NOT INSTALLED: {spec.install}"


def _param_guess(name: str) -> float | None:
    """Parameter count of model ``name`` for the cost estimate: the registry's count for an
    offline or hybrid model, 0.2M for a tiny model, else read from a size in the name
    (``"...-1.5B..."``), else ``None``."""
    count = param_count(name)
    if count is not None:
        return float(count)
    if name.startswith("tiny-"):
        return 0.2e6
    m = re.search(r"(\d+(?:\.\d+)?)([mMbB])\b", name.replace("_", "-"))
    if m is None:
        return None
    return float(m.group(1)) * (1e6 if m.group(2) in "mM" else 1e9)
