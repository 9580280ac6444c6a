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

The numbers come from each run's metrics.json and history.csv (vae/sweeps.py reads them), the figures are drawn
again from each run's best checkpoint (vae/figures.py) or, where its data is gone, copied from its figures/.
"""

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from vae.cli import parser
from vae.errors import UserError, exit_on_user_error, in_brief
from vae.runs import load_config
from vae.sweeps import Job, collect, label, number, read_job, readable, swept_keys
from vae.tables import latex, latex_comment, latex_escape, latex_value

log = logging.getLogger(__name__)

MARKER = ".vae-report"  # in a folder this tool wrote: it may write there again, and nowhere else that holds files
ENGINES = ("pdflatex", "lualatex", "xelatex")
INSTALL = "sudo apt-get install texlive-latex-base texlive-latex-recommended (Debian, Ubuntu), or TeX Live / MiKTeX"
KNOBS = ("latent_dim", "width", "depth", "lr", "batch_size", "epochs", "seed", "gradient_clip_val")  # every run's
MODEL_KNOBS = ("beta", "kl_warmup_epochs", "iwae.k")  # conf/config.yaml's knobs that only some models read
GROUPS = ("data", "model", "prior", "arch", "likelihood", "optimizer")  # config groups: the choice, then its values
NOT_SETTINGS = {"data.root", "data.download", "data.eval_batch_size", "data.dataset", "optimizer.lr"}  # (lr: a knob)
CURVES = {"val/loss": "validation loss", "val/rec": "validation reconstruction term", "val/kl": "validation KL"}
PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[margin=2.5cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{amsmath}
"""


# --- what the report is made of ----------------------------------------------------------------------


def find_jobs(paths: list[Path]) -> tuple[list[Job], Path]:
    """The jobs of one sweep directory, or of run directories (numbered in the order given); and where the report
    goes by default (<sweep>/report, <run>/report for one run)."""
    paths = [Path(path) for path in paths]
    if len(paths) == 1 and not (paths[0] / ".hydra" / "config.yaml").is_file():
        jobs = collect(paths[0])
        if len({job.num for job in jobs}) < len(jobs) or min(job.num for job in jobs) < 0:
            log.info(f"{paths[0]} holds jobs of several sweeps (or of none): its runs are numbered 0, 1, ... in order")
            for i, job in enumerate(jobs):
                job.num = i  # a run's number names its figures' files and is what --runs chooses
        return jobs, paths[0] / "report"
    jobs = []
    for i, path in enumerate(paths):
        if not (path / ".hydra" / "overrides.yaml").is_file():
            raise UserError(
                f"{path} is not a run directory of train.py (no .hydra/overrides.yaml): give one sweep directory "
                "(outputs/multirun/<date>/<time>) or run directories (outputs/<date>/<time>)"
            )
        job = read_job(path)
        job.num = i
        jobs.append(job)
    return jobs, paths[0] / "report"


def setting(value) -> str:
    """A config value as the settings table shows it: null as in the config, numbers as a reader writes them."""
    return readable("null" if value is None else str(value))


def run_settings(job: Job) -> dict[str, str]:
    """The settings a run was trained with, as `key: value` a reader cites: the config groups' choices and their
    own values, and conf/config.yaml's knobs (`beta` only where the model reads it)."""
    cfg = load_config(job.dir)  # a damaged one is a UserError
    hydra = job.dir / ".hydra" / "hydra.yaml"
    choices = OmegaConf.select(OmegaConf.load(hydra), "hydra.runtime.choices") if hydra.is_file() else None
    text = OmegaConf.to_yaml(cfg)  # unresolved: which knobs something reads through ${...}
    settings = {}
    for group in GROUPS:
        if group not in (choices or {}) or (group == "prior" and "${prior}" not in text):
            continue
        settings[group] = str(choices[group])
        node = cfg.get(group)
        for key, value in node.items_ex(resolve=False) if OmegaConf.is_dict(node) else []:
            name = f"{group}.{key}"
            if key.startswith("_") or name in NOT_SETTINGS or OmegaConf.is_config(value):
                continue
            if not OmegaConf.is_interpolation(node, key):  # a ${...} is a knob, listed below
                settings[name] = setting(value)
    for key in KNOBS + MODEL_KNOBS:
        value = OmegaConf.select(cfg, key, default=None)
        if key in KNOBS or "${" + key + "}" in text:  # the model's node reads its knobs through ${...}
            settings[key] = setting(value)
    if cfg.get("eval", {}).get("enabled"):
        settings["eval.iw_samples"] = str(cfg.eval.iw_samples)  # K of the test log p(x)
    return settings


def shared_settings(jobs: list[Job]) -> dict[str, str]:
    """The settings every readable run has alike (those that differ are the comparison table's columns)."""
    found = []
    for job in jobs:
        try:
            found.append(run_settings(job))
        except Exception as error:  # a job without a readable config (failed early, damaged): its row says so
            log.info(f"settings: {job.dir} left out ({in_brief(error)})")
    if not found:
        return {}
    return {key: value for key, value in found[0].items() if all(other.get(key) == value for other in found)}


def settings_table(settings: dict[str, str], n_runs: int) -> str:
    rows = [rf"\texttt{{{latex_escape(key)}}} & {latex_value(value)} \\" for key, value in settings.items()]
    every = "every run" if n_runs > 1 else "the run"
    return "\n".join(
        [
            r"\begin{table}[ht]",
            r"\centering",
            r"\begin{tabular}{ll}",
            r"\toprule",
            r"setting & value \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{The settings of {every} (keys of the Hydra config, conf/); "
            r"settings that differ between runs are columns of Table~\ref{tab:comparison}.}",
            r"\label{tab:settings}",
            r"\end{table}",
        ]
    )


# --- figures ---------------------------------------------------------------------------------------------


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
    """The val loss (above), rec and KL (below, side by side) of every run over epochs (vae/sweep_figures.py)."""
    from vae.sweep_figures import plot_curves

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
    """Each figure's caption: what the panels show, in the model's own words (its contract: vae/models.py)."""
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
    from vae.drawing import save
    from vae.figures import figures, warmup_epochs
    from vae.history import read_history
    from vae.runs import load_run

    run = load_run(job.dir)
    plots = run.cfg.plots
    history = read_history(job.dir / "history.csv")
    try:
        datamodule = run.datamodule(root=data_root)
    except UserError as error:
        log.warning(f"warning: run {job.num}: its figures are copied from {job.dir / 'figures'}: {error}")
        drawn, n_dev = None, 0
    else:
        drawn, n_dev = figures(run.model, datamodule, history, run.cfg.seed, plots), len(datamodule.splits["dev"][0])
    words = captions(run.model, plots, n_dev, warmup_epochs(history, run.model))
    facts = run_facts(run.model, job, jobs, keys)
    found = []
    for name, caption in words.items():
        file = f"run{job.num}-{name}.pdf"
        if drawn is not None:
            if name not in drawn:
                continue
            save(drawn[name], folder / file)
        else:
            saved = next(
                (p for p in (job.dir / "figures" / f"{name}.{s}" for s in ("pdf", "png")) if p.is_file()), None
            )
            if saved is None:
                continue
            file = f"run{job.num}-{name}{saved.suffix}"
            shutil.copyfile(saved, folder / file)
        found.append(LatexFigure([(file, WIDTHS.get(name, 1.0))], f"{facts} {caption}"))
    return found


# --- the files -------------------------------------------------------------------------------------------


def check_out(out: Path) -> None:
    """The report's folder: new, empty, or one this tool wrote (a student's own folder is not overwritten)."""
    from vae.run_directory import check_writable

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
        if job.status in ("failed", "damaged") or not (job.dir / "checkpoints").is_dir():
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
    from vae.run_directory import write_atomically

    jobs, default = find_jobs(paths)
    out = Path(out or default)
    known = {job.num for job in jobs}
    if runs is not None and not set(runs) <= known:
        raise UserError(
            f"--runs {' '.join(map(str, sorted(set(runs) - known)))}: no such run; the runs are "
            f"{', '.join(map(str, sorted(known)))}"
        )
    check_out(out)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
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
