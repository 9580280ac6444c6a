"""Fresh processes: the start-up of train.py to its first training step, of the imports and of the tools' --help;
how a child process of the benchmark is run and timed; and the machine the figures were measured on."""

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.loops import stats
from benchmarks.settings import ROOT, STARTUP


def run_child(args: list[str], what: str, timeout: float = 1800) -> tuple[float, str | None]:
    """(wall seconds, None) of a subprocess in the repository, or (seconds, the reason it failed)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"{what} ran over {timeout:.0f} s"
    seconds = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        return seconds, f"{what} exited with status {done.returncode}: {lines[-1].strip()}"
    return seconds, None


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine() -> dict:
    """The processor, its cores and the versions that the figures depend on."""
    import torchvision

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
        if Path("/proc/cpuinfo").is_file()
        else None
    )
    return {
        "cpu": cpu or platform.processor() or None,
        "cores": cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def first_step(data: list[str], threads: int | None, tmp: Path, i: int) -> tuple[float | None, str | None]:
    """(seconds from spawn to the first training step, None) of `python train.py` (FirstStep writes the time and
    exits), or (None, the reason it did not get there)."""
    marker = tmp / f"first_step_{i}"
    spawned = time.time()
    _, failed = run_child(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "epochs=1",
            *data,
            "trainer.accelerator=cpu",
            *([f"threads={threads}"] if threads else []),
            f"hydra.run.dir={tmp / 'startup' / str(i)}",
            "+callbacks.first_step._target_=benchmarks.callbacks.FirstStep",
            f"+callbacks.first_step.path={marker}",
        ],
        "python train.py",
        timeout=600,
    )
    if not marker.is_file():
        return None, failed or "python train.py ended before its first training step"
    return float(marker.read_text()) - spawned, None


def ratios(result: dict) -> dict:
    """The ratios of the start-up targets: lightning / torch, each tool's --help / torch, first step - lightning."""
    median = {name: entry["median"] if entry else None for name, entry in result.items()}
    torch_s, lightning_s = median["import_torch"], median["import_lightning"]
    found = {}
    if torch_s and lightning_s:
        found["lightning_over_torch"] = round(lightning_s / torch_s, 2)
        found.update(
            {
                f"{tool}_help_over_torch": round(median[f"{tool}_help"] / torch_s, 2)
                for tool in ("plots", "evaluate", "compare")
            }
        )
        if median["train_first_step"]:
            found["first_step_minus_lightning"] = round(median["train_first_step"] - lightning_s, 2)
    return found


def measure_startup(data: list[str], threads: int | None, rounds: int, tmp: Path) -> dict:
    """Seconds of each STARTUP command and of `python train.py` to its first training step, in fresh processes,
    in rounds that take each in turn: {name: stats, ..., "ratios": ..., "error": ...}."""
    times: dict[str, list[float]] = {name: [] for name in (*STARTUP, "train_first_step")}
    error = None
    for i in range(rounds):
        for name, command in STARTUP.items():
            seconds, failed = run_child(command, name, timeout=600)
            if failed and name != "bad_value":  # lr=-1 is meant to fail, at once
                error = error or failed
            times[name].append(seconds)
        seconds, failed = first_step(data, threads, tmp, i)
        if seconds is None:
            error = error or failed
            continue
        times["train_first_step"].append(seconds)
    result = {name: stats(values) for name, values in times.items()}
    return {**result, "ratios": ratios(result), "error": error}
