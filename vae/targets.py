"""Instantiate a config node whose `_target_`s may come from a file someone else wrote (a run's saved
config, a checkpoint's hyperparameters): only this project's classes, torch's optimisers and
networks, and Lightning's own classes are built; anything else is refused before it is imported."""

from omegaconf import DictConfig, ListConfig, OmegaConf

from vae.errors import UserError

ALLOWED = ("vae.", "torch.optim.", "torch.nn.", "lightning.pytorch.")


def targets(node) -> list[str]:
    """Every `_target_` in a config node (dicts and lists, nested)."""
    if isinstance(node, (dict, DictConfig)):
        found = [str(node["_target_"])] if "_target_" in node else []
        return found + [t for key, value in node.items() if key != "_target_" for t in targets(value)]
    if isinstance(node, (list, tuple, ListConfig)):
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


def instantiate(node, where: str = "the config", **kwargs):
    """hydra.utils.instantiate after `check_targets`; plain dicts are accepted as well as configs."""
    from hydra.utils import instantiate as hydra_instantiate

    check_targets(node, where)
    return hydra_instantiate(OmegaConf.create(node) if isinstance(node, dict) else node, **kwargs)
