"""The directories of a sweep's jobs: `<number>_<what this job sets>` (3_latent_dim=8,model=ae: the overrides that
differ from the sweep's command line, less conf/config.yaml's exclude_keys) while that is short and a valid file name
on every system, else `<number>_<8 hex digits of those overrides>`; every override is in the job's
.hydra/overrides.yaml, the comparison and the report. Numbers go on from the jobs a sweep folder already holds, so a
second sweep into it numbers its jobs after the first's.

conf/config.yaml names them through the resolver `vae_job_dir` (hydra.sweep.subdir), registered when train.py starts
and wherever Hydra's launchers rebuild this module's callback (a joblib or SLURM worker)."""

import hashlib
import json
import os
import re
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vae.results.sweeps import find_job_dirs, job_number

RESOLVER = "vae_job_dir"
FIRST_NUMBER = "VAE_LAB_FIRST_JOB"  # the number of the sweep's job 0: one past the folder's jobs before it
COMMAND_LINE = "VAE_LAB_SWEEP_OVERRIDES"  # the sweep's command line (JSON): what every job shares, not in names
MAX_NAME = 100  # characters: far below 255 bytes, and room under Windows' 260 for the whole path
NOT_PORTABLE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')  # characters Windows or a path would not keep in a name


def job_dir(num, task=(), excluded=()) -> str:
    """The job directory's name from Hydra's job number, the job's overrides and the keys left out of names."""
    number = int(num) + int(os.environ.get(FIRST_NUMBER, "0"))
    shared = set(json.loads(os.environ.get(COMMAND_LINE, "[]")))
    kept = [str(o) for o in task if str(o) not in shared and str(o).lstrip("+~").partition("=")[0] not in excluded]
    overrides = ",".join(sorted(kept))
    name = f"{number}_{overrides}" if overrides else str(number)
    if len(name) > MAX_NAME or NOT_PORTABLE.search(overrides) or overrides.endswith((" ", ".")):
        name = f"{number}_{hashlib.sha1(overrides.encode()).hexdigest()[:8]}"
    return name


def register() -> None:
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, job_dir)


def next_number(sweep_dir: Path) -> int:
    """One past the highest job number in `sweep_dir` (0 for a new folder)."""
    numbers = [job_number(d) for d in find_job_dirs(sweep_dir)] if Path(sweep_dir).is_dir() else []
    return max((n for n in numbers if n is not None), default=-1) + 1


class NumberJobs(Callback):
    """Hydra callback: before a sweep launches its jobs, their numbers start after the jobs its folder holds."""

    def __init__(self):
        register()

    def __setstate__(self, state: dict) -> None:  # rebuilt in a launcher's worker process (joblib, SLURM)
        self.__dict__.update(state)
        register()

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        os.environ[FIRST_NUMBER] = str(next_number(Path(str(config.hydra.sweep.dir))))
        os.environ[COMMAND_LINE] = json.dumps([str(o) for o in config.hydra.overrides.task])
