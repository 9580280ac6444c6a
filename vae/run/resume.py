"""What a resume may change, decided before anything is built or written (what may change: the config's schema,
vae/files/schema.py): `check_groups` compares the command line's group choices with the run's, before Hydra composes
anything; `check_resume` compares the command's config with the run's saved one, key by key, and checks that
checkpoints/last.ckpt loads. A refused resume leaves the directory as it was."""

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import Damaged, Refused, UserError, in_brief
from vae.core.targets import current_targets
from vae.files.checkpoint import read_checkpoint
from vae.files.layout import RunFiles
from vae.files.saved import load_config
from vae.files.schema import GROUPS, default_choices, flatten, resumable, validate

log = logging.getLogger("train")

NOT_COMPARED = ("resume", "overwrite")
ABSENT = "<absent>"


def comparable(cfg: DictConfig) -> dict:
    """The flat config as a resume compares it: `_target_`s where their classes live now (a run written before the
    package took its layers names vae.models.VAE)."""
    return flatten(OmegaConf.create(current_targets(OmegaConf.to_container(cfg, resolve=True))))


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
        raise cannot_change(run_dir, fixed[0], saved.get(fixed[0], ABSENT), now.get(fixed[0], ABSENT))
    return resume_checkpoint(RunFiles(run_dir))


def cannot_change(run_dir: Path, key: str, before, after) -> Refused:
    """The refusal of a resume that changes a key or a group's choice."""
    return Refused(
        f"resume={run_dir} cannot change {key} (the run has {before!r}, this command {after!r}): its checkpoint "
        "continues the run it holds. A resume may change only epochs, lr and the optimizer's settings, "
        "gradient_clip_val, threads, data.root, plots.*, eval.* and the loggers; for other values train a new run "
        "(nothing was changed)"
    )


def saved_choices(run_dir: Path, saved: list[str]) -> dict:
    """The option of each config group the run was trained with: Hydra's record of them (.hydra/hydra.yaml), else
    the run's own overrides (.hydra/overrides.yaml, `saved`), else conf/config.yaml's defaults."""
    choices = default_choices()
    for override in saved:
        key, _, value = override.partition("=")
        if key.lstrip("+~") in GROUPS:
            choices[key.lstrip("+~")] = choice(key, value)
    try:
        recorded = OmegaConf.select(OmegaConf.load(RunFiles(run_dir).hydra_config), "hydra.runtime.choices")
        choices.update(OmegaConf.to_container(recorded) if OmegaConf.is_dict(recorded) else {})
    except Exception:  # missing or damaged: the run's overrides and the defaults say it
        pass
    return choices


def choice(key: str, value: str) -> str | None:
    """The option an override `key=value` chooses (None: the group left out, ~prior or prior=null)."""
    value = value.strip("'\"")
    return None if key.startswith("~") or value in ("null", "") else value


def check_groups(run_dir: Path, saved: list[str], overrides: list[str]) -> None:
    """A resume that chooses another option of a group the checkpoint holds (prior=, model=, data=, ...; not the
    loggers) is refused as a changed key is, before Hydra composes a config the run's saved values do not fit."""
    choices = saved_choices(run_dir, saved)
    for override in overrides:
        key, sep, value = override.partition("=")
        name = key.lstrip("+~")
        if name in GROUPS and not GROUPS[name].resume and (sep or key.startswith("~")):
            before = None if choices.get(name) is None else str(choices[name])
            if choice(key, value) != before:
                raise cannot_change(run_dir, name, before, choice(key, value))


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
