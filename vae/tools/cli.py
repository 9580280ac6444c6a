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
