"""The model comparison of a sweep: one table and overlaid curves, from the files each run wrote.

    python -m vae.compare outputs/multirun/<date>/<time>        # on demand: running, interrupted or finished

and, through `WriteComparison` (a Hydra callback, conf/config.yaml: hydra.callbacks), at the end of every
`python train.py -m ...`. Into the sweep directory go

    comparison.md, comparison.tex    one row per run: swept values, parameters, epochs, val loss (and its
                                     rec and KL at the best epoch), test loss, fit time; sorted by val loss
    val_curves.png                   val loss per epoch of every run; val_rec_curves.png, val_kl_curves.png
    samples_by_run.png               each run's decoder means of the same z ~ N(0, I)

Reading the sweep: vae/results/sweeps.py; the tables: vae/results/tables.py; the figures:
vae/results/sweep_figures.py.
"""

from pathlib import Path

CURVES = {"val/loss": "val_curves", "val/rec": "val_rec_curves", "val/kl": "val_kl_curves"}


def write_comparison(sweep_dir: Path, pdf: bool = False) -> list[Path]:
    """comparison.md, comparison.tex and the figures into `sweep_dir`; returns the files written."""
    from vae.files.writing import check_writable
    from vae.results.sweep_figures import plot_curves, plot_samples
    from vae.results.sweeps import collect
    from vae.results.tables import latex, markdown

    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    check_writable(
        sweep_dir, "the comparison into", "copy the sweep (cp -r) to a folder you can write and compare the copy"
    )
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
