"""history.csv, the per-epoch record of the losses: `write_history` (called by the `History` callback,
vae/run/callbacks.py, at the end of every epoch) and `read_history` (the learning curves, a sweep's comparison).
Plain CSV: reading a sweep does not import Lightning."""

import csv
import io
import math
from pathlib import Path

from vae.files.writing import write_atomically


def write_history(path: Path, rows: list[dict]) -> None:
    """history.csv: one row per epoch, a column per name that any row has (empty where a row lacks it)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=names, restval=math.nan)
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())  # whole: a kill leaves the previous epoch's file


def read_history(path: Path) -> list[dict]:
    """history.csv as one {column: number} per epoch; a line that is not numbers (damaged, or from elsewhere) is
    left out, and a file that is not CSV at all reads as the rows before the damage."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", errors="replace") as f:
        try:
            for row in csv.DictReader(f):
                try:
                    rows.append({key: float(value) for key, value in row.items() if key and value not in ("", None)})
                except (TypeError, ValueError, AttributeError):
                    continue
        except csv.Error:
            pass
    return [row for row in rows if "epoch" in row]
