"""The comparison table of a sweep, rendered as Markdown (comparison.md) and LaTeX (comparison.tex)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae.sweeps import STATUSES, Job, fixed_overrides, label, number, ranked, swept_keys


@dataclass
class Column:
    name: str  # as in comparison.md
    latex: str  # as in comparison.tex
    value: Callable[[Job], str]  # job -> cell text, "" when it does not apply


def loss(name: str):
    def cell(job: Job) -> str:
        value = number(job.best().get(name) if name.startswith("val/") else job.metrics.get(name))
        return "" if value is None or job.status in ("failed", "damaged") else f"{value:.2f}"

    return cell


def columns(jobs: list[Job]) -> list[Column]:
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
        Column("epochs run", "epochs run", epochs),
        Column("val loss", "val loss", loss("val/loss")),
        Column("val rec", "val rec", loss("val/rec")),
        Column("val KL", "val KL", loss("val/kl")),
        Column("test loss", "test loss", loss("test/loss")),
    ]
    if any("test/log_likelihood" in job.metrics for job in jobs):
        cols.append(Column("test log p(x)", r"test $\log p(x)$", loss("test/log_likelihood")))
    cols.append(Column("fit time (s)", "fit time (s)", seconds))
    return cols


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
    for job in ranked(jobs):
        cells = [str(job.num), *(job.overrides.get(key, "") for key in keys), *(col.value(job) or "-" for col in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [job for job in ranked(jobs) if job.status in ("failed", "damaged", "diverged")]
    if failed:
        lines += ["", "Failed, damaged and diverged runs:", ""]
        lines += [f"- run {job.num} ({label(job, keys)}): {job.error}" for job in failed]
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
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def latex_number(text: str) -> str:
    """A table cell as LaTeX: a true minus sign, braced thousands separators, -- when empty."""
    if not text:
        return "--"
    text = text.replace(",", "{,}")
    return "$-$" + text[1:] if text.startswith("-") else text


def latex(jobs: list[Job], sweep_dir: Path) -> str:
    keys = swept_keys(jobs)
    cols = [col for col in columns(jobs) if col.name != "status"]
    header = [latex_escape(key) for key in keys] + [col.latex for col in cols]
    lines = [
        f"% Model comparison of the sweep {sweep_dir} (written by vae.compare).",
        "% Needs \\usepackage{booktabs}. Losses in nats per image; val at the best epoch, test on its checkpoint.",
        r"\begin{table}[ht]",
        r"\centering",
        r"\begin{tabular}{" + "l" * len(keys) + "r" * len(cols) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    for job in ranked(jobs):
        swept = [latex_escape(job.overrides.get(key, "")) for key in keys]
        if job.status in ("failed", "damaged"):
            cells = swept + [rf"\multicolumn{{{len(cols)}}}{{l}}{{\emph{{{job.status}}}}}"]
        else:
            cells = swept + [latex_number(col.value(job)) for col in cols]
            if job.status in ("interrupted", "unfinished"):
                cells[-1] = rf"\emph{{{job.status}}}"
        lines.append(" & ".join(cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{Model comparison, sorted by validation loss (negative ELBO for a VAE, "
        r"$-\log p(x \mid z)$ for an auto-encoder; nats per image, lower is better).}",
        r"\label{tab:comparison}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
