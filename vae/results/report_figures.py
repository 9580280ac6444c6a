"""The lab report's figures: the val curves of every run, and each chosen run's figures with captions that
state facts (drawn again from its best checkpoint, or copied from its figures/ where its data is gone).
"""

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from vae.core.errors import UserError
from vae.files.layout import RunFiles
from vae.results.sweeps import Job, label, number
from vae.results.tables import latex_escape

log = logging.getLogger(__name__)


CURVES = {"val/loss": "validation loss", "val/rec": "validation reconstruction term", "val/kl": "validation KL"}


@dataclass
class LatexFigure:
    files: list[tuple[str, float]]  # (file under figures/, its width as a fraction of the line), side by side
    caption: str  # LaTeX


WIDTHS = {"latent": 0.7, "manifold": 0.65, "interpolation": 0.85}  # of the line; the rest fill it


def include(figure: LatexFigure, label: str) -> str:
    lines = [r"\begin{figure}[htbp]", r"\centering"]
    for i, (file, width) in enumerate(figure.files):
        if i:  # two narrow ones side by side, else a new line
            lines.append(r"\hfill" if max(width, figure.files[i - 1][1]) <= 0.5 else r"\\")
        lines.append(rf"\includegraphics[width={width:g}\linewidth]{{\vaereportdir/figures/{file}}}")
    lines += [rf"\caption{{{figure.caption}}}", rf"\label{{fig:{label}}}", r"\end{figure}"]
    return "\n".join(lines)


def curve_figure(jobs: list[Job], folder: Path) -> LatexFigure | None:
    """The val loss (above), rec and KL (below, side by side) of every run over epochs
    (vae/results/sweep_figures.py)."""
    from vae.results.sweep_figures import plot_curves

    drawn = []
    for metric, words in CURVES.items():
        stem = metric.replace("/", "_") + "_curves"
        if plot_curves(jobs, metric, folder / f"{stem}.pdf", ("pdf",)):
            drawn.append((f"{stem}.pdf", words))
    if not drawn:
        return None
    where = ["Above", "below left", "below right"] if len(drawn) == 3 else ["Left", "right"][: len(drawn)]
    return LatexFigure(
        [(file, 0.8 if i == 0 and len(drawn) == 3 else 0.49) for i, (file, _) in enumerate(drawn)],
        "; ".join(f"{side}: the {words}" for side, (_, words) in zip(where, drawn))
        + " of every run over epochs (dev set, end of each epoch; nats per image). A first epoch far off the axis "
        "is written at its edge.",
    )


def captions(model, plots, n_dev: int, warmup: list[int]) -> dict[str, str]:
    """Each figure's caption: what the panels show, in the model's own words (its contract: vae/maths/models.py)."""
    prior = (
        f"$z \\sim p(z)$, the prior {latex_escape(model.prior.name)}"
        if model.prior is not None
        else "$z$ drawn from a Gaussian fitted to the codes of the training images (an auto-encoder has no prior)"
    )
    grid = "the prior" if model.prior is not None else "the Gaussian fitted to the training codes"
    n = model.latent_dim
    dev = f"{n_dev:,}".replace(",", "{,}") if n_dev else "all"
    latent = f"The {latex_escape(model.codes)} of {dev} dev images, coloured by label"
    if n > 2:
        latent += f"; their projection on the first two principal components of the {n}-dimensional codes"
    elif n == 2 and model.prior is not None:
        latent += "; dashed and dotted: the prior's 1 and 2 standard-deviation circles"
    curves = "Train (mean over each epoch's batches) and validation (dev set at each epoch's end) terms per epoch"
    if warmup:
        curves += (
            f"; shaded: the KL warm-up (epoch{'s' if len(warmup) > 1 else ''} "
            + (f"{min(warmup)} to {max(warmup)}" if len(warmup) > 1 else f"{warmup[0]}")
            + "), in which the train loss is "
            r"$\text{rec} + \beta_t \cdot \text{KL}$ with $\beta_t$ rising from 0, not the objective the validation "
            "line shows"
        )
    return {
        "samples": f"{plots.n_samples} draws of {prior}, each decoded two ways: left, the decoder means "
        f"$E[x \\mid z]$ ({latex_escape(model.likelihood.mean_words)}); right, samples $x \\sim p(x \\mid z)$ of the "
        "same $z$.",
        "reconstructions": f"The first {plots.n_reconstructions} dev images (top) and their reconstructions (bottom): "
        f"the decoder mean at $z$ = the {latex_escape(model.code)} of each image.",
        "latent": latent + ".",
        "manifold": f"Decoder means on a {plots.grid_size} $\\times$ {plots.grid_size} grid of $z$ in steps of equal "
        f"probability under {grid} on each axis (Kingma and Welling, 2014, figure 4).",
        "interpolation": f"Decoder means on straight lines between the {latex_escape(model.code)}s of "
        f"{plots.n_interpolations} pairs of dev images with different labels, {plots.interpolation_steps} points "
        "per line, ends included.",
        "learning_curves": curves + " (nats per image). A first epoch far off the axis is written at its edge.",
    }


def run_facts(model, job: Job, jobs: list[Job], keys: list[str]) -> str:
    """The sentence that opens each caption of a run: which run, which model, how long it trained."""
    epochs, best = number(job.metrics.get("epochs")), number(job.metrics.get("best_epoch"))
    trained = f"{epochs:.0f} epochs (best: {best:.0f})" if epochs is not None and best is not None else "unfinished"
    swept = f" ({latex_escape(label(job, keys, jobs))})" if keys else ""
    return f"Run {job.num}{swept}: {latex_escape(model.describe())}, {trained}."


def run_figures(job: Job, jobs: list[Job], keys: list[str], folder: Path, data_root: str | None) -> list[LatexFigure]:
    """A run's figures drawn from its best checkpoint as PDFs; where that cannot be done (its data is gone), the
    PDFs or PNGs in its figures/ are copied."""
    from vae.files.history import read_history
    from vae.files.saved import load_run
    from vae.results.drawing import save
    from vae.results.figures import figures, warmup_epochs
    from vae.results.generation_figure import NAME as DIGITS
    from vae.results.generation_figure import digits

    run = load_run(job.dir)
    plots = run.cfg.plots
    files = RunFiles(job.dir)
    history = read_history(files.history)
    try:
        datamodule = run.datamodule(root=data_root)
    except UserError as error:
        log.warning(f"warning: run {job.num}: its figures are copied from {files.figures}: {error}")
        drawn, n_dev = None, 0
    else:
        drawn, n_dev = figures(run.model, datamodule, history, run.cfg.seed, plots), len(datamodule.splits["dev"][0])
        measured = digits(job.metrics, datamodule.dataset, run.model.describe())  # from metrics.json
        if measured is not None:
            drawn[DIGITS] = measured
    words = captions(run.model, plots, n_dev, warmup_epochs(history, run.model))
    if DIGITS in (drawn or {}) or (drawn is None and "gen/class_histogram" in job.metrics):
        words[DIGITS] = digits_caption(job.metrics)
    facts = run_facts(run.model, job, jobs, keys)
    found = []
    for name, caption in words.items():
        file = f"run{job.num}-{name}.pdf"
        if drawn is not None:
            if name not in drawn:
                continue
            save(drawn[name], folder / file)
        else:
            saved = next((p for p in (files.figures / f"{name}.{s}" for s in ("pdf", "png")) if p.is_file()), None)
            if saved is None:
                continue
            file = f"run{job.num}-{name}{saved.suffix}"
            shutil.copyfile(saved, folder / file)
        found.append(LatexFigure([(file, WIDTHS.get(name, 1.0))], f"{facts} {caption}"))
    return found


def digits_caption(metrics: dict) -> str:
    rare = metrics.get("gen/rare_classes") or []
    rarely = f" It rarely makes {', '.join(map(str, rare))}." if rare else ""
    n = f"{metrics.get('gen/n', 0):,}".replace(",", "{,}")  # 10{,}000: LaTeX's thousands separator
    return (
        f"The classes the feature classifier gives {n} samples $x \\sim p(x \\mid z)$ of the "
        "model (left bars) beside those it gives the test set (grey); dotted: all ten evenly. Entropy of the samples' "
        f"classes: {metrics.get('gen/class_entropy_bits', float('nan')):.2f} bits of $\\log_2 10 = 3.32$.{rarely}"
    )
