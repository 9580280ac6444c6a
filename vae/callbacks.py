"""Callbacks: the per-epoch record of the losses (`history.csv`, a summary line) and the guard against a non-finite loss."""

import csv
import logging
import math
import time
from collections import deque
from pathlib import Path

import lightning as L

from vae.errors import UserError

log = logging.getLogger(__name__)


class History(L.Callback):
    """Writes train and val metrics of every epoch to `history.csv` (the data of the learning curves).

    With `print_summary` (on when the progress bar is off, as in CI logs) it also prints one line per epoch.
    """

    def __init__(self, path: str, print_summary: bool = False):
        self.path = Path(path)
        self.print_summary = print_summary
        self.rows: list[dict] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()
                   if name.split("/")[0] in ("train", "val")}
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
               "seconds": round(time.perf_counter() - self._start, 3), **dict(sorted(metrics.items()))}
        self.rows.append(row)
        if trainer.is_global_zero:
            self.write()
            if self.print_summary:
                shown = "  ".join(f"{name} {value:.2f}" for name, value in sorted(metrics.items()))
                log.info(f"epoch {row['epoch']}/{trainer.max_epochs}  {shown}  ({row['seconds']:.1f} s)")

    def write(self) -> None:
        names = list(dict.fromkeys(name for row in self.rows for name in row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=names, restval=math.nan)
            writer.writeheader()
            writer.writerows(self.rows)

    def best(self, monitor: str = "val/loss") -> dict:
        """The epoch row with the lowest `monitor`: the epoch of the best checkpoint."""
        return min((row for row in self.rows if monitor in row), key=lambda row: row[monitor])

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])


class FiniteLoss(L.Callback):
    """Stops training at the first non-finite training loss, before a checkpoint can store the
    ruined weights (checkpoints are written at the end of each epoch)."""

    def __init__(self, keep: int = 5):
        self.recent: deque[tuple[int, float]] = deque(maxlen=keep)  # (step, loss) of the last finite steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = float(outputs["loss"])
        if math.isfinite(loss):
            self.recent.append((trainer.global_step, loss))
            return
        last = ", ".join(f"{value:.2f} (step {step})" for step, value in self.recent) or "none"
        raise UserError(
            f"the training loss became {loss} at step {trainer.global_step} (epoch {trainer.current_epoch + 1}); "
            f"the last finite losses: {last}. Lower the learning rate (lr={pl_module.lr}) and keep gradient "
            f"clipping on (gradient_clip_val={trainer.gradient_clip_val}), then train again; "
            "checkpoints/last.ckpt from the last finished epoch is intact")
