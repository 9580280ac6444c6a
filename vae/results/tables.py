"""The comparison table of a sweep, rendered as Markdown (comparison.md) and LaTeX (comparison.tex)."""

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae.results.sweeps import STATUSES, Job, fixed_overrides, label, number, ranked, shown, swept_keys


@dataclass
class Column:
    name: str  # as in comparison.md
    latex: str  # as in comparison.tex, under its group's heading
    value: Callable[[Job], str]  # job -> cell text, "" when it does not apply
    group: str = ""  # comparison.tex's heading above the column: validation or test


def loss(name: str):
    def cell(job: Job) -> str:
        value = number(job.best().get(name) if name.startswith("val/") else job.metrics.get(name))
        return "" if value is None or job.status in ("failed", "damaged") else f"{value:.2f}"

    return cell


def columns(jobs: list[Job], test_terms: bool = False) -> list[Column]:
    """The table's columns after the swept keys; `test_terms` adds the test rec and KL (the report's table)."""

    def epochs(job):
        if job.status in ("completed", "diverged"):
            return f"{number(job.metrics.get('epochs')):.0f}" if number(job.metrics.get("epochs")) is not None else ""
        return str(len(job.history)) if job.status in ("interrupted", "unfinished") else ""

    def parameters(job):
        value = number(job.metrics.get("parameters"))
        return f"{value:,.0f}" if value is not None else ""

    def seconds(job):
        value = number(job.metrics.get("fit_seconds"))
        return f"{value:.0f}" if value is not None else ""

    cols = [
        Column("status", "status", lambda job: job.status),
        Column("parameters", "parameters", parameters),
        Column("epochs run", "epochs", epochs),
        Column("val loss", "loss", loss("val/loss"), "validation"),
        Column("val rec", "rec", loss("val/rec"), "validation"),
        Column("val KL", "KL", loss("val/kl"), "validation"),
        Column("test loss", "loss", loss("test/loss"), "test"),
    ]
    if test_terms:
        cols += [Column("test rec", "rec", loss("test/rec"), "test"), Column("test KL", "KL", loss("test/kl"), "test")]
    if any("test/log_likelihood" in job.metrics for job in jobs):
        cols.append(Column("test log p(x)", r"$\log p(x)$", loss("test/log_likelihood"), "test"))
    cols += generation_columns(jobs)
    cols.append(Column("fit time (s)", "fit (s)", seconds))
    return cols


def measured(key: str, digits: int):
    def cell(job: Job) -> str:
        value = number(job.metrics.get(key))
        return "" if value is None or job.status in ("failed", "damaged") else f"{value:.{digits}f}"

    return cell


def generation_columns(jobs: list[Job]) -> list[Column]:
    """How good the generated pictures are (vae/maths/generation.py), where a run measured it."""
    if not any("gen/fid_means" in job.metrics for job in jobs):
        return []
    return [
        Column("FID means", "FID means", measured("gen/fid_means", 1), "generation"),
        Column("FID samples", "FID samples", measured("gen/fid_samples", 1), "generation"),
        Column("precision", "precision", measured("gen/precision_samples", 2), "generation"),
        Column("recall", "recall", measured("gen/recall_samples", 2), "generation"),
        Column("digits (bits)", "digits (bits)", measured("gen/class_entropy_bits", 2), "generation"),
    ]


def generation_note(jobs: list[Job]) -> str:
    """What the generation columns measure, with their scale: N, the features, the split and the floor."""
    runs = [job.metrics for job in jobs if number(job.metrics.get("gen/fid_means")) is not None]
    if not runs:
        return ""
    floors = [m["gen/fid_floor"] for m in runs if number(m.get("gen/fid_floor")) is not None]
    sizes = sorted({int(m["gen/n"]) for m in runs if number(m.get("gen/n")) is not None})
    accuracies = [m["gen/classifier_accuracy"] for m in runs if number(m.get("gen/classifier_accuracy")) is not None]

    def span(values: list[float], digits: str) -> str:  # "0.3", or "0.3 to 4.29" over runs of other test images
        low, high = (format(v, digits) for v in (min(values), max(values)))
        return low if low == high else f"{low} to {high}"

    differ = (floors and span(floors, ".2f") != format(floors[0], ".2f")) or (
        accuracies and span(accuracies, ".4f") != format(accuracies[0], ".4f")
    )
    return (
        "Generation: the Fréchet distance (FID) in the penultimate features of the project's classifier of the data"
        + (f" (test accuracy {span(accuracies, '.4f')})" if accuracies else "")
        + f" between N = {', '.join(f'{n:,}' for n in sizes)} draws of the model (decoder means, and samples "
        "x ~ p(x | z)) and the test set"
        + (
            f"; its floor, N training images against the test set, is {span(floors, '.2f')} (a perfect generator)"
            if floors
            else ""
        )
        + ("; runs on binarised test images (data.binarize) have their own floor and accuracy" if differ else "")
        + ". Precision and recall of the samples (Kynkäänniemi et al., 2019, k = 3); digits: the entropy of the "
        "classes the classifier gives the samples (log2 10 = 3.32 bits is all ten evenly)."
    )


def markdown(jobs: list[Job], sweep_dir: Path) -> str:
    keys = swept_keys(jobs)
    cols = columns(jobs)
    counts = {status: sum(job.status == status for job in jobs) for status in STATUSES}
    runs = f"{len(jobs)} run{'s' if len(jobs) != 1 else ''}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [
        f"# Model comparison: {sweep_dir}",
        "",
        f"{runs}. Sorted by val loss at the best epoch (nats per image, lower is better); val rec and KL at that "
        "epoch; test on the best checkpoint; unfinished runs show their best epoch so far.",
    ]
    fixed = fixed_overrides(jobs, keys)
    if fixed:
        lines += ["", "Every run: " + " ".join(f"`{item}`" for item in fixed) + "."]
    header = ["run", *keys, *(col.name for col in cols)]
    lines += [
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i <= len(keys) else "---:" for i in range(len(header))) + "|",
    ]
    values = shown(jobs, keys)
    for job in ranked(jobs):
        cells = [str(job.num), *values[id(job)].values(), *(col.value(job) or "-" for col in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    if note := generation_note(jobs):
        lines += ["", note]
    failed = [job for job in ranked(jobs) if job.status in ("failed", "damaged", "diverged")]
    if failed:
        lines += ["", "Failed, damaged and diverged runs:", ""]
        lines += [f"- run {job.num} ({label(job, keys, jobs)}): {job.error}" for job in failed]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "|": r"\textbar{}",  # in text, the default font encoding (OT1) prints | as a dash and < > as ¡ ¿
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


UNICODE = {  # the symbols of the figures' and models' words, as LaTeX math (\ensuremath: two in a row stay apart)
    "σ": r"\ensuremath{\sigma}",
    "β": r"\ensuremath{\beta}",
    "μ": r"\ensuremath{\mu}",
    "Φ": r"\ensuremath{\Phi}",
    "θ": r"\ensuremath{\theta}",
    "φ": r"\ensuremath{\phi}",
    "×": r"\ensuremath{\times}",
    "−": r"\ensuremath{-}",
    "·": r"\ensuremath{\cdot}",
    "²": r"\ensuremath{^2}",
    "⁻¹": r"\ensuremath{^{-1}}",
    "½": r"\ensuremath{\frac{1}{2}}",
    "→": r"\ensuremath{\to}",
    "≈": r"\ensuremath{\approx}",
    "≤": r"\ensuremath{\leq}",
    "…": r"\ldots{}",
    "–": "--",
    "—": "---",
}


SYMBOLS = re.compile("|".join(re.escape(symbol) for symbol in sorted(UNICODE, key=len, reverse=True)) + "|.", re.S)


def latex_escape(text: str) -> str:
    """Text as LaTeX that pdflatex reads: its special characters escaped, the symbols above as math, and any other
    character beyond Latin (which pdflatex's fonts lack) as `?`."""
    return "".join(
        UNICODE.get(char) or LATEX_SPECIAL.get(char, char if ord(char) < 0x250 else "?")
        for char in SYMBOLS.findall(text)
    )


def latex_comment(text: str) -> str:
    """Text for a LaTeX comment line: one line, nothing that ends it."""
    return " ".join(text.split())


def latex_number(text: str) -> str:
    """A table cell as LaTeX: a true minus sign, braced thousands separators, -- when empty."""
    if not text:
        return "--"
    text = text.replace(",", "{,}")
    return "$-$" + text[1:] if text.startswith("-") else text


def latex_value(text: str) -> str:
    """A swept value as shown (vae/results/sweeps.py `readable`) in LaTeX: 1e-5 as $1 \times 10^{-5}$, words escaped."""
    mantissa, e, exponent = text.partition("e")
    if e and exponent.lstrip("+-").isdigit() and mantissa.lstrip("+-").replace(".", "", 1).isdigit():
        power = f"10^{{{int(exponent)}}}"
        return f"${power}$" if mantissa == "1" else f"${mantissa} \\times {power}$"
    return latex_escape(text)


CAPTION = (
    r"Model comparison, sorted by validation loss (negative ELBO for a VAE, "
    r"$-\log p(x \mid z)$ for an auto-encoder; nats per image, lower is better)."
)


def latex(jobs: list[Job], sweep_dir: Path, test_terms: bool = False, caption: str = CAPTION) -> str:
    """comparison.tex: a booktabs table, one row per job (`test_terms`: with the test rec and KL, as in the report);
    the swept values first; a failed job's row says so."""
    keys = swept_keys(jobs)
    cols = [col for col in columns(jobs, test_terms) if col.name != "status"]
    header = ["run", *(latex_escape(key) for key in keys), *(col.latex for col in cols)]
    groups, rules, start = [""] * (len(keys) + 1), [], len(keys) + 2  # the headings above the columns, and their rules
    for group, run in itertools.groupby(cols, key=lambda col: col.group):
        width = len(list(run))
        groups += [rf"\multicolumn{{{width}}}{{c}}{{{group}}}"] if group else [""] * width
        rules += [rf"\cmidrule(lr){{{start}-{start + width - 1}}}"] if group else []
        start += width
    lines = [
        f"% Model comparison of {latex_comment(str(sweep_dir))} (written by vae-lab).",
        "% Needs \\usepackage{booktabs} and graphicx. Losses in nats per image; val at the best epoch, test on its "
        "checkpoint.",
        r"\begin{table}[ht]",
        r"\centering",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%  at most the text's width",
        r"\begin{tabular}{" + "l" * (len(keys) + 1) + "r" * len(cols) + "}",
        r"\toprule",
        " & ".join(groups) + r" \\ " + " ".join(rules),
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    values = shown(jobs, keys)
    for job in ranked(jobs):
        swept = [str(job.num), *(latex_value(value) for value in values[id(job)].values())]
        if job.status in ("failed", "damaged"):
            cells = swept + [rf"\multicolumn{{{len(cols)}}}{{l}}{{\emph{{{job.status}}}}}"]
        else:
            cells = swept + [latex_number(col.value(job)) for col in cols]
            if job.status in ("interrupted", "unfinished"):
                cells[-1] = rf"\emph{{{job.status}}}"
        lines.append(" & ".join(cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}}",
        r"\caption{" + " ".join(filter(None, [caption, latex_escape(generation_note(jobs))])) + "}",
        r"\label{tab:comparison}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
