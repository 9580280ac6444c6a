"""train.log while a run directory is being decided on: its lines are held back until the directory is taken, so
that a refused command (a resume that does not fit, a sweep job into a used directory) adds no line to the
train.log of the run it refused. Hydra's file handler opens the file only at its first line (conf/config.yaml,
`delay: true`)."""

import contextlib
import logging
from logging.handlers import MemoryHandler
from pathlib import Path

from vae.core.errors import Refused, find_user_error

UNLIMITED = 1 << 30  # records held: the lines before a run starts are few


def file_handlers(folder: Path) -> list[logging.FileHandler]:
    """The root logger's file handlers that write into `folder` (Hydra's <run dir>/train.log)."""
    folder = Path(folder).absolute()
    return [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder
    ]


@contextlib.contextmanager
def held_log(folder: Path):
    """Within the block, the lines for `folder`'s log are held in memory. They are written when the block ends,
    or dropped, with the file handler, when it ends in a refusal."""
    root = logging.getLogger()
    held = []
    for handler in file_handlers(folder):
        memory = MemoryHandler(UNLIMITED, flushLevel=logging.CRITICAL + 1, target=handler, flushOnClose=False)
        memory.setLevel(handler.level)
        root.removeHandler(handler)
        root.addHandler(memory)
        held.append((memory, handler))
    refused = False
    try:
        yield
    except BaseException as error:
        refused = isinstance(find_user_error(error), Refused)
        raise
    finally:
        for memory, handler in held:
            root.removeHandler(memory)
            if refused:  # the directory is as it was: not a line of this command goes into it
                memory.buffer.clear()
                handler.close()
            else:
                memory.flush()
                root.addHandler(handler)
            memory.close()
