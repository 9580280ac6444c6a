"""Errors a user can fix. Entry points print their message in one line and exit non-zero."""

import contextlib
import errno
import functools
import os
import signal
import sys
import threading


class UserError(Exception):
    """Bad input (a config value, a missing or corrupt data file): the message says what and how to fix it."""


class Refused(UserError):
    """A command refused before it changed anything (a used run directory, a resume that does not fit its
    checkpoint): the run directory is as it was, so nothing is recorded in it."""


class Damaged(UserError):
    """A file that does not read as what train.py writes there (cut short, not JSON, not a checkpoint)."""


class Interrupted(UserError):
    """Training stopped by a signal (SIGTERM from SLURM or `timeout`, SIGINT from Ctrl+C): the run is
    marked "interrupted", not failed, and can be resumed."""


# Failures of the machine, not of the code: a full disk, a read-only folder. What to do about each.
ENVIRONMENT = {
    errno.ENOSPC: "the disk is full: free some space (df -h shows it), then run again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run again",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f): raise the limit, then run again",
    errno.EACCES: "permission denied: choose a folder you can write, or change its permissions",
    errno.EPERM: "permission denied: choose a folder you can write, or change its permissions",
    errno.EROFS: "the file system is read-only: choose a folder on a writable one",
}


def environment_error(error: OSError) -> UserError:
    where = f"{error.filename}: " if error.filename else ""
    return UserError(f"{where}{ENVIRONMENT[error.errno]} ({error.strerror})")


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind an exception (Hydra's instantiate wraps the errors it meets), or one made from an
    OSError of the machine (a full disk, a read-only folder)."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    for found in chain:
        if isinstance(found, UserError):
            return found
    for found in chain:
        if isinstance(found, OSError) and found.errno in ENVIRONMENT:
            return environment_error(found)
    return None


def in_brief(error: BaseException) -> str:
    """`Type: the first line of its message`, for a message that must stay one line."""
    text = str(error)
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def signal_name(stop: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(stop, Stopped) else "SIGINT (Ctrl+C)"


def show_traceback() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the code is, as Ctrl+C raises KeyboardInterrupt (Lightning has its own handler while
    it fits and tests, vae/run/training.py)."""


def stop_on_sigterm(signum, frame):
    raise Stopped()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block SIGTERM raises Stopped where the code is, as Ctrl+C raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_on_user_error(function=None, *, sigterm: bool = True):
    """Decorator for entry points: a UserError becomes `error: <message>` on stderr and exit status 1,
    without a traceback (set HYDRA_FULL_ERROR=1 to see it); Ctrl+C, and SIGTERM with `sigterm` (not while Lightning
    fits: it handles SIGTERM itself), become one line too, exit status 1."""
    if function is None:
        return functools.partial(exit_on_user_error, sigterm=sigterm)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_as_interrupt() if sigterm else contextlib.nullcontext():
                return function(*args, **kwargs)
        except KeyboardInterrupt as stop:
            if show_traceback():
                raise
            print(
                f"error: stopped by {signal_name(stop)} before the end; the files written before are intact",
                file=sys.stderr,
            )
            sys.exit(1)
        except Exception as error:
            found = find_user_error(error)
            if found is None or show_traceback():
                raise
            print(f"error: {found}", file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapper
