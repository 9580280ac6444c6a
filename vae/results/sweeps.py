"""Reading a sweep from the files its jobs wrote: each job's overrides, status, metrics and history.

A job directory holds `.hydra/overrides.yaml`, `.hydra/hydra.yaml`, `history.csv` and `metrics.json`;
metrics.json says "completed" or "failed" (with the error); a job without it is still running or was stopped.
A job whose files cannot be read (a metrics.json that is not a JSON object, say) is listed as "damaged", with why.
"""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from vae.core.errors import Damaged, UserError
from vae.files.history import read_history
from vae.files.layout import CHECKPOINTS, RunFiles
from vae.files.metrics import read_metrics


@dataclass
class Job:
    dir: Path
    num: int
    overrides: dict[str, str]  # key -> value, as in .hydra/overrides.yaml
    # completed | diverged (completed, but worse than untrained) | failed | interrupted (by a signal; resumable) |
    # unfinished (running, or killed) | damaged (its files do not read)
    status: str
    not_swept: tuple[str, ...] = ()  # overrides that are not hyperparameters (the config's exclude_keys)
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    @property
    def error(self) -> str:
        return self.metrics.get("error", self.metrics.get("warning", ""))

    def best(self) -> dict:
        """Val metrics at the best epoch: metrics.json, or for an unfinished run its history so far."""
        if self.status in ("completed", "diverged"):
            return self.metrics
        rows = [row for row in self.history if math.isfinite(row.get("val/loss", math.nan))]
        if self.status in ("failed", "damaged") or not rows:
            return {}
        return min(rows, key=lambda row: row["val/loss"])


STATUSES = ("completed", "diverged", "failed", "interrupted", "unfinished", "damaged")


def number(value) -> float | None:
    """A metric as a number, or None where metrics.json holds something else (or nothing)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_overrides(path: Path) -> dict[str, str]:
    overrides = {}
    for item in OmegaConf.load(path) or []:
        key, _, value = str(item).partition("=")
        overrides[key] = value
    return overrides


def job_number(folder: Path) -> int | None:
    """The number a job directory's name starts with (3 for 3_lr=0.001), or None."""
    prefix = folder.name.partition("_")[0]
    return int(prefix) if prefix.isdigit() else None


def read_job(job_dir: Path) -> Job:
    files = RunFiles(job_dir)
    job = Job(dir=job_dir, num=-1, overrides={}, status="unfinished")  # num: the job number of a sweep
    try:
        job.overrides = read_overrides(files.overrides)
        if files.hydra_config.is_file():
            saved = OmegaConf.load(files.hydra_config)
            num = OmegaConf.select(saved, "hydra.job.num", throw_on_missing=False)
            job.num = num if isinstance(num, int) else -1
            # the keys conf/config.yaml leaves out of job directory names: where the data lives, presets, threads
            excluded = OmegaConf.select(saved, "hydra.job.config.override_dirname.exclude_keys", throw_on_missing=False)
            job.not_swept = tuple(str(key) for key in excluded or ())
        named = job_number(job_dir)  # its name's: a second sweep's jobs go on from the first's numbers
        job.num = named if named is not None else job.num
        job.history = read_history(files.history)
    except Exception as error:
        return damaged(job, f"{job_dir}: its files do not read ({type(error).__name__})")
    try:
        metrics = read_metrics(job_dir)
    except Damaged as error:
        return damaged(job, str(error))
    job.metrics = metrics
    job.status = metrics.get("status", "unfinished") if metrics.get("status", "unfinished") in STATUSES else "damaged"
    if job.status in ("completed", "diverged") and number(metrics.get("val/loss")) is None:
        return damaged(job, f"{files.metrics} says completed but holds no val/loss")
    return job


def damaged(job: Job, why: str) -> Job:
    job.status, job.metrics = "damaged", {"error": why}
    return job


def find_job_dirs(folder: Path, depth: int = 3) -> list[Path]:
    """Folders below `folder` holding .hydra/overrides.yaml (a job's value with a `/` nests its folder)."""
    found = []
    for child in sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if RunFiles(child).is_job():
            found.append(child)
        elif depth > 1 and child.name != CHECKPOINTS:
            found += find_job_dirs(child, depth - 1)
    return found


def collect(sweep_dir: Path) -> list[Job]:
    """Every job of a sweep directory, in the order they were launched."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} does not exist: give a sweep directory, e.g. outputs/multirun/<date>/<time>")
    job_dirs = find_job_dirs(sweep_dir)
    if not job_dirs:
        if RunFiles(sweep_dir).is_run():
            raise UserError(
                f"{sweep_dir} is a single run, not a sweep: a comparison needs the directory of a "
                "`python train.py -m ...` (outputs/multirun/<date>/<time>)"
            )
        if (sweep_dir / "multirun.yaml").is_file():
            raise UserError(
                f"{sweep_dir} is a sweep whose jobs have not started yet: no job directory "
                "(<job>/.hydra/overrides.yaml) in it; try again once the first job runs"
            )
        raise UserError(
            f"{sweep_dir} is not a sweep directory: it holds no job directories "
            "(<job>/.hydra/overrides.yaml); give the folder `python train.py -m ...` printed, "
            "e.g. outputs/multirun/<date>/<time>"
        )
    return sorted((read_job(d) for d in job_dirs), key=lambda job: (job.num, str(job.dir)))


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs (none in a sweep of one job)."""
    not_swept = {key for job in jobs for key in job.not_swept}
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides if key not in not_swept))
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]


def fixed_overrides(jobs: list[Job], keys: list[str]) -> list[str]:
    """Overrides shared by every job (the rest of the command line), for the table's heading."""
    shared = {key: value for key, value in jobs[0].overrides.items() if key not in keys}
    return [
        f"{key}={readable(value)}"
        for key, value in shared.items()
        if all(job.overrides.get(key) == value for job in jobs)
    ]


NUMBER = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+[eE][+-]?\d+)([eE][+-]?\d+)?")  # a decimal, not an integer


def readable(text: str, digits: int = 3) -> str:
    """An override's value as a reader writes it: 0.0038322168504927897 -> 0.00383, 1e-05 -> 1e-5, 250.0 -> 250;
    integers and words as given."""
    if not NUMBER.fullmatch(text.strip()):
        return text
    mantissa, _, exponent = f"{float(text):.{digits}g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def shown_values(jobs: list[Job], key: str) -> dict[str, str]:
    """`key`'s value in each job -> as shown: 3 significant digits, more where two values would print alike."""
    values = {job.overrides.get(key, "") for job in jobs}
    for digits in range(3, 18):
        shown = {value: readable(value, digits) for value in values}
        if len(set(shown.values())) == len(values):
            return shown
    return {value: value for value in values}


def shown(jobs: list[Job], keys: list[str]) -> dict[int, dict[str, str]]:
    """id(job) -> {key: the value as shown} for the swept `keys` ("" where a job lacks the key)."""
    by_key = {key: shown_values(jobs, key) for key in keys}
    return {id(job): {key: by_key[key][job.overrides.get(key, "")] for key in keys} for job in jobs}


def label(job: Job, keys: list[str], jobs: list[Job] | None = None) -> str:
    """`key=value, ...` of the swept keys (values as shown among `jobs`), or the directory's name."""
    values = shown(jobs or [job], keys)[id(job)]
    return ", ".join(f"{key}={values[key] or '-'}" for key in keys) or job.dir.name


def ranked(jobs: list[Job]) -> list[Job]:
    """Completed runs by val loss, then unfinished ones (by val loss so far), then failed ones."""
    order = {"completed": 0, "diverged": 1, "interrupted": 1, "unfinished": 1, "failed": 2}

    def val_loss(job):
        value = number(job.best().get("val/loss"))
        return math.inf if value is None or math.isnan(value) else value

    return sorted(jobs, key=lambda job: (order.get(job.status, 3), val_loss(job), job.num))
