"""metrics.json, a run's numbers: the one reader and its one damage policy, and the writers.

A file that is absent reads as {} (the run has not finished its first evaluation); a file that does not read as a
JSON object (cut short, not JSON, not an object, not text) raises `Damaged`, whose message says why: the comparison
marks such a run damaged, and a writer replaces it whole.
"""

import json
from pathlib import Path

from vae.core.errors import Damaged
from vae.files.layout import RunFiles
from vae.files.writing import write_atomically


def read_metrics(run_dir: Path) -> dict:
    path = RunFiles(run_dir).metrics
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise Damaged(f"{path} does not read ({type(error).__name__})") from None
    if not isinstance(metrics, dict):
        raise Damaged(f"{path} holds a {type(metrics).__name__}, not the run's metrics")
    return metrics


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    return write_atomically(RunFiles(run_dir).metrics, json.dumps(metrics, indent=2) + "\n")


def update_metrics(run_dir: Path, values: dict) -> Path:
    """Adds `values` to the run's metrics.json, keeping the keys it already holds (a damaged file is replaced)."""
    try:
        kept = read_metrics(run_dir)
    except Damaged:
        kept = {}
    return write_metrics(run_dir, {**kept, **values})
