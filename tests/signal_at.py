"""Runs a command of the project that sends itself a signal at a chosen point of its work, not after a sleep:

    python tests/signal_at.py MODULE:FUNCTION CALLS SIGNAL train.py ARGS...
    python tests/signal_at.py MODULE:FUNCTION CALLS SIGNAL -m vae.evaluate ARGS...

The signal goes off when FUNCTION (a module's function, or a class's method as Class.method) is called for the
CALLS-th time, from inside it: e.g. vae.maths.epoch_means:EpochMeans.training_step 9 9 kills the run at its ninth
training step, whatever the machine's speed. Nothing of the command's config changes, so a resume reads it back."""

import functools
import importlib
import os
import runpy
import sys


def send_at(target: str, calls: int, signal_number: int) -> None:
    module, _, path = target.partition(":")
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original, seen = getattr(owner, name), [0]

    @functools.wraps(original)
    def counted(*args, **kwargs):
        seen[0] += 1
        if seen[0] == calls:
            os.kill(os.getpid(), signal_number)
        return original(*args, **kwargs)

    setattr(owner, name, counted)


if __name__ == "__main__":
    target, calls, signal_number, *command = sys.argv[1:]
    send_at(target, int(calls), int(signal_number))
    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        runpy.run_path(command[0], run_name="__main__")
