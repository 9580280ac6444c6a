"""Checks of the composed config, before any work starts: each bad value gets one message naming
the key, the value and the rule."""

import math
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae.errors import Refused, UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # the Hydra configs, beside the package


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def positive_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def non_negative_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def boolean(value) -> bool:
    return isinstance(value, bool)


def optional(rule):
    return lambda value: value is None or rule(value)


RULES = {  # key: (rule, what the rule says)
    "latent_dim": (positive_int, "a positive integer (the size of z)"),
    "width": (positive_int, "a positive integer (hidden units per layer)"),
    "depth": (positive_int, "a positive integer (hidden layers)"),
    "batch_size": (positive_int, "a positive integer (images per step)"),
    "epochs": (positive_int, "a positive integer (passes over the training split)"),
    "seed": (lambda value: non_negative_int(value) and value < 2**32, "an integer from 0 to 4294967295 (2^32 - 1)"),
    "threads": (optional(positive_int), "a positive integer (torch CPU threads), or null for torch's default"),
    "trainer.max_epochs": (positive_int, "a positive integer (set it with epochs=N)"),
    "overwrite": (boolean, "true or false"),
    "lr": (positive_number, "a positive number (the learning rate of the optimiser)"),
    "beta": (non_negative_number, "a non-negative number (the weight of the KL term)"),
    "gradient_clip_val": (optional(positive_number), "a positive number, or null for no clipping"),
    "likelihood.sigma": (positive_number, "a positive number (the pixel standard deviation)"),
    "data.dev_size": (positive_int, "a positive integer, smaller than the training set"),
    "data.eval_batch_size": (positive_int, "a positive integer"),
    "data.split_seed": (lambda value: non_negative_int(value) and value < 2**63, "a non-negative integer below 2^63"),
    "kl_warmup_epochs": (non_negative_int, "a non-negative integer (epochs of KL warm-up; 0: off)"),
    "iwae.k": (positive_int, "a positive integer (samples of z per image in the IWAE's bound)"),
    "prior.components": (positive_int, "a positive integer (the VampPrior's pseudo-inputs)"),
    "prior.init": (lambda value: value in ("data", "random"), "data or random"),
    "arch.channels": (positive_int, "a positive integer (feature maps of the first convolution)"),
    "eval.iw_samples": (positive_int, "a positive integer (importance samples K per image)"),
    "eval.chunk_size": (positive_int, "a positive integer ((image, sample) pairs per decoder pass)"),
    "eval.split": (lambda value: value in ("test", "dev"), "test or dev"),
    "plots.at_end": (boolean, "true or false"),
    "plots.pdf": (boolean, "true or false"),
    "eval.enabled": (boolean, "true or false"),
    "data.download": (boolean, "true or false"),
    "likelihood.per_pixel": (boolean, "true or false"),
    "likelihood.learn_sigma": (boolean, "true or false"),
    "plots.every_n_epochs": (non_negative_int, "a non-negative integer (0: never during training)"),
    "plots.n_samples": (positive_int, "a positive integer"),
    "plots.n_reconstructions": (positive_int, "a positive integer"),
    "plots.grid_size": (positive_int, "a positive integer"),
    "plots.n_interpolations": (positive_int, "a positive integer"),
    "plots.interpolation_steps": (
        lambda value: positive_int(value) and value >= 2,
        "an integer of at least 2 (both ends)",
    ),
}


PLOT_SETTINGS = ("n_samples", "n_reconstructions", "grid_size", "n_interpolations", "interpolation_steps")
EVAL_SETTINGS = ("split", "iw_samples", "chunk_size")  # the keys of `eval` that python -m vae.evaluate may set


def flatten(cfg: DictConfig) -> dict:
    """The resolved config as {"model.beta": 1.0, ...}, less paths.*: the run's hyperparameters (TensorBoard's, and
    what a resume compares)."""
    flat = {}

    def visit(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                visit(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)

    visit(OmegaConf.to_container(cfg, resolve=True), "")
    return {key: value for key, value in flat.items() if not key.startswith("paths.")}


def validate(cfg: DictConfig | dict) -> None:
    """Raise a UserError for the first value that breaks its rule (keys absent from cfg are skipped)."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    for key, (rule, text) in RULES.items():
        value = OmegaConf.select(cfg, key, default="<absent>")
        if isinstance(value, str) and value == "<absent>":
            continue
        if not rule(value):
            raise UserError(f"{key}={value!r} is not valid: {key} must be {text}")


def check_choices(overrides: list[str], conf_dir: Path) -> None:
    """`model=foo` and the like: name the options of the group before Hydra's longer message."""
    groups = {p.name for p in conf_dir.iterdir() if p.is_dir()}
    defaults = {  # the choices conf/config.yaml makes: Hydra 1.3 refuses null for a group that has one
        key: value
        for item in OmegaConf.load(conf_dir / "config.yaml").defaults
        if OmegaConf.is_dict(item)
        for key, value in item.items()
    }
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
READ_BY_CODE = {"seed", "threads", "resume", "overwrite", "eval", "plots", "paths", "callbacks"}
MODEL_PARTS = {"arch", "likelihood", "optimizer", "prior"}  # config groups that models read through ${...}


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
