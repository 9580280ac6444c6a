"""The per-epoch record of the losses: `History` writes `history.csv` (and a summary line per epoch),
`read_history` reads it back for the learning curves and the comparison of a sweep."""

import csv
import logging
import math
import time
from pathlib import Path

import lightning as L

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
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.split("/")[0] in ("train", "val")
        }
        row = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "seconds": round(time.perf_counter() - self._start, 3),
            **dict(sorted(metrics.items())),
        }
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


def read_history(path: Path) -> list[dict]:
    """history.csv as one {column: number} per epoch; a line still being written is left out."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({key: float(value) for key, value in row.items() if key and value not in ("", None)})
            except (TypeError, ValueError):
                continue
    return [row for row in rows if "epoch" in row]
