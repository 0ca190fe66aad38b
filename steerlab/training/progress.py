"""Progress bars for training runs and sweeps (tqdm), quiet under CI.

One bar per run (steps, with the running loss as its postfix) replaces the Trainer's own
line-per-step log output, and :func:`~steerlab.training.train_sweep` shows one bar over its
runs. When stderr is not a terminal (CI logs, ``nohup``) the bars redraw at most every
``NON_TTY_INTERVAL_S`` seconds instead of on every step, so logs stay short. ``progress=False``
turns them off; so does tqdm's own ``TQDM_DISABLE=1`` environment variable.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback

NON_TTY_INTERVAL_S = 30.0


def bar(
    iterable: Any = None,
    *,
    total: int | None = None,
    desc: str,
    disable: bool = False,
    leave: bool = True,
):
    """A tqdm bar that redraws rarely when stderr is not a terminal."""
    tty = getattr(sys.stderr, "isatty", lambda: False)()
    # Only pass ``disable`` when turning the bar off, so that TQDM_DISABLE=1 still works.
    off = {"disable": True} if disable else {}
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        **off,
        mininterval=0.1 if tty else NON_TTY_INTERVAL_S,
        dynamic_ncols=True,
        leave=leave,
    )


class LossBar(TrainerCallback):
    """Trainer callback: a step bar with the latest training loss, on the main process."""

    def __init__(self, desc: str = "LoRA", leave: bool = True) -> None:
        self.desc = desc
        self.leave = leave
        self._bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._bar = bar(total=state.max_steps, desc=self.desc, leave=self.leave)

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(state.global_step - self._bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._bar is not None and logs and "loss" in logs:
            self._bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
