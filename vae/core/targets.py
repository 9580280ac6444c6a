"""What a config may build. A run's saved config and a checkpoint's hyperparameters are files someone else may
have written: only this project's classes, torch's optimisers and networks, and Lightning's own classes are built
from them; anything else is refused before it is imported.

    build({"_target_": "vae.maths.networks.MLPEncoder", "width": 512, "depth": 1}, "where it came from")

`build` takes plain dicts (a config node made plain by its owner), so the maths layer builds its parts without
Hydra. It is the one place that knows where classes lived before the package took its layers (`MOVED`): run
directories and checkpoints written then name `vae.models.VAE`, and still load, resume and redraw.
"""

import functools
import importlib
from collections.abc import Mapping, Sequence

from vae.core.errors import UserError

ALLOWED = ("vae.", "torch.optim.", "torch.nn.", "lightning.pytorch.")

# module of a `_target_` written before the layered package (bcfd08c and earlier) -> where it lives now
MOVED = {
    "vae.models": "vae.maths.models",
    "vae.networks": "vae.maths.networks",
    "vae.likelihoods": "vae.maths.likelihoods",
    "vae.priors": "vae.maths.priors",
    "vae.data": "vae.data.mnist",
    "vae.checkpoints": "vae.run.checkpoints",
    "vae.callbacks": "vae.run.callbacks",
    "vae.loggers": "vae.run.loggers",
    "vae.compare": "vae.run.sweep_end",
}


def current(target: str) -> str:
    """Where a `_target_` lives now: `vae.models.VAE` -> `vae.maths.models.VAE`; others as given."""
    module, dot, name = str(target).rpartition(".")
    return f"{MOVED[module]}.{name}" if module in MOVED else str(target)


def current_targets(node):
    """A copy of a plain config (dicts and lists) with every `_target_` where it lives now."""
    if isinstance(node, Mapping):
        return {key: current(value) if key == "_target_" else current_targets(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [current_targets(value) for value in node]
    return node


def targets(node) -> list[str]:
    """Every `_target_` in a config node (mappings and lists, nested)."""
    if isinstance(node, Mapping):
        found = [str(node["_target_"])] if "_target_" in node else []
        return found + [t for key, value in node.items() if key != "_target_" for t in targets(value)]
    if isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
        return [t for value in node for t in targets(value)]
    return []


def check_targets(node, where: str) -> None:
    for target in targets(node):
        if not target.startswith(ALLOWED):
            raise UserError(
                f"{where} names `_target_: {target}`, which is not a class of vae-lab, torch.optim, "
                f"torch.nn or Lightning; refusing to build it (a config from elsewhere must not run "
                "code): use a run directory written by train.py"
            )


def locate(target: str, where: str):
    module, _, name = current(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UserError(
            f"{where} names `_target_: {target}`, which does not exist in this version of vae-lab"
        ) from None


def build(node: Mapping, where: str = "the config", **kwargs):
    """The object a flat `_target_` node describes, called with its other keys, `kwargs` replacing them
    (`_partial_: true`: a functools.partial of it, as Hydra makes). The node's values are passed as they are:
    nested `_target_` nodes are built by the object itself (the models build their parts)."""
    check_targets(node, where)
    settings = {key: value for key, value in node.items() if key not in ("_target_", "_partial_", "_recursive_")}
    make = locate(str(node["_target_"]), where)
    settings.update(kwargs)  # as Hydra's: keyword arguments replace the node's values
    return functools.partial(make, **settings) if node.get("_partial_", False) else make(**settings)
