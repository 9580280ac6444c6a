"""The model comparison of a sweep: one table and overlaid curves, from the files each run wrote.

    python -m vae.compare outputs/multirun/<date>/<time>        # on demand: running, interrupted or finished

and, through `WriteComparison` (a Hydra callback, conf/config.yaml: hydra.callbacks), at the end of every
`python train.py -m ...`. Into the sweep directory go

    comparison.md, comparison.tex    one row per run: swept values, parameters, epochs, val loss (and its
                                     rec and KL at the best epoch), test loss, fit time; sorted by val loss
    val_curves.png                   val loss per epoch of every run; val_rec_curves.png, val_kl_curves.png
    samples_by_run.png               each run's decoder means of the same z ~ N(0, I)

A job directory holds `.hydra/overrides.yaml`, `history.csv` and `metrics.json`; metrics.json says
"completed" or "failed" (with the error); a job without it is still running or was stopped.
"""

import csv
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vae.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)

# Overrides that are not hyperparameters: where the data lives, presets, threads. They are left out of
# the job directory names (conf/config.yaml: hydra.job.config.override_dirname) and of the table's columns.
NOT_SWEPT = ("data.root", "sweep", "hparams_search", "threads")
CURVES = {"val/loss": "val_curves", "val/rec": "val_rec_curves", "val/kl": "val_kl_curves"}
SAMPLES = 8          # decoder means per run in samples_by_run.png
SAMPLE_SEED = 0      # the z ~ N(0, I) every run decodes


@dataclass
class Job:
    dir: Path
    num: int
    overrides: dict[str, str]                 # key -> value, as in .hydra/overrides.yaml
    status: str                               # completed | failed | unfinished
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    @property
    def error(self) -> str:
        return self.metrics.get("error", "")

    def best(self) -> dict:
        """Val metrics at the best epoch: metrics.json, or for an unfinished run its history so far."""
        if self.status == "completed":
            return self.metrics
        rows = [row for row in self.history if math.isfinite(row.get("val/loss", math.nan))]
        if self.status == "failed" or not rows:
            return {}
        return min(rows, key=lambda row: row["val/loss"])


def read_overrides(path: Path) -> dict[str, str]:
    overrides = {}
    for item in OmegaConf.load(path) or []:
        key, _, value = str(item).partition("=")
        overrides[key] = value
    return overrides


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


def read_job(job_dir: Path) -> Job:
    hydra_dir = job_dir / ".hydra"
    num = -1  # the job number of a sweep (a single run has none)
    if (hydra_dir / "hydra.yaml").is_file():
        num = OmegaConf.select(OmegaConf.load(hydra_dir / "hydra.yaml"), "hydra.job.num", throw_on_missing=False)
        num = num if isinstance(num, int) else -1
    metrics_path = job_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except json.JSONDecodeError:  # being written at this very moment
        metrics = {}
    status = metrics.get("status", "unfinished")
    return Job(dir=job_dir, num=int(num), overrides=read_overrides(hydra_dir / "overrides.yaml"), status=status,
               metrics=metrics, history=read_history(job_dir / "history.csv"))


def find_job_dirs(folder: Path, depth: int = 3) -> list[Path]:
    """Folders below `folder` holding .hydra/overrides.yaml (a job's value with a `/` nests its folder)."""
    found = []
    for child in sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if (child / ".hydra" / "overrides.yaml").is_file():
            found.append(child)
        elif depth > 1 and child.name != "checkpoints":
            found += find_job_dirs(child, depth - 1)
    return found


def collect(sweep_dir: Path) -> list[Job]:
    """Every job of a sweep directory, in the order they were launched."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} does not exist: give a sweep directory, e.g. outputs/multirun/<date>/<time>")
    job_dirs = find_job_dirs(sweep_dir)
    if not job_dirs:
        if (sweep_dir / ".hydra" / "config.yaml").is_file():
            raise UserError(f"{sweep_dir} is a single run, not a sweep: a comparison needs the directory of a "
                            "`python train.py -m ...` (outputs/multirun/<date>/<time>)")
        if (sweep_dir / "multirun.yaml").is_file():
            raise UserError(f"{sweep_dir} is a sweep whose jobs have not started yet: no job directory "
                            "(<job>/.hydra/overrides.yaml) in it; try again once the first job runs")
        raise UserError(f"{sweep_dir} is not a sweep directory: it holds no job directories "
                        "(<job>/.hydra/overrides.yaml); give the folder `python train.py -m ...` printed, "
                        "e.g. outputs/multirun/<date>/<time>")
    return sorted((read_job(d) for d in job_dirs), key=lambda job: (job.num, str(job.dir)))


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs (none in a sweep of one job)."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides if key not in NOT_SWEPT))
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]


def fixed_overrides(jobs: list[Job], keys: list[str]) -> list[str]:
    """Overrides shared by every job (the rest of the command line), for the table's heading."""
    shared = {key: value for key, value in jobs[0].overrides.items() if key not in keys}
    return [f"{key}={value}" for key, value in shared.items()
            if all(job.overrides.get(key) == value for job in jobs)]


def label(job: Job, keys: list[str]) -> str:
    return ", ".join(f"{key}={job.overrides.get(key, '-')}" for key in keys) or job.dir.name


def ranked(jobs: list[Job]) -> list[Job]:
    """Completed runs by val loss, then unfinished ones (by val loss so far), then failed ones."""
    order = {"completed": 0, "unfinished": 1, "failed": 2}
    return sorted(jobs, key=lambda job: (order.get(job.status, 3), job.best().get("val/loss", math.inf), job.num))


# ---------------------------------------------------------------------------------------------- table

@dataclass
class Column:
    name: str        # as in comparison.md
    latex: str       # as in comparison.tex
    value: callable  # job -> cell text, "" when it does not apply


def loss(name: str):
    def cell(job: Job) -> str:
        value = job.best().get(name) if name.startswith("val/") else job.metrics.get(name)
        return "" if value is None or job.status == "failed" else f"{value:.2f}"
    return cell


def columns(jobs: list[Job]) -> list[Column]:
    def epochs(job):
        if job.status == "completed":
            return str(job.metrics["epochs"])
        return str(len(job.history)) if job.status == "unfinished" else ""

    def parameters(job):
        return f"{job.metrics['parameters']:,}" if "parameters" in job.metrics else ""

    def seconds(job):
        return f"{job.metrics['fit_seconds']:.0f}" if "fit_seconds" in job.metrics else ""

    cols = [Column("status", "status", lambda job: job.status),
            Column("parameters", "parameters", parameters),
            Column("epochs run", "epochs run", epochs),
            Column("val loss", "val loss", loss("val/loss")),
            Column("val rec", "val rec", loss("val/rec")),
            Column("val KL", "val KL", loss("val/kl")),
            Column("test loss", "test loss", loss("test/loss"))]
    if any("test/log_likelihood" in job.metrics for job in jobs):
        cols.append(Column("test log p(x)", r"test $\log p(x)$", loss("test/log_likelihood")))
    cols.append(Column("fit time (s)", "fit time (s)", seconds))
    return cols


def markdown(jobs: list[Job], sweep_dir: Path) -> str:
    keys = swept_keys(jobs)
    cols = columns(jobs)
    counts = {status: sum(job.status == status for job in jobs) for status in ("completed", "failed", "unfinished")}
    runs = f"{len(jobs)} run{'s' if len(jobs) != 1 else ''}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [f"# Model comparison: {sweep_dir}", "",
             f"{runs}. Sorted by val loss at the best epoch (nats per image, lower is better); val rec and KL at that "
             "epoch; test on the best checkpoint; unfinished runs show their best epoch so far."]
    fixed = fixed_overrides(jobs, keys)
    if fixed:
        lines += ["", "Every run: " + " ".join(f"`{item}`" for item in fixed) + "."]
    header = ["run", *keys, *(col.name for col in cols)]
    lines += ["", "| " + " | ".join(header) + " |",
              "|" + "|".join("---" if i <= len(keys) else "---:" for i in range(len(header))) + "|"]
    for job in ranked(jobs):
        cells = [str(job.num), *(job.overrides.get(key, "") for key in keys),
                 *(col.value(job) or "-" for col in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [job for job in ranked(jobs) if job.status == "failed"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- run {job.num} ({label(job, keys)}): {job.error}" for job in failed]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def latex_number(text: str) -> str:
    """A table cell as LaTeX: a true minus sign, braced thousands separators, -- when empty."""
    if not text:
        return "--"
    text = text.replace(",", "{,}")
    return "$-$" + text[1:] if text.startswith("-") else text


def latex(jobs: list[Job], sweep_dir: Path) -> str:
    keys = swept_keys(jobs)
    cols = [col for col in columns(jobs) if col.name != "status"]
    header = [latex_escape(key) for key in keys] + [col.latex for col in cols]
    lines = [f"% Model comparison of the sweep {sweep_dir} (written by vae.compare).",
             "% Needs \\usepackage{booktabs}. Losses in nats per image; val at the best epoch, test on its checkpoint.",
             r"\begin{table}[ht]", r"\centering",
             r"\begin{tabular}{" + "l" * len(keys) + "r" * len(cols) + "}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    for job in ranked(jobs):
        swept = [latex_escape(job.overrides.get(key, "")) for key in keys]
        if job.status == "failed":
            cells = swept + [rf"\multicolumn{{{len(cols)}}}{{l}}{{\emph{{failed}}}}"]
        else:
            cells = swept + [latex_number(col.value(job)) for col in cols]
            if job.status == "unfinished":
                cells[-1] = r"\emph{unfinished}"
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{Model comparison, sorted by validation loss (negative ELBO for a VAE, "
              r"$-\log p(x \mid z)$ for an auto-encoder; nats per image, lower is better).}",
              r"\label{tab:comparison}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- figures

def plot_curves(jobs: list[Job], metric: str, path: Path, formats: tuple[str, ...]) -> bool:
    """One line per run: `metric` over epochs. False (and no file) when no run logged it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = swept_keys(jobs)
    runs = [job for job in ranked(jobs) if any(metric in row for row in job.history)]
    if not runs:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for job in runs:
        rows = [row for row in job.history if metric in row]
        ax.plot([row["epoch"] for row in rows], [row[metric] for row in rows], marker="o", markersize=3,
                label=label(job, keys) + ("" if job.status == "completed" else f" ({job.status})"))
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"{metric} (nats per image)")
    ax.set_title(f"{metric} of every run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    for suffix in formats:
        fig.savefig(path.with_suffix(f".{suffix}"), dpi=150, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_samples(jobs: list[Job], path: Path, formats: tuple[str, ...], n: int = SAMPLES) -> bool:
    """Each run's decoder means of the same z ~ N(0, I) (z[:, :d] of one draw for a run with d latents)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vae.runs import load_run

    keys = swept_keys(jobs)
    rows = []
    for job in ranked(jobs):
        if job.status == "failed" or not (job.dir / "checkpoints").is_dir():
            continue
        try:
            run = load_run(job.dir)
        except Exception as error:  # a run this code cannot rebuild: the table and curves still stand
            log.warning(f"samples_by_run.png leaves out {job.dir}: {str(error).splitlines()[0]}")
            continue
        rows.append((job, run))
    if not rows:
        return False
    max_dim = max(run.model.latent_dim for _, run in rows)
    z = torch.randn(n, max_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.0 * n + 3.5, 1.15 * len(rows) + 0.4), squeeze=False)
    for ax, (job, run) in zip(axes[:, 0], rows):
        with torch.no_grad():
            images = run.model.decode(z[:, :run.model.latent_dim]).reshape(n, 28, 28)
        gap = torch.ones(28, 2)  # a white line between samples
        ax.imshow(torch.cat([part for image in images for part in (image, gap)][:-1], dim=1).numpy(),
                  cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        model = run.cfg.model._target_.rsplit(".", 1)[-1]
        note = " (no prior)" if model == "AutoEncoder" else ""
        ax.set_ylabel(f"{label(job, keys)}\n{model}{note}", rotation=0, ha="right", va="center", fontsize="small")
    fig.suptitle(f"Decoder means of the same {n} draws of z ~ N(0, I)")
    for suffix in formats:
        fig.savefig(path.with_suffix(f".{suffix}"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------------------ write all

def write_comparison(sweep_dir: Path, pdf: bool = False) -> list[Path]:
    """comparison.md, comparison.tex and the figures into `sweep_dir`; returns the files written."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    formats = ("png", "pdf") if pdf else ("png",)
    written = []
    for name, text in (("comparison.md", markdown(jobs, sweep_dir)), ("comparison.tex", latex(jobs, sweep_dir))):
        (sweep_dir / name).write_text(text)
        written.append(sweep_dir / name)
    figures = [(plot_curves, (metric,), stem) for metric, stem in CURVES.items()]
    figures.append((plot_samples, (), "samples_by_run"))
    for plot, args, stem in figures:
        if plot(jobs, *args, sweep_dir / f"{stem}.png", formats):
            written += [sweep_dir / f"{stem}.{suffix}" for suffix in formats]
    return written


class WriteComparison(Callback):
    """Hydra callback: writes the comparison into the sweep directory when a multirun ends."""

    def __init__(self, pdf: bool = False):
        self.pdf = pdf
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.sweep_dir = Path(str(config.hydra.sweep.dir))  # resolved once: ${now:...} must not move

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = self.sweep_dir or Path(str(config.hydra.sweep.dir))
        try:
            written = write_comparison(sweep_dir, pdf=self.pdf)
        except UserError as error:
            log.error(f"no comparison: {error}")
            return
        print((sweep_dir / "comparison.md").read_text(), flush=True)
        log.info(f"comparison: {', '.join(str(path) for path in written)}")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vae.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--pdf", action="store_true", help="also write the figures as PDF")
    args = parser.parse_args(argv)
    written = write_comparison(args.sweep_dir, pdf=args.pdf)
    print((args.sweep_dir / "comparison.md").read_text())
    print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main(sys.argv[1:])
