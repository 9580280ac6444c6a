"""python -m vae.compare SWEEP_DIR: a sweep's model comparison, written again (vae/results/comparison.py)."""

from pathlib import Path

from vae.core.errors import exit_on_user_error
from vae.results.comparison import write_comparison
from vae.tools.cli import parser


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
