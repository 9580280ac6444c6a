"""Checks of the composed config, before any work starts: each bad value gets one message naming
the key, the value and the rule."""

import fnmatch
import math
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the Hydra configs, beside the package


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


# What a resume may change: how long and how fast it trains on, where the data lies, and what it draws and
# measures at the end. Everything else (the model, the objective, the data, the seed) is what the checkpoint
# holds or continues.
RESUMABLE = (
    "epochs",
    "trainer.max_epochs",
    "lr",
    "optimizer.*",
    "model.optimizer.*",
    "gradient_clip_val",
    "trainer.gradient_clip_val",
    "threads",
    "plots.*",
    "callbacks.figures.plots.*",
    "eval.*",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "data.root",
    "data.download",
    "data.eval_batch_size",
)
# Where the numbers go, not what they are: a resume may choose other loggers, their `_target_`s included (a run
# trained before conf/logger/ became a mapping of named loggers has logger._target_ and the like).
LOGGERS = ("logger", "logger.*")
# Keys that vae-lab itself changed since checkpoint format 2, so that runs written before still resume.
UPGRADED = ("callbacks.checkpoint._target_", "trainer.default_root_dir", "callbacks.figures._target_")


def resumable(key: str) -> bool:
    if key in UPGRADED or any(fnmatch.fnmatchcase(key, pattern) for pattern in LOGGERS):
        return True
    return not key.endswith("_target_") and any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE)
