"""train.py's command line before Hydra reads it: group choices checked with a short message, the folders it
will write checked, and `resume=<run directory>` expanded into that run's own overrides, then the command
line's, in the same run directory (a group choice the run's checkpoint holds may not change: prior=, model=, ...).

The directory to resume reaches Hydra through an environment variable, not on its command line: a sweep's job
directory (`0_lr=0.001`) or a name with spaces or accents is not a value Hydra's override grammar can take."""

import os
from pathlib import Path

from omegaconf import OmegaConf

from vae.core.errors import Refused, UserError
from vae.files.layout import RunFiles
from vae.files.schema import CONF_DIR
from vae.files.writing import check_writable
from vae.run.checks import check_choices
from vae.run.resume import check_groups
from vae.run.run_directory import RunDirectory, rank_zero

RUN_DIR_ENV = "VAE_LAB_RESUME_DIR"
RESUMED = [f"resume=${{oc.env:{RUN_DIR_ENV}}}", f"hydra.run.dir=${{oc.env:{RUN_DIR_ENV}}}"]


def value_of(argv: list[str], key: str) -> str | None:
    given = [arg.partition("=")[2] for arg in argv if arg.startswith(f"{key}=")]
    return given[-1].strip("'\"") if given else None


def check_output_folders(argv: list[str]) -> None:
    """A read-only output folder gets one line here; Hydra would meet it with a traceback."""
    multirun = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = value_of(argv, key)
    if folder is None or "${" in folder:
        folder = "outputs"  # conf/config.yaml's default, relative to where train.py is started
    check_writable(Path(folder), "the sweep directory" if multirun else "the run directory")
    # the refusal RunDirectory.open makes, at once rather than after the imports (DDP's other processes start
    # after rank zero has written .hydra/)
    if not multirun and folder != "outputs" and "overwrite=true" not in argv and rank_zero():
        RunDirectory(folder).refuse_if_used()


def check_saved_overrides(overrides: list[str], saved: Path) -> None:
    """A run directory received from someone else must not run code: its overrides.yaml may only set values."""
    for override in overrides:
        key, sep, _ = override.lstrip("+~").partition("=")
        if not sep:
            raise Refused(f"{saved} holds {override!r}, which is not an override key=value: it is damaged")
        if "_target_" in override or key.startswith("hydra"):
            raise Refused(
                f"{saved} holds the override {override!r}, which names code or Hydra's own settings and which "
                "train.py never writes there: resume refuses it; train a new run instead"
            )
    check_choices(overrides, CONF_DIR)


def prepare_command_line(argv: list[str]) -> list[str]:
    check_choices(argv[1:], CONF_DIR)
    resume = value_of(argv[1:], "resume")
    if resume is None or RESUMED[0] in argv:  # not a resume, or one prepared already (DDP's other processes)
        check_output_folders(argv[1:])
        return argv
    run_dir = Path(resume)
    saved = RunFiles(run_dir).overrides
    if not saved.is_file():
        raise UserError(f"resume={run_dir}: {saved} is missing, so {run_dir} is not a run directory of train.py")
    if "-m" in argv or "--multirun" in argv:
        raise UserError(
            "resume continues one run; resume each job of a sweep on its own: python train.py resume=<job directory>"
        )
    check_writable(run_dir, "the run directory")
    given = {arg.lstrip("+~").partition("=")[0] for arg in argv[1:]}
    try:
        own = [str(o) for o in OmegaConf.load(saved)]
    except Exception as error:
        raise Refused(f"resume={run_dir}: {saved} does not load ({type(error).__name__}); train a new run") from None
    kept = [o for o in own if o.lstrip("+~").partition("=")[0] not in given]
    check_saved_overrides(kept, saved)
    check_groups(run_dir, own, argv[1:])  # prior=standard on a VampPrior's run: one line, not Hydra's struct error
    os.environ[RUN_DIR_ENV] = str(run_dir.absolute())
    rest = [arg for arg in argv[1:] if not arg.startswith(("resume=", "hydra.run.dir="))]
    return [argv[0], *kept, *rest, *RESUMED]
