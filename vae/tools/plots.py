"""Redraw the figures of a run from its checkpoint, without retraining (the figures: vae/results/figures.py).

    python -m vae.plots outputs/2026-11-29/12-00-00                          # best.ckpt -> figures/
    python -m vae.plots outputs/2026-11-29/12-00-00/checkpoints/last.ckpt    # -> figures-last/
    python -m vae.plots outputs/2026-11-29/12-00-00 --n-samples 100 --grid-size 30 --pdf

The run's saved config gives the settings (its `plots` block); options override them.
"""

import argparse
from pathlib import Path

from vae.core.errors import exit_on_user_error
from vae.files.schema import PLOT_SETTINGS as SETTINGS
from vae.files.schema import validate
from vae.tools.cli import add_device, device, given, parser


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = parser(
        "plots",
        "Redraw the figures of a run from its checkpoint, with the config saved in the run "
        "(options override its `plots` block).",
    )
    p.add_argument(
        "run", help="a run directory (outputs/<date>/<time>; its best.ckpt, else last.ckpt) or a .ckpt file inside one"
    )
    p.add_argument("--n-samples", type=int, metavar="N", help="draws of z in the samples figure")
    p.add_argument("--n-reconstructions", type=int, metavar="N", help="dev images in the reconstructions figure")
    p.add_argument("--grid-size", type=int, metavar="N", help="the manifold's grid is grid-size x grid-size")
    p.add_argument("--n-interpolations", type=int, metavar="N", help="pairs of dev images in the interpolation figure")
    p.add_argument("--interpolation-steps", type=int, metavar="N", help="images per interpolation row, ends included")
    p.add_argument(
        "--pdf",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write PDFs (default: the run's plots.pdf)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the figures (default: <run dir>/figures; for a checkpoint "
        "file other than best.ckpt, <run dir>/figures-<its name>)",
    )
    p.add_argument("--data-root", metavar="DIR", help="folder holding MNIST/raw/, if not where the run found it")
    add_device(p)
    args = p.parse_args(argv)
    validate(
        {"plots": given(args, (*SETTINGS, "pdf"))}
    )  # the rules train.py checks plots.* with (vae/files/schema.py), before loading anything
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[Path]:
    args = arguments(argv)
    from vae.files.layout import RunFiles
    from vae.files.saved import load_run
    from vae.files.writing import make_folder
    from vae.results.figures import draw_all

    run = load_run(args.run, device(args.device))
    plots = {**run.cfg.plots, **given(args, (*SETTINGS, "pdf"))}
    out = args.out
    files = RunFiles(run.dir)
    if out is None and Path(args.run).is_file() and run.checkpoint.name != files.best.name:
        out = run.dir / f"figures-{run.checkpoint.stem}"  # figures/ keeps the best checkpoint's
    out = Path(out or files.figures)
    make_folder(out, "the figures folder", "give a folder you can write: --out <folder>")
    datamodule = run.datamodule(root=args.data_root)
    best = run.checkpoint.name == files.best.name  # metrics.json's digits are the best checkpoint's
    paths = draw_all(run.model, datamodule, run.dir, run.cfg.seed, plots, out=out, digits_too=best)
    print(f"{run.checkpoint} -> {out}: {', '.join(p.name for p in paths)}")
    return paths


if __name__ == "__main__":
    main()
