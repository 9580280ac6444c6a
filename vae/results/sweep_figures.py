"""The figures of a sweep's comparison (vae/results/comparison.py), in vae/results/drawing.py's style:

val_curves.png, val_rec_curves.png, val_kl_curves.png   one line per run: the metric over epochs
samples_by_run.png                                      each run's decoder means of the same z ~ N(0, I)
"""

import logging
from pathlib import Path

from vae.files.layout import RunFiles
from vae.results.sweeps import Job, label, ranked, swept_keys

log = logging.getLogger(__name__)

SAMPLES = 8  # decoder means per run in samples_by_run.png
SAMPLE_SEED = 0  # the z ~ N(0, I) every run decodes


def plot_curves(jobs: list[Job], metric: str, path: Path, formats: tuple[str, ...]) -> bool:
    """One line per run: `metric` over epochs. False (and no file) when no run logged it."""
    from vae.results.drawing import figure, focus, save

    keys = swept_keys(jobs)
    runs = [job for job in ranked(jobs) if any(metric in row for row in job.history)]
    if not runs:
        return False
    fig = figure((7.5, 4.5))
    ax = fig.subplots()
    lines = []
    for job in runs:
        rows = [row for row in job.history if metric in row]
        lines.append(([row["epoch"] for row in rows], [row[metric] for row in rows]))
        ax.plot(
            *lines[-1],
            marker="o",
            markersize=3,
            label=label(job, keys, jobs) + ("" if job.status == "completed" else f" ({job.status})"),
        )
    focus(ax, lines)  # the epochs a comparison discusses, not the first epoch's spike
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"{metric} (nats per image)")
    ax.set_title(f"{metric} of every run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    for suffix in formats:
        save(fig, path.with_suffix(f".{suffix}"), bbox_inches="tight")
    return True


def plot_samples(jobs: list[Job], path: Path, formats: tuple[str, ...], n: int = SAMPLES) -> bool:
    """Each run's decoder means of the same z ~ N(0, I) (z[:, :d] of one draw for a run with d latents)."""
    import torch

    from vae.files.saved import load_run
    from vae.results.drawing import figure, save, show, tile

    keys = swept_keys(jobs)
    rows = []
    for job in ranked(jobs):
        if job.status == "failed" or not RunFiles(job.dir).has_checkpoints():
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
    fig = figure((1.0 * n + 3.5, 1.15 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (job, run) in zip(axes, rows):
        with torch.no_grad():
            images = run.model.decode(z[:, : run.model.latent_dim])
        show(ax, tile(images, columns=n))
        note = " (no prior)" if run.model.prior is None else ""
        ax.set_ylabel(
            f"{label(job, keys, jobs)}\n{run.model.name}{note}", rotation=0, ha="right", va="center", fontsize="small"
        )
    fig.suptitle(f"Decoder means of the same {n} draws of z ~ N(0, I)")
    for suffix in formats:
        save(fig, path.with_suffix(f".{suffix}"), bbox_inches="tight")
    return True
