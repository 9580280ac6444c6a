"""What the command-line tools (python -m vae.plots, vae.evaluate, vae.compare, vae.report, vae.bench) share: one
argument style (argparse: a positional path, then --options), and one way to fail: `error: <what is wrong, how to fix
it>` on one line of stderr, exit status 1 (vae/core/errors.py), for a bad argument as for a bad run directory."""

import argparse

from vae.core.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are UserErrors, so they print as every other error of the project does."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} ({self.prog} --help lists the options)")


def parser(tool: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=f"python -m vae.{tool}", description=description)


def given(args: argparse.Namespace, keys) -> dict:
    """The options among `keys` that the command line set (the rest stay as the run's config has them)."""
    return {key: value for key in keys if (value := getattr(args, key)) is not None}


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", metavar="DEVICE", help="cpu, cuda, cuda:1 or mps: where the model runs (default: a GPU if any)"
    )


def device(name: str | None):
    """The torch device to run on: `name`, checked against this machine, or the best there is."""
    import torch

    if name is None:
        return torch.device(
            "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        )
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name} is not a device torch knows: give cpu, cuda, cuda:<n> or mps") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (chosen.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(chosen.type, False):
        raise UserError(f"--device {name}: this machine has no such device (torch sees none); use --device cpu")
    return chosen
