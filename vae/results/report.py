"""The results part of a lab report, in LaTeX, from a sweep or from runs:

    python -m vae.report outputs/multirun/<date>/<time>              # -> <sweep>/report/
    python -m vae.report outputs/<date>/<time> outputs/<date>/<time> --out report
    python -m vae.report outputs/multirun/<date>/<time> --runs 0 3   # the figures of runs 0 and 3 only

writes into its folder

    results.tex    the settings every run shares (a table), the comparison table, the learning curves, and for
                   each chosen run its figures, as `table` and `figure` environments whose captions state facts
                   (\\input it into your report; the words around it are yours)
    figures/       the figures as PDF (vector where matplotlib gives it: lines and text; images stay pixels)
    report.tex     a minimal document around results.tex
    report.pdf     when a LaTeX engine (pdflatex, lualatex or xelatex) is on the PATH

The numbers come from each run's metrics.json and history.csv (vae/results/sweeps.py reads them), the figures are drawn
again from each run's best checkpoint (vae/results/figures.py) or, where its data is gone, copied from its figures/.
"""

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from vae.core.errors import UserError
from vae.files.layout import RunFiles
from vae.results.report_figures import curve_figure, include, run_figures
from vae.results.report_settings import settings_table, shared_settings
from vae.results.sweeps import Job, collect, read_job, swept_keys
from vae.results.tables import latex, latex_comment, latex_escape

log = logging.getLogger(__name__)

MARKER = ".vae-report"  # in a folder this tool wrote: it may write there again, and nowhere else that holds files


ENGINES = ("pdflatex", "lualatex", "xelatex")


INSTALL = "sudo apt-get install texlive-latex-base texlive-latex-recommended (Debian, Ubuntu), or TeX Live / MiKTeX"


PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[margin=2.5cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{amsmath}
"""


def find_jobs(paths: list[Path]) -> tuple[list[Job], Path]:
    """The jobs of one sweep directory, or of run directories (numbered in the order given); and where the report
    goes by default (<sweep>/report, <run>/report for one run)."""
    paths = [Path(path) for path in paths]
    if len(paths) == 1 and not RunFiles(paths[0]).is_run():
        jobs = collect(paths[0])
        if len({job.num for job in jobs}) < len(jobs) or min(job.num for job in jobs) < 0:
            log.info(f"{paths[0]} holds jobs of several sweeps (or of none): its runs are numbered 0, 1, ... in order")
            for i, job in enumerate(jobs):
                job.num = i  # a run's number names its figures' files and is what --runs chooses
        return jobs, paths[0] / "report"
    jobs = []
    for i, path in enumerate(paths):
        if not RunFiles(path).is_job():
            raise UserError(
                f"{path} is not a run directory of train.py (no {RunFiles(path).overrides}): give one sweep directory "
                "(outputs/multirun/<date>/<time>) or run directories (outputs/<date>/<time>)"
            )
        job = read_job(path)
        job.num = i
        jobs.append(job)
    return jobs, paths[0] / "report"


def check_out(out: Path) -> None:
    """The report's folder: new, empty, or one this tool wrote (a student's own folder is not overwritten)."""
    from vae.files.writing import check_writable

    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise UserError(
            f"{out} holds files that vae.report did not write: it writes report.tex and results.tex there; give "
            "a new or empty folder with --out"
        )
    check_writable(out, "the report into", "give a folder you can write with --out")


def results_tex(jobs: list[Job], source: str, folder: Path, chosen: list[Job], data_root: str | None) -> str:
    keys = swept_keys(jobs)
    parts = [
        "\n".join(
            [
                f"% The results of {latex_comment(source)}, written by `python -m vae.report` (vae-lab).",
                "% Needs graphicx, booktabs and amsmath. Figures: \\vaereportdir/figures/; \\input this file",
                "% from its folder, or \\newcommand{\\vaereportdir}{<this folder>} before",
                "% \\input{<this folder>/results.tex}.",
                r"\providecommand{\vaereportdir}{.}",
            ]
        ),
        settings_table(shared_settings(jobs), len(jobs)),
        latex(jobs, source, test_terms=True, caption=comparison_caption(jobs)),
    ]
    curves = curve_figure(jobs, folder)
    if curves is not None:
        parts.append(include(curves, "curves"))
    parts.append(r"\clearpage")
    for job in chosen:
        if job.status in ("failed", "damaged") or not RunFiles(job.dir).has_checkpoints():
            parts.append(f"% run {job.num}: no figures ({job.status}, or no checkpoint)")
            continue
        try:
            figures = run_figures(job, jobs, keys, folder, data_root)
        except UserError as error:
            log.warning(f"warning: run {job.num} has no figures in the report: {error}")
            parts.append(f"% run {job.num}: no figures ({latex_comment(str(error))})")
            continue
        parts.append(f"% run {job.num}: {latex_comment(str(job.dir))}")
        parts += [include(figure, figure.files[0][0].rsplit(".", 1)[0]) for figure in figures]
        parts.append(r"\clearpage  % a run's figures stay together (and LaTeX's queue of floats short)")
    return "\n\n".join(parts) + "\n"


def comparison_caption(jobs: list[Job]) -> str:
    text = (
        "Model comparison, sorted by validation loss (nats per image, lower is better: the negative ELBO for a VAE, "
        r"$-\log p(x \mid z)$ for an auto-encoder, $-\mathcal{L}_k$ for an IWAE). Validation (val) at the best epoch, "
        "test on its checkpoint; rec and KL are the loss's two terms"
    )
    if any("test/log_likelihood" in job.metrics for job in jobs):
        text += r"; test $\log p(x)$ is the importance-weighted estimate of the log-likelihood (higher is better)"
    return text + "; parameters, epochs run and fit time in seconds last."


def compile_pdf(out: Path) -> Path | None:
    """report.pdf from report.tex with the first engine on the PATH (two passes: the references); None without."""
    engine = next((shutil.which(name) for name in ENGINES if shutil.which(name)), None)
    if engine is None:
        return None
    with tempfile.TemporaryDirectory() as build:
        command = [engine, "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={build}", "report.tex"]
        for _ in range(2):
            done = subprocess.run(command, cwd=out, capture_output=True, text=True, errors="replace", timeout=300)
            if done.returncode != 0:
                shutil.copyfile(Path(build) / "report.log", out / "report.log")
                errors = [line for line in done.stdout.splitlines() if line.startswith("!")] or ["see the log"]
                raise UserError(
                    f"{Path(engine).name} could not compile {out / 'report.tex'}: {errors[0]} "
                    f"(the full log: {out / 'report.log'})"
                )
        shutil.move(Path(build) / "report.pdf", out / "report.pdf")
    (out / "report.log").unlink(missing_ok=True)
    return out / "report.pdf"


def write_report(
    paths: list[Path], out: Path | None = None, runs: list[int] | None = None, pdf: bool = True, data_root=None
) -> list[Path]:
    """The report's folder (see the module's docstring); returns the files written."""
    from vae.files.writing import make_folder, write_atomically

    jobs, default = find_jobs(paths)
    out = Path(out or default)
    known = {job.num for job in jobs}
    if runs is not None and not set(runs) <= known:
        raise UserError(
            f"--runs {' '.join(map(str, sorted(set(runs) - known)))}: no such run; the runs are "
            f"{', '.join(map(str, sorted(known)))}"
        )
    check_out(out)
    folder = make_folder(out / "figures", "the report's figures folder", "give a folder you can write with --out")
    (out / MARKER).write_text("written by python -m vae.report; it may overwrite this folder\n")
    for old in folder.iterdir():  # figures of an earlier report (another --runs) would be left behind
        old.unlink()
    chosen = [job for job in jobs if runs is None or job.num in runs]
    source = " ".join(str(path) for path in paths)
    written = [write_atomically(out / "results.tex", results_tex(jobs, source, folder, chosen, data_root))]
    title = latex_escape(f"Results: {source}")
    document = PREAMBLE + f"\\title{{{title}}}\n\\date{{}}\n\\begin{{document}}\n\\maketitle\n\\input{{results.tex}}\n"
    written.append(write_atomically(out / "report.tex", document + "\\end{document}\n"))
    written += sorted(folder.iterdir())
    if pdf:
        made = compile_pdf(out)
        if made is None:
            log.warning(
                f"no LaTeX engine ({', '.join(ENGINES)}) on the PATH, so no report.pdf: install one ({INSTALL}) "
                f"and run `pdflatex report.tex` in {out}"
            )
        else:
            written.append(made)
    return written
