"""Checks of a command before any work starts, beyond each value's rule (vae/files/schema.py): group choices that
exist, optional packages that are installed, keys that something reads (which: the schema's `code` and `part`)."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import Refused, UserError
from vae.files.schema import GROUPS, KEYS, default_choices


def check_choices(overrides: list[str], conf_dir: Path) -> None:
    """`model=foo` and the like: name the options of the group before Hydra's longer message."""
    groups = {p.name for p in conf_dir.iterdir() if p.is_dir()}
    defaults = default_choices(conf_dir)  # Hydra 1.3 refuses null for a group that has one
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in groups or "(" in value:
            continue
        options = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        for choice in value.replace("[", ",").replace("]", ",").split(","):  # a sweep a,b; several at once [a,b]
            choice = choice.strip()
            if choice == "null" and defaults.get(key) is not None:
                raise UserError(
                    f"{key}=null is refused by Hydra 1.3 for a group with a default ({key}: {defaults[key]}): "
                    f"leave the group out with {key}=[] or ~{key}"
                )
            if choice and choice != "null" and choice not in options:
                raise UserError(f"{key}={choice} is not an option of `{key}`; choose one of: {', '.join(options)}")


# Loggers whose package is an optional extra of pyproject.toml: the class that ends a `_target_` -> (its package,
# the command that installs it).
EXTRAS = {"MLFlowLogger": ("mlflow", "uv sync --extra mlflow")}


def check_packages(cfg: DictConfig) -> None:
    """A logger whose package is not installed is refused in one line saying how to install it, before the slow
    imports and before the run directory is touched (Lightning would fail later, with a traceback)."""
    import importlib.util

    for name, node in (cfg.get("logger") or {}).items():
        target = str(node.get("_target_", "")) if OmegaConf.is_dict(node) else ""
        package, install = EXTRAS.get(target.rpartition(".")[2], (None, None))
        if package and importlib.util.find_spec(package) is None:
            raise Refused(
                f"logger.{name} needs the Python package {package}, which is not installed: install the optional "
                f"extra with `{install}`, or choose loggers without it (logger=tensorboard, logger=csv)"
            )


# top-level keys and blocks that train.py reads itself, not through ${...}
READ_BY_CODE = {key.partition(".")[0] for key, entry in KEYS.items() if entry.code}
MODEL_PARTS = {name for name, group in GROUPS.items() if group.part}  # config groups that models read through ${...}


def check_used(cfg: DictConfig, overrides: list[str], choices: dict) -> None:
    """`model=ae beta=5`, `model=ae prior=vamp`, `model=vae iwae.k=50`: a key or group given on the command line
    that nothing in the composed config reads (through ${...}) would be ignored in silence; say so instead."""
    text = OmegaConf.to_yaml(cfg)  # unresolved: the ${...} references are visible
    for override in overrides:
        key, sep, value = override.lstrip("+").partition("=")
        block = key.partition(".")[0]
        if not sep or block in READ_BY_CODE or block not in cfg:
            continue
        node = cfg[block]
        if block in MODEL_PARTS:
            references = ("${" + block + "}", "${" + block + ".")
        elif not OmegaConf.is_config(node):
            references = ("${" + key + "}",)
        elif "." in key and not any(OmegaConf.is_config(value) or k == "_target_" for k, value in node.items()):
            # a block of knobs (iwae.k): read where its keys are
            references = ("${" + key + "}", "${" + block + "}")
        else:  # an object the config builds from its own node (data, trainer, ...), or the choice of one
            continue
        if not any(reference in text for reference in references):
            setting = ", ".join(f"{group}={choices[group]}" for group in ("model", "arch") if group in choices)
            raise UserError(f"{key}={value} has no effect with {setting}: nothing in this run reads {key}; drop it")


def check_accelerator(cfg: DictConfig) -> None:
    """`trainer.accelerator=gpu` on a machine without one is one line here, not Lightning's traceback later."""
    import torch

    wanted = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    present = {"gpu": cuda or mps, "cuda": cuda, "mps": mps}
    if not present.get(wanted, True):
        raise UserError(
            f"trainer.accelerator={wanted}: this machine has no such device (torch sees none); train on the CPU "
            "with trainer.accelerator=cpu, or leave it auto (a GPU where there is one)"
        )
