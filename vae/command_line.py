"""train.py's command line before Hydra reads it: group choices checked with a short message, and
`resume=<run directory>` expanded into that run's own overrides, then the command line's, in the same
run directory."""

from pathlib import Path

from omegaconf import OmegaConf

from vae.config import CONF_DIR, check_choices
from vae.errors import UserError


def prepare_command_line(argv: list[str]) -> list[str]:
    check_choices(argv[1:], CONF_DIR)
    resume = [arg.partition("=")[2] for arg in argv[1:] if arg.startswith("resume=")]
    if not resume:
        return argv
    run_dir = Path(resume[-1])
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise UserError(f"resume={run_dir}: {saved} is missing, so {run_dir} is not a run directory of train.py")
    if "-m" in argv or "--multirun" in argv:
        raise UserError(
            "resume continues one run; resume each job of a sweep on its own: python train.py resume=<job directory>"
        )
    given = {arg.lstrip("+~").partition("=")[0] for arg in argv[1:]}
    kept = [o for o in OmegaConf.load(saved) if o.lstrip("+~").partition("=")[0] not in given]
    return [argv[0], *kept, *argv[1:], f"hydra.run.dir={run_dir}"]
