"""Errors a user can fix. Entry points print their message in one line and exit non-zero."""

import functools
import os
import sys


class UserError(Exception):
    """Bad input (a config value, a missing or corrupt data file): the message says what and how to fix it."""


class Interrupted(UserError):
    """Training stopped by a signal (SIGTERM from SLURM or `timeout`, SIGINT from Ctrl+C): the run is
    marked "interrupted", not failed, and can be resumed."""


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind an exception (Hydra's instantiate wraps the errors it meets)."""
    while error is not None:
        if isinstance(error, UserError):
            return error
        error = error.__cause__ or error.__context__
    return None


def show_traceback() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def exit_on_user_error(function):
    """Decorator for entry points: a UserError becomes `error: <message>` on stderr and exit status 1,
    without a traceback (set HYDRA_FULL_ERROR=1 to see it)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:
            found = find_user_error(error)
            if found is None or show_traceback():
                raise
            print(f"error: {found}", file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapper
