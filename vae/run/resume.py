"""What a resume may change, decided before anything is built or written: `check_resume` compares the command's
config with the run's saved one, key by key (what may change: the config's schema, vae/files/schema.py), and checks
that checkpoints/last.ckpt loads. A refused resume leaves the directory as it was."""

import logging
from pathlib import Path

from omegaconf import DictConfig

from vae.core.errors import Damaged, Refused, UserError, in_brief
from vae.core.targets import current
from vae.files.checkpoint import read_checkpoint
from vae.files.layout import RunFiles
from vae.files.saved import load_config
from vae.files.schema import flatten, resumable, validate

log = logging.getLogger("train")

NOT_COMPARED = ("resume", "overwrite")
ABSENT = "<absent>"


def comparable(cfg: DictConfig) -> dict:
    """The flat config as a resume compares it: `_target_`s where their classes live now (a run written before the
    package took its layers names vae.models.VAE)."""
    return {key: current(value) if key.endswith("_target_") else value for key, value in flatten(cfg).items()}


def changed_keys(saved: dict, now: dict) -> list[str]:
    """The keys whose values differ and that a resume may not change, latent_dim before model.latent_dim."""
    keys = sorted(set(saved) | set(now), key=lambda key: (key.count("."), key))
    return [
        key
        for key in keys
        if key not in NOT_COMPARED and saved.get(key, ABSENT) != now.get(key, ABSENT) and not resumable(key)
    ]


def check_resume(cfg: DictConfig, run_dir: Path) -> Path | None:
    """Refuses a resume whose config does not fit the run's checkpoint, or whose last.ckpt does not load; returns the
    checkpoint to continue from (None: the run stopped in its first epoch, so it starts from scratch)."""
    if cfg.resume and Path(cfg.resume).resolve() != Path(run_dir).resolve():
        raise Refused(f"resume={cfg.resume} continues that run in its own directory, not in {run_dir}")
    validate(cfg)  # a bad new value is refused before the saved config is replaced
    try:
        saved = comparable(load_config(run_dir))
    except Exception as error:
        raise Refused(
            f"resume={run_dir}: its config {RunFiles(run_dir).config} does not load ({in_brief(error)}); "
            "train a new run"
        ) from None
    now = comparable(cfg)
    fixed = changed_keys(saved, now)
    if fixed:
        key = fixed[0]
        raise Refused(
            f"resume={run_dir} cannot change {key} (the run has {saved.get(key, ABSENT)!r}, this command "
            f"{now.get(key, ABSENT)!r}): its checkpoint continues the run it holds. A resume may change "
            "only epochs, lr and the optimizer's settings, gradient_clip_val, threads, data.root, plots.*, "
            "eval.* and the loggers; for other values train a new run (nothing was changed)"
        )
    return resume_checkpoint(RunFiles(run_dir))


def resume_checkpoint(files: RunFiles) -> Path | None:
    last = files.last
    if not last.is_file():
        if any(files.checkpoints.glob("*.ckpt")):
            raise Refused(
                f"{last} is missing, so the run cannot be continued; its other checkpoints and metrics.json are "
                "untouched (python -m vae.evaluate and vae.plots read them): train a new run to train further"
            )
        log.info(f"{last} does not exist yet (stopped during the first epoch): starting from scratch")
        return None
    try:
        read_checkpoint(last)
    except Damaged as error:
        raise Refused(
            f"{last} is damaged ({in_brief(error.__cause__ or error)}), so the run cannot be continued; its other "
            "files are untouched (python -m vae.evaluate and vae.plots read best.ckpt): train a new run"
        ) from None
    except UserError as error:  # another version's checkpoint
        raise Refused(str(error)) from None
    return last
