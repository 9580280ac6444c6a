"""One process at a time in a run directory: an exclusive lock on the directory itself, released when the process
ends, however it ends (flock)."""

import os
from pathlib import Path

from vae.core.errors import Refused


class DirectoryLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, action: str = "trains into") -> None:
        """Refused, at once, while another process holds the directory (`action` says what it does there)."""
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
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
