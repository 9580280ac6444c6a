"""python -m vae.report: a sweep's or runs' results as LaTeX (the report itself: vae/results/report.py).

python -m vae.report outputs/multirun/<date>/<time>              # -> <sweep>/report/
python -m vae.report outputs/<date>/<time> outputs/<date>/<time> --out report
python -m vae.report outputs/multirun/<date>/<time> --runs 0 3   # the figures of runs 0 and 3 only
"""

import logging
from pathlib import Path

from vae.core.errors import exit_on_user_error
from vae.results.report import write_report
from vae.tools.cli import parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[Path]:
    p = parser("report", "Write the results of a sweep or of runs as LaTeX: tables, curves, figures (results.tex).")
    p.add_argument("paths", nargs="+", type=Path, help="one sweep directory, or run directories")
    p.add_argument("--out", type=Path, metavar="DIR", help="the report's folder (default: <sweep or first run>/report)")
    p.add_argument(
        "--runs", type=int, nargs="*", metavar="N", help="the runs whose figures it shows (default: all; none: tables)"
    )
    p.add_argument("--no-pdf", dest="pdf", action="store_false", help="write the LaTeX only, do not compile it")
    p.add_argument("--data-root", metavar="DIR", help="folder holding MNIST/raw/, if not where the runs found it")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(message)s")  # warnings of every library (fontTools' INFO lines are not wanted)
    logging.getLogger("vae").setLevel(logging.INFO)
    written = write_report(args.paths, args.out, args.runs, args.pdf, args.data_root)
    print(
        f"report: {written[0].parent} ({', '.join(path.name for path in written if path.parent == written[0].parent)}, "
        f"{sum(path.parent.name == 'figures' for path in written)} figures)"
    )
    return written


if __name__ == "__main__":
    main()
