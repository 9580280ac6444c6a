"""One owner for a run directory's life: what train.py may do to it, and what it records there.

    run = RunDirectory("outputs/2026-11-29/12-00-00")
    checkpoint = run.open(cfg)     # lock it, refuse what would damage it, write .hydra/; last.ckpt to resume or None
    ... training ...
    run.record_failure(error)      # metrics.json says failed or interrupted, keeping the numbers it holds
    run.close()

What a run directory guarantees (the README lists them too):
- One process trains into it at a time: a lock on the directory refuses a second one (and vae.evaluate meanwhile).
- A run never lands in a used directory: a second run into it is refused unless `overwrite=true`, which deletes the
  old results first. Two generations of checkpoints, history or metrics never mix.
- A SLURM job that SLURM requeued continues its own run as a resume does (`requeued`).
- A resume is checked before anything is written: the config may change only what a continuation can (epochs,
  lr, the figures, the evaluation, the loggers...), and checkpoints/last.ckpt must load. A refused command leaves the
  directory as it was.
- Files are replaced whole (written to `<name>.tmp`, then renamed): a kill or a full disk leaves the previous
  version, never half a file.
"""

import logging
import os
import shutil
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from vae.core.errors import Interrupted, Refused, find_user_error
from vae.files.layout import RunFiles
from vae.files.metrics import update_metrics, write_metrics
from vae.files.writing import check_writable, write_atomically
from vae.run.lock import DirectoryLock
from vae.run.resume import check_resume

log = logging.getLogger("train")


def rank_zero() -> bool:
    """False in the other processes of a DDP or SLURM job: rank zero owns the run directory."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


def requeued() -> bool:
    """True in a SLURM job that SLURM requeued (preemption, a time limit, `scontrol requeue`): the job runs its
    command again, into the directory it had, and continues from checkpoints/last.ckpt as `resume=` would."""
    return os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")


class RunDirectory:
    """A run directory's life in train.py: taken (checked, locked, its config written), written to, closed."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files = RunFiles(self.path)
        self.claimed = False  # True once open() has passed its checks and may write
        self._lock = DirectoryLock(self.path)

    def lock(self, action: str = "trains into") -> "RunDirectory":
        self._lock.acquire(action)
        return self

    def close(self) -> None:
        self._lock.release()

    def __enter__(self):
        return self.lock("works on")

    def __exit__(self, *exc):
        self.close()

    def used(self) -> list[str]:
        return self.files.used()

    def refuse_if_used(self) -> None:
        if used := self.used():
            raise Refused(
                f"{self.path} already holds a run ({', '.join(used)}): continue it with "
                f"`python train.py resume={self.path}`, train into a new directory (leave out hydra.run.dir, "
                "or give another), or delete its results and train anew with overwrite=true"
            )

    def open(self, cfg: DictConfig) -> Path | None:
        """Checks and takes the directory for the run `cfg` describes; returns the checkpoint to resume from (or
        None to start afresh). Raises Refused, having changed nothing, when the run would damage what is there."""
        last = self.files.last
        if not rank_zero():  # DDP's other processes: rank zero checked and took the directory
            return last if (cfg.resume or requeued()) and last.is_file() else None
        check_writable(self.path, "the run directory")
        self.lock()
        checkpoint = None
        if cfg.resume or requeued() and self.used():
            checkpoint = check_resume(cfg, self.path)
        elif cfg.overwrite:
            self.clear()
        else:
            self.refuse_if_used()
        self.write_config(cfg)
        self.claimed = True
        return checkpoint

    def clear(self) -> None:
        """overwrite=true: the old run's results go before the new run writes any."""
        if not self.used():
            return
        for path in self.files.results():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        log.info(f"overwrite=true: deleted the earlier run's results in {self.path}")

    def write_config(self, cfg: DictConfig) -> None:
        """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them (conf/config.yaml sets
        hydra.output_subdir to null, so that this happens after the checks above, not before them)."""
        from hydra.core.hydra_config import HydraConfig

        self.files.hydra.mkdir(exist_ok=True)
        saved = OmegaConf.masked_copy(cfg, list(cfg.keys()))
        if cfg.resume:
            with open_dict(saved):
                saved.resume = str(self.path)  # the directory itself, not how the command line passed it
        write_atomically(self.files.config, OmegaConf.to_yaml(saved))
        if HydraConfig.initialized():
            hydra = HydraConfig.instance().cfg
            overrides = [
                f"resume={self.path}" if override.startswith("resume=") else override
                for override in hydra.hydra.overrides.task
            ]
            write_atomically(self.files.hydra_config, OmegaConf.to_yaml(hydra))
            write_atomically(self.files.overrides, OmegaConf.to_yaml(OmegaConf.create(overrides)))

    def write_metrics(self, metrics: dict) -> Path:
        return write_metrics(self.path, metrics)

    def record_failure(self, error: BaseException, cfg: DictConfig | None = None) -> str:
        """Marks metrics.json {"status": "failed" (or "interrupted" for a signal), "error": ...}, keeping what it
        already holds (a failure during the evaluation keeps the training's numbers); an unexpected error's
        traceback goes to traceback.txt. A run that failed before it took its directory (a bad value, missing data)
        is recorded only in a new directory, with its config, so that a sweep's comparison lists it; nothing is
        written into a directory it refused or did not take. Returns the one-line message."""
        found = find_user_error(error)
        message = str(found) if found else f"{type(error).__name__}: {error}"
        if not self.claimed and (isinstance(found, Refused) or not rank_zero() or self.used()):
            return message
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if not self.claimed and cfg is not None:
                self.write_config(cfg)
            if found is None:
                write_atomically(self.files.traceback, "".join(traceback.format_exception(error)))
            status = "interrupted" if isinstance(found, Interrupted) else "failed"
            update_metrics(self.path, {"status": status, "error": message})
        except OSError as io_error:
            message += f" (it could not be recorded in {self.path}: {io_error.strerror})"
        return message
