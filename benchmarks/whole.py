"""--whole: the lab's default command as a user lives it, start to finished run directory, against a plain script.

Each round starts, one after the other in fresh processes and in an order that rotates from round to round,
`python train.py` (the default config on the bench's
data: 20 epochs, test, K = 100 evaluation, generation measures, figures, checkpoints, TensorBoard), the same with
`eval.generation.enabled=false`, and benchmarks/plain_script.py (the same model, epochs, dev passes, test and
K = 100 bound in plain torch: no figures, checkpoints or logs), and times each from spawn to exit. Where the
seconds went comes from the run's own metrics.json (`seconds`: vae/run/timing.py) and the script's JSON line.
"""

import json
import statistics
import subprocess
import sys
import time

from benchmarks.data import Bench
from benchmarks.settings import ROOT, WHOLE
from vae.files.layout import RunFiles

ARMS = ("project", "project_no_generation", "plain")


def arm_command(bench: Bench, arm: str, folder) -> list[str]:
    epochs, k, n = (bench.plan[f"whole_{key}"] for key in ("epochs", "iw_samples", "generation_n"))
    threads = bench.args.threads
    if arm == "plain":
        return [
            sys.executable,
            str(ROOT / "benchmarks" / "plain_script.py"),
            str(bench.root),
            f"--dev-size={bench.dev_size}",
            *(["--epochs", str(epochs)] if epochs else []),
            *(["--iw-samples", str(k)] if k else []),
            *(["--threads", str(threads)] if threads else []),
        ]
    return [
        sys.executable,
        str(ROOT / "train.py"),
        *bench.data,
        f"hydra.run.dir={folder}",
        "trainer.enable_progress_bar=false",
        *([f"epochs={epochs}"] if epochs else []),
        *([f"eval.iw_samples={k}"] if k else []),
        *([f"eval.generation.n={n}"] if n else []),
        *([] if bench.plan["whole_figures"] else ["plots.every_n_epochs=0", "plots.at_end=false"]),
        *([f"threads={threads}"] if threads else []),
        *(["eval.generation.enabled=false"] if arm == "project_no_generation" else []),
    ]


def run_arm(bench: Bench, arm: str, round_: int) -> dict:
    """One whole process of `arm`: its wall seconds and where they went."""
    folder = bench.tmp / "whole" / f"{arm}-{round_}"
    start = time.perf_counter()
    done = subprocess.run(arm_command(bench, arm, folder), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        raise RuntimeError(f"--whole: {arm} exited with status {done.returncode}: {lines[-1].strip()}")
    if arm == "plain":
        out = json.loads(done.stdout.strip().splitlines()[-1])
        seconds = out["seconds"]
        phases = {
            "start": seconds["imports"] + seconds["data"],
            "fit": seconds["fit"],
            "test": seconds["test"],
            "evaluation": seconds["evaluation"],
        }
        quality = {"test_loss": out["test_loss"], "test_log_likelihood": out["test_log_likelihood"]}
    else:
        metrics = json.loads(RunFiles(folder).metrics.read_text())
        phases = dict(metrics["seconds"])
        quality = {"test_loss": metrics["test/loss"], "test_log_likelihood": metrics.get("test/log_likelihood")}
    phases["exit and the rest"] = wall - sum(phases.values())
    print(f"whole, round {round_ + 1}, {arm:22} {wall:6.1f} s", file=sys.stderr, flush=True)
    return {"wall_seconds": wall, "phases": phases, **quality}


def median_phases(runs: list[dict]) -> dict:
    names = list(dict.fromkeys(name for run in runs for name in run["phases"]))
    return {name: statistics.median(run["phases"].get(name, 0.0) for run in runs) for name in names}


def measure_whole(bench: Bench) -> dict:
    """Rounds of the three arms in rotating order; the medians, ranges and ratios to the plain script (paired: each
    round's wall time over the same round's plain script)."""
    rounds = bench.rounds if bench.args.rounds else bench.plan["whole_rounds"]
    runs = {arm: [] for arm in ARMS}
    for round_ in range(rounds):  # the order rotates (A B C, B C A, C A B): no arm always runs first or last
        for arm in ARMS[round_ % len(ARMS) :] + ARMS[: round_ % len(ARMS)]:
            runs[arm].append(run_arm(bench, arm, round_))
    result = {"rounds": rounds, "epochs": bench.plan["whole_epochs"] or 20, "goal": WHOLE["goal"], "arms": {}}
    plain = [run["wall_seconds"] for run in runs["plain"]]
    for arm, arm_runs in runs.items():
        walls = [run["wall_seconds"] for run in arm_runs]
        result["arms"][arm] = {
            "median": statistics.median(walls),
            "range": [min(walls), max(walls)],
            "ratio_to_plain": statistics.median(walls) / statistics.median(plain),
            "paired_ratios": [w / p for w, p in zip(walls, plain)],
            "phases": median_phases(arm_runs),
            "runs": arm_runs,
        }
    result["holds"] = result["arms"]["project"]["ratio_to_plain"] <= WHOLE["goal"]
    return result


def measure_loop(bench: Bench) -> dict:
    """The training loop, step by step, which the machine's drift moves least: one epoch of the lab model in the
    project's Trainer and in Lightning's alone, each step interleaved with a plain one (benchmarks/measures.py)."""
    from benchmarks.measures import paired_steps

    return {which: paired_steps(bench, "lab", which) for which in ("project", "lightning")}


def loop_lines(loop: dict) -> list[str]:
    return [
        f"training steps interleaved with plain ones (lab, one epoch): the project's Trainer "
        f"{loop['project']['ratio']:.2f} x, Lightning's Trainer alone {loop['lightning']['ratio']:.2f} x"
    ]


def whole_lines(whole: dict) -> list[str]:
    """The --whole table: seconds per arm and phase, medians over the rounds."""
    arms = whole["arms"]
    phases = list(dict.fromkeys(name for arm in arms.values() for name in arm["phases"]))

    def row(label: str, cells) -> str:
        return f"{label:34}" + "".join(f"{cell:>26}" for cell in cells)

    lines = [
        row(f"whole command, median of {whole['rounds']}", arms),
        row("  wall seconds, spawn to exit", (f"{a['median']:.1f}" for a in arms.values())),
        row("  range", (f"[{a['range'][0]:.1f}, {a['range'][1]:.1f}]" for a in arms.values())),
        row(
            "  to plain (paired)",
            (
                f"{a['ratio_to_plain']:.2f} x ({min(a['paired_ratios']):.2f}-{max(a['paired_ratios']):.2f})"
                for a in arms.values()
            ),
        ),
    ]
    lines += [
        row(f"  {name}", (f"{a['phases'][name]:.1f}" if name in a["phases"] else "-" for a in arms.values()))
        for name in phases
    ]
    verdict = "holds" if whole["holds"] else "does not hold"
    return [*lines, f"goal: python train.py at most {whole['goal']:.2f} x the plain script: {verdict}"]
