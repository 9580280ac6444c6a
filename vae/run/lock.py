"""Locks that work on every system: one process at a time in a run directory (refused at once while another holds
it), and one process at a time creating a shared MLflow store.

Where the system has flock (Linux, macOS) the run directory itself is locked: no file is made, and the lock goes
with the process however it ends. Elsewhere (Windows) filelock locks `<run dir>/.lock`, a file that exists only while
the lock is held, so a refused command leaves the directory as it was."""

import contextlib
import os
import warnings
from pathlib import Path

from vae.core.errors import Refused

LOCK_FILE = ".lock"  # in the run directory, while it is locked, where there is no flock


def flock():
    """fcntl where the system has it, else None (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def portable_lock(path: Path, timeout: float):
    """filelock's lock of `path` (Windows' own locking; a lock file elsewhere), which removes the file on release."""
    with warnings.catch_warnings():  # filelock warns that a system without fcntl gets its soft lock
        warnings.simplefilter("ignore")
        import filelock

        return filelock.FileLock(str(path), timeout=timeout)


class DirectoryLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.lock = None  # filelock's, where there is no flock

    def acquire(self, action: str = "trains into") -> None:
        """Refused, at once, while another process holds the directory (`action` says what it does there)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.try_lock():
            raise Refused(
                f"{self.path} is in use: another process {action} it; wait until it ends, "
                "or give this run a directory of its own (leave out hydra.run.dir, or give another)"
            )

    def try_lock(self) -> bool:
        fcntl = flock()
        if fcntl is None:
            from filelock import Timeout

            lock = portable_lock(self.path / LOCK_FILE, timeout=0)
            try:
                lock.acquire()
            except Timeout:
                return False
            self.lock = lock
            return True
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock on `path` (made if missing) for the block, waiting for another process to release it."""
    fcntl = flock()
    if fcntl is None:
        with portable_lock(path, timeout=-1):
            yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
