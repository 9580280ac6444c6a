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

import fnmatch
import json
import logging
import os
import shutil
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from vae.config import flatten
from vae.errors import Interrupted, Refused, UserError, find_user_error, in_brief

log = logging.getLogger("train")

# A run's results: what makes a directory used, and what overwrite=true deletes (train.log is appended to).
RESULTS = (".hydra", "checkpoints", "figures", "metrics.json", "history.csv", "traceback.txt", "hparams.yaml", "csv")
EVENTS = ("events.out.tfevents.*", "hpc_ckpt_*.ckpt")  # TensorBoard's files, and Lightning's on SLURM's signal

# What a resume may change: how long and how fast it trains on, where the data lies, and what it draws and
# measures at the end. Everything else (the model, the objective, the data, the seed) is what the checkpoint
# holds or continues.
RESUMABLE = (
    "epochs",
    "trainer.max_epochs",
    "lr",
    "optimizer.*",
    "model.optimizer.*",
    "gradient_clip_val",
    "trainer.gradient_clip_val",
    "threads",
    "plots.*",
    "callbacks.figures.plots.*",
    "eval.*",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "data.root",
    "data.download",
    "data.eval_batch_size",
)
NOT_COMPARED = ("resume", "overwrite")
# Where the numbers go, not what they are: a resume may choose other loggers, their `_target_`s included (a run
# trained before conf/logger/ became a mapping of named loggers has logger._target_ and the like).
LOGGERS = ("logger", "logger.*")
# Keys that vae-lab itself changed since checkpoint format 2, so that runs written before still resume.
UPGRADED = ("callbacks.checkpoint._target_", "trainer.default_root_dir", "callbacks.figures._target_")


def resumable(key: str) -> bool:
    if key in UPGRADED or any(fnmatch.fnmatchcase(key, pattern) for pattern in LOGGERS):
        return True
    return not key.endswith("_target_") and any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE)


def write_atomically(path: Path, text: str) -> Path:
    """Writes `<path>.tmp` and renames it over `path`: a kill or a full disk leaves the old file whole."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_metrics(run_dir: Path) -> dict:
    """metrics.json as a dict ({} when absent; a file that is not a JSON object is treated as absent)."""
    path = Path(run_dir) / "metrics.json"
    try:
        metrics = json.loads(path.read_text()) if path.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    return write_atomically(Path(run_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def update_metrics(run_dir: Path, values: dict) -> Path:
    """Adds `values` to the run's metrics.json, keeping the keys it already holds (a damaged file is replaced)."""
    return write_metrics(run_dir, {**read_metrics(run_dir), **values})


def rank_zero() -> bool:
    """False in the other processes of a DDP or SLURM job: rank zero owns the run directory."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


NEW_FOLDER = "choose another folder (hydra.run.dir=<folder>, or hydra.sweep.dir=<folder> for a sweep)"


def requeued() -> bool:
    """True in a SLURM job that SLURM requeued (preemption, a time limit, `scontrol requeue`): the job runs its
    command again, into the directory it had, and continues from checkpoints/last.ckpt as `resume=` would."""
    return os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")


def check_writable(folder: Path, what: str, advice: str = NEW_FOLDER) -> None:
    """A clear message before Hydra, training or a tool meets a folder it cannot write (read-only, not yours)."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(
            f"cannot write {what} {folder}: {existing} is not a writable folder (read-only, or not yours); {advice}"
        )


class RunDirectory:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.claimed = False  # True once open() has passed its checks and may write
        self.lock_fd: int | None = None

    # --- the lock -------------------------------------------------------------------------------------------
    def lock(self, action: str = "trains into") -> "RunDirectory":
        """An exclusive lock on the directory itself (flock: released when the process ends, however it ends)."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Refused(
                f"{self.path} is in use: another process {action} it; wait until it ends, "
                "or give this run a directory of its own (leave out hydra.run.dir, or give another)"
            ) from None
        self.lock_fd = fd
        return self

    def close(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the lock
            self.lock_fd = None

    def __enter__(self):
        return self.lock("works on")

    def __exit__(self, *exc):
        self.close()

    # --- opening it for a run -------------------------------------------------------------------------------
    def used(self) -> list[str]:
        """The results of an earlier run in this directory (empty for a new one)."""
        found = [name for name in RESULTS if (self.path / name).exists()]
        return found + sorted(p.name for pattern in EVENTS for p in self.path.glob(pattern))[:1]

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
        last = self.path / "checkpoints" / "last.ckpt"
        if not rank_zero():  # DDP's other processes: rank zero checked and took the directory
            return last if (cfg.resume or requeued()) and last.is_file() else None
        check_writable(self.path, "the run directory")
        self.lock()
        checkpoint = None
        if cfg.resume or requeued() and self.used():
            checkpoint = self.check_resume(cfg)
        elif cfg.overwrite:
            self.clear()
        else:
            self.refuse_if_used()
        self.write_config(cfg)
        self.claimed = True
        return checkpoint

    def check_resume(self, cfg: DictConfig) -> Path | None:
        """Refuses a resume whose config does not fit the run's checkpoint, or whose last.ckpt does not load."""
        from vae.config import validate
        from vae.runs import load_config

        if cfg.resume and Path(cfg.resume).resolve() != self.path.resolve():
            raise Refused(f"resume={cfg.resume} continues that run in its own directory, not in {self.path}")
        validate(cfg)  # a bad new value is refused before the saved config is replaced
        try:
            saved = flatten(load_config(self.path))
        except Exception as error:
            raise Refused(
                f"resume={self.path}: its config {self.path / '.hydra' / 'config.yaml'} does not load "
                f"({in_brief(error)}); train a new run"
            ) from None
        now = flatten(cfg)
        absent = "<absent>"
        fixed = [
            key
            for key in sorted(set(saved) | set(now), key=lambda key: (key.count("."), key))  # latent_dim first
            if key not in NOT_COMPARED and saved.get(key, absent) != now.get(key, absent) and not resumable(key)
        ]
        if fixed:
            key = fixed[0]
            raise Refused(
                f"resume={self.path} cannot change {key} (the run has {saved.get(key, absent)!r}, this command "
                f"{now.get(key, absent)!r}): its checkpoint continues the run it holds. A resume may change "
                "only epochs, lr and the optimizer's settings, gradient_clip_val, threads, data.root, plots.*, "
                "eval.* and the loggers; for other values train a new run (nothing was changed)"
            )
        return self.resume_checkpoint()

    def resume_checkpoint(self) -> Path | None:
        import torch

        from vae.checkpoints import check_format

        checkpoints = self.path / "checkpoints"
        last = checkpoints / "last.ckpt"
        if not last.is_file():
            if any(checkpoints.glob("*.ckpt")):
                raise Refused(
                    f"{last} is missing, so the run cannot be continued; its other checkpoints and metrics.json are "
                    "untouched (python -m vae.evaluate and vae.plots read them): train a new run to train further"
                )
            log.info(f"{last} does not exist yet (stopped during the first epoch): starting from scratch")
            return None
        try:
            saved = torch.load(last, map_location="cpu", weights_only=True)
            check_format(saved)
        except UserError as error:
            raise Refused(str(error)) from None
        except Exception as error:
            raise Refused(
                f"{last} is damaged ({in_brief(error)}), so the run cannot be continued; its other "
                "files are untouched (python -m vae.evaluate and vae.plots read best.ckpt): train a new run"
            ) from None
        return last

    def clear(self) -> None:
        """overwrite=true: the old run's results go before the new run writes any."""
        if not self.used():
            return
        for name in RESULTS:
            path = self.path / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        for path in [p for pattern in EVENTS for p in self.path.glob(pattern)]:
            path.unlink()
        log.info(f"overwrite=true: deleted the earlier run's results in {self.path}")

    def write_config(self, cfg: DictConfig) -> None:
        """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them (conf/config.yaml sets
        hydra.output_subdir to null, so that this happens after the checks above, not before them)."""
        from hydra.core.hydra_config import HydraConfig

        folder = self.path / ".hydra"
        folder.mkdir(exist_ok=True)
        saved = OmegaConf.masked_copy(cfg, list(cfg.keys()))
        if cfg.resume:
            with open_dict(saved):
                saved.resume = str(self.path)  # the directory itself, not how the command line passed it
        write_atomically(folder / "config.yaml", OmegaConf.to_yaml(saved))
        if HydraConfig.initialized():
            hydra = HydraConfig.instance().cfg
            overrides = [
                f"resume={self.path}" if override.startswith("resume=") else override
                for override in hydra.hydra.overrides.task
            ]
            write_atomically(folder / "hydra.yaml", OmegaConf.to_yaml(hydra))
            write_atomically(folder / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(overrides)))

    # --- recording ------------------------------------------------------------------------------------------
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
                write_atomically(self.path / "traceback.txt", "".join(traceback.format_exception(error)))
            status = "interrupted" if isinstance(found, Interrupted) else "failed"
            update_metrics(self.path, {"status": status, "error": message})
        except OSError as io_error:
            message += f" (it could not be recorded in {self.path}: {io_error.strerror})"
        return message
