"""Writing files so that nothing is lost: whole files (`write_atomically`: written to `<name>.tmp`, then renamed, so
that a kill or a full disk leaves the previous version, never half a file), and a clear message before a command
meets a folder it cannot write."""

import os
import time
from pathlib import Path

from vae.core.errors import Refused

REPLACE_TRIES = 20  # os.replace over a file that a reader holds open fails on Windows: retried for about 2 s
NEW_FOLDER = "choose another folder (hydra.run.dir=<folder>, or hydra.sweep.dir=<folder> for a sweep)"


def write_atomically(path: Path, text: str) -> Path:
    """Writes `<path>.tmp` and renames it over `path`: a kill or a full disk leaves the old file whole."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def replace(tmp: Path, path: Path) -> None:
    """os.replace, retried while another process holds `path` open (Windows refuses to replace such a file; a
    reader, a viewer or an antivirus scan holds it for moments)."""
    for attempt in range(REPLACE_TRIES):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if os.name != "nt" or attempt == REPLACE_TRIES - 1:
                raise
            time.sleep(0.1)


def check_writable(folder: Path, what: str, advice: str = NEW_FOLDER) -> None:
    """A clear message before Hydra, training or a tool meets a folder it cannot write (read-only, not yours)."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(
            f"cannot write {what} {folder}: {existing} is not a writable folder (read-only, or not yours); {advice}"
        )


def make_folder(folder: Path, what: str, advice: str = NEW_FOLDER) -> Path:
    """`folder`, made if missing (its parents too), or one line saying why it cannot be (read-only, a file or a
    broken link on the way, a name too long) and what to do."""
    folder = Path(folder)
    check_writable(folder, what, advice)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise Refused(f"cannot make {what} {folder.absolute()} ({error.strerror or error}); {advice}") from None
    return folder
