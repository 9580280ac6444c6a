"""The model comparison of a sweep: one table and overlaid curves, from the files each run wrote.

    python -m vae.compare outputs/multirun/<date>/<time>        # on demand: running, interrupted or finished

and, through `WriteComparison` (a Hydra callback, conf/config.yaml: hydra.callbacks), at the end of every
`python train.py -m ...`. Into the sweep directory go

    comparison.md, comparison.tex    one row per run: swept values, parameters, epochs, val loss (and its
                                     rec and KL at the best epoch), test loss, fit time; sorted by val loss
    val_curves.png                   val loss per epoch of every run; val_rec_curves.png, val_kl_curves.png
    samples_by_run.png               each run's decoder means of the same z ~ N(0, I)

Reading the sweep: vae/sweeps.py; the tables: vae/tables.py; the figures: vae/sweep_figures.py.
"""

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vae.cli import parser
from vae.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)

CURVES = {"val/loss": "val_curves", "val/rec": "val_rec_curves", "val/kl": "val_kl_curves"}


def write_comparison(sweep_dir: Path, pdf: bool = False) -> list[Path]:
    """comparison.md, comparison.tex and the figures into `sweep_dir`; returns the files written."""
    from vae.sweep_figures import plot_curves, plot_samples
    from vae.sweeps import collect
    from vae.tables import latex, markdown

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
    p = parser("compare", "Write a sweep's model comparison (comparison.md/.tex, curves, samples) into its directory.")
    p.add_argument("sweep_dir", type=Path, help="a sweep directory, e.g. outputs/multirun/<date>/<time>")
    p.add_argument("--pdf", action="store_true", help="also write the figures as PDF")
    args = p.parse_args(argv)
    written = write_comparison(args.sweep_dir, pdf=args.pdf)
    print((args.sweep_dir / "comparison.md").read_text())
    print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
