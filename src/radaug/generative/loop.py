"""The training loop every generative model shares: seeded steps, the loss log, atomic
checkpoints and resuming from them.

:func:`train` drives a :class:`~radaug.generative.base.GenerativeModel` whose
networks, optimizers, loss scaler, random generator and training data
:meth:`~radaug.generative.base.GenerativeModel.fit` has set up: it calls the model's
``_train_step`` on batches from its ``_draw_batch`` until ``steps``, averages the
loss components over each logging interval (:class:`LossLog`) and writes atomic
checkpoints holding networks, optimizers, loss scaler, generator state and the loss
log, so a resumed run ends byte-identical to an uninterrupted one on CPU.
Checkpoints hold only tensors and plain Python values, so they load with
``torch.load(path, weights_only=True)`` (:func:`read_checkpoint`).

With a :class:`~radaug.generative.selection.Selection` the loop also scores the
model every ``selection.options.every`` steps and at the last step, stops early after
``patience`` evaluations without improvement, keeps the selection state (curve, best
weights) in every checkpoint, and leaves the best weights in the model at the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import torch

from .device import deterministic

if TYPE_CHECKING:
    from .base import GenerativeModel
    from .selection import Selection

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout; bumped when it changes incompatibly."""


class LossLog:
    """Loss components averaged over each logging interval, plus throughput."""

    def __init__(self, rows: list[dict] | None = None, sums: dict[str, float] | None = None, count: int = 0) -> None:
        self.rows = list(rows or [])
        self.sums = dict(sums or {})
        self.count = count

    def add(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def flush(self, step: int, images_per_s: float) -> dict:
        row = {"step": step, **{k: v / self.count for k, v in self.sums.items()}, "images_per_s": images_per_s}
        self.rows.append(row)
        self.sums, self.count = {}, 0
        return row

    def state(self) -> dict:
        return {"rows": list(self.rows), "sums": dict(self.sums), "count": self.count}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def train(
    model: GenerativeModel,
    config: dict,
    *,
    steps: int,
    batch_size: int,
    checkpoint_path: str | os.PathLike | None,
    checkpoint_every: int,
    log_every: int,
    log: Callable[[str], object],
    selection: Selection | None = None,
) -> pd.DataFrame:
    """Step ``model`` up to ``steps``, resuming from ``checkpoint_path`` when it matches ``config``.

    Parameters
    ----------
    model
        A model set up for training by its ``fit`` (networks and optimizers on the
        device, seeded generator, training data, ``step`` 0).
    config
        Everything the run's result depends on (model, hyperparameters, seed, batch
        size, precision, threads, data hashes); a checkpoint resumes only under
        an equal one.
    steps, batch_size, checkpoint_path, checkpoint_every, log_every, log
        As for :meth:`~radaug.generative.base.GenerativeModel.fit` (``batch_size``
        only for the throughput).
    selection
        In-fold model selection and early stopping (:mod:`radaug.generative.selection`),
        or None: train all ``steps`` and keep the last weights. Its configuration
        joins ``config`` (a checkpoint resumes only under the same one).

    Returns
    -------
    pandas.DataFrame
        The loss log: one row per logged step.
    """
    history = LossLog()
    if selection is not None:
        config = {**config, "selection": selection.config()}
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        history = resume(model, Path(checkpoint_path), config, steps, log, selection)

    model.nets.train()
    clock, clock_step = time.perf_counter(), model.step
    with deterministic(model.device):
        while model.step < steps and not (selection is not None and selection.stopped):
            history.add(model._train_step(*model._draw_batch()))
            model.step += 1
            stopping = False
            if selection is not None and selection.due(model.step, steps):
                started = time.perf_counter()
                selection.step(model, log)
                clock += time.perf_counter() - started  # throughput counts training only
                stopping = selection.stopped
            if model.step % log_every == 0 or model.step == steps or stopping:
                now = time.perf_counter()
                row = history.flush(model.step, (model.step - clock_step) * batch_size / (now - clock))
                clock, clock_step = now, model.step
                losses = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("step", "images_per_s"))
                log(f"{model.name} step {model.step}/{steps} {losses} {row['images_per_s']:.0f} img/s")
            if checkpoint_path is not None and (model.step % checkpoint_every == 0 or model.step == steps or stopping):
                model._write(checkpoint_path, training=training_state(model, config, history, selection))
    if selection is not None:
        selection.restore_best(model)
    return history.frame()


def resume(model: GenerativeModel, path: Path, config: dict, steps: int, log: Callable[[str], object],
           selection: Selection | None = None) -> LossLog:
    """Restore ``model``'s training state from ``path`` if it matches ``config``; return the loss log so far."""
    ckpt = read_checkpoint(path)
    training = ckpt.get("training")
    if training is None or training["config"] != config:
        log(f"{path}: checkpoint is from a different configuration; training from scratch")
        return LossLog()
    if ckpt["step"] > steps:
        log(f"{path}: checkpoint is at step {ckpt['step']} > steps={steps}; training from scratch")
        return LossLog()
    model.nets.load_state_dict(ckpt["state_dict"])
    for key, opt in model._optimizers.items():
        opt.load_state_dict(training["optimizers"][key])
    model._scaler.load_state_dict(training["scaler"])
    model._rng.set_state(training["rng"])
    model.step = ckpt["step"]
    if selection is not None:
        selection.load_state(training["selection"])
    log(f"{path}: resuming {model.name} from step {model.step}")
    return LossLog(**training["log"])


def training_state(model: GenerativeModel, config: dict, history: LossLog, selection: Selection | None = None) -> dict:
    """The ``training`` section of a checkpoint: what resuming needs beyond the model's weights."""
    state = {
        "config": config,
        "optimizers": {key: opt.state_dict() for key, opt in model._optimizers.items()},
        "scaler": model._scaler.state_dict(),
        "rng": model._rng.get_state(),
        "log": history.state(),
    }
    if selection is not None:
        state["selection"] = selection.state()
    return state


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint without unpickling arbitrary objects; check its format."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a radaug generative-model checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt
