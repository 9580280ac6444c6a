"""What the benchmark adds to a Trainer: a timer of one epoch, plain steps interleaved with the Trainer's, and the
end of train.py at its first training step (for the start-up measurement)."""

import math
import os
import statistics
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.loops import plain_step


class FirstStep(L.Callback):
    """For the start-up measurement: at train.py's first training step, writes the time into `path` and ends
    the process at once (`+callbacks.first_step._target_=benchmarks.callbacks.FirstStep
    +callbacks.first_step.path=...`)."""

    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        Path(self.path).write_text(repr(time.time()))
        os._exit(0)


class EpochTimer(L.Callback):
    """Times the first epoch of a fit and stops it there: from the epoch's start to the end of training, so that
    the dev pass, history.csv, the figures and the two checkpoints (Lightning runs ModelCheckpoint after every
    other callback's on_train_epoch_end) count; and the dev pass alone. The Trainer is built for the config's
    `epochs` (20), so the epoch is one of the middle of a run: figures if plots.every_n_epochs is 1, and none
    of what train.py does once after the last epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module):
        self.dev_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self.dev_seconds = time.perf_counter() - self.dev_start

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


class PairedSteps(L.Callback):
    """Times the Trainer's training steps against plain ones, interleaved step by step: before each of the
    Trainer's steps it runs one step of the plain loop (its own model and optimiser, built from the same config,
    on a batch of the same tensor) and times it; the Trainer's step is the time from one batch start to the next
    less that plain step. A drift of the machine falls on both alike, so the ratio holds to about a percent,
    where epoch times move by 10-20 % between rounds. The first `skip` steps (warm-up) are left out."""

    def __init__(self, model, x: torch.Tensor, batch_size: int, clip: float | None, skip: int = 10):
        self.model, self.x, self.batch_size, self.clip, self.skip = model.train(), x, batch_size, clip, skip
        self.optimiser = model.configure_optimizers()
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.order = torch.randperm(len(x))
        self.plain: list[float] = []  # seconds of each plain step
        self.trainer: list[float] = []  # seconds from a batch start to the next, the plain step excluded
        self.last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self.last is not None:
            self.trainer.append(now - self.last)
        i = batch_idx % math.ceil(len(self.x) / self.batch_size) * self.batch_size
        with torch.enable_grad():
            plain_step(
                self.model, self.optimiser, self.parameters, self.x[self.order[i : i + self.batch_size]], self.clip
            )
        self.last = time.perf_counter()
        self.plain.append(self.last - now)

    def result(self) -> dict:
        skip = min(self.skip, len(self.trainer) // 2)
        plain, steps = self.plain[skip : len(self.trainer)], self.trainer[skip:]
        return {
            "steps": len(steps),
            "plain_ms": 1000 * sum(plain) / len(plain),
            "ms": 1000 * sum(steps) / len(steps),
            "ratio": sum(steps) / sum(plain),
            "ratio_median_of_pairs": statistics.median(t / p for t, p in zip(steps, plain)),
        }
