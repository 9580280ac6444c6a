"""The config's schema: every key of conf/ (or pattern of keys) and every config group, in one table, with what each
means to the checks before a run (`validate`), to a resume (`resumable`), to the tools, to check_used and to the
report's settings. A key added to conf/ is one line here; tests/files/test_schema.py fails until it is."""

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass
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


def one_of(*choices):
    return lambda value: value in choices


def below(bound: int):
    return lambda value: non_negative_int(value) and value < bound


# How the report's settings table lists a key, or a group's choice (vae/results/report_settings.py).
EVERY_RUN = "every run"
WHERE_READ = "where read"  # where the run's config reads it through ${...} (beta: not an auto-encoder's)
WITH_GROUP = "with its group"  # beside its config group's choice, among the group's own values
NEVER = "never"  # not a setting: where the data lies, or what the group's choice says already


@dataclass(frozen=True)
class Key:
    """A flat key of the composed config (`data.root`), or a pattern of keys (`trainer.*`, as fnmatch reads it)."""

    rule: Callable[[object], bool] | None = None  # the values it takes (None: any; what its node builds checks them)
    says: str = ""  # the rule in words: "<key> must be <says>"
    resume: bool = False  # a resume may change it (a `_target_` only by an entry of its own, or its group's choice)
    setting: str = WITH_GROUP  # how the report lists it
    code: bool = False  # train.py reads it (its block) itself, not through ${...}: check_used leaves it alone
    tool: bool = False  # python -m vae.plots or vae.evaluate may set it (plots.<key>, eval.<key>)


@dataclass(frozen=True)
class Group:
    """A config group, conf/<group>/<option>.yaml, chosen in conf/config.yaml's defaults or with `<group>=<option>`."""

    resume: bool = False  # a resume may choose another option
    setting: str = NEVER  # how the report lists the choice (then the group's own values)
    part: bool = False  # a part of the model: the model's node reads it through ${<group>...}


POSITIVE, TRUE_OR_FALSE = "a positive integer", "true or false"

KEYS: dict[str, Key] = {
    # conf/config.yaml: the knobs a sweep turns (the groups read them through ${...}), then what train.py reads
    "latent_dim": Key(positive_int, "a positive integer (the size of z)", setting=EVERY_RUN),
    "width": Key(positive_int, "a positive integer (hidden units per layer)", setting=EVERY_RUN),
    "depth": Key(positive_int, "a positive integer (hidden layers)", setting=EVERY_RUN),
    "lr": Key(
        positive_number, "a positive number (the learning rate of the optimiser)", resume=True, setting=EVERY_RUN
    ),
    "batch_size": Key(positive_int, "a positive integer (images per step)", setting=EVERY_RUN),
    "epochs": Key(positive_int, "a positive integer (passes over the training split)", resume=True, setting=EVERY_RUN),
    "seed": Key(below(2**32), "an integer from 0 to 4294967295 (2^32 - 1)", setting=EVERY_RUN, code=True),
    "beta": Key(non_negative_number, "a non-negative number (the weight of the KL term)", setting=WHERE_READ),
    "gradient_clip_val": Key(
        optional(positive_number), "a positive number, or null for no clipping", resume=True, setting=EVERY_RUN
    ),
    "resume": Key(code=True),
    "overwrite": Key(boolean, TRUE_OR_FALSE, code=True),
    "threads": Key(
        optional(positive_int),
        "a positive integer (torch CPU threads), or null for torch's default",
        resume=True,
        code=True,
    ),
    "plots.at_end": Key(boolean, TRUE_OR_FALSE, resume=True, code=True),
    "plots.every_n_epochs": Key(
        non_negative_int, "a non-negative integer (0: never during training)", resume=True, code=True
    ),
    "plots.logged_dpi": Key(positive_int, "a positive integer (dots per inch)", resume=True, code=True),
    "plots.pdf": Key(boolean, TRUE_OR_FALSE, resume=True, code=True),
    "plots.n_samples": Key(positive_int, POSITIVE, resume=True, code=True, tool=True),
    "plots.n_reconstructions": Key(positive_int, POSITIVE, resume=True, code=True, tool=True),
    "plots.grid_size": Key(positive_int, POSITIVE, resume=True, code=True, tool=True),
    "plots.n_interpolations": Key(positive_int, POSITIVE, resume=True, code=True, tool=True),
    "plots.interpolation_steps": Key(
        lambda value: positive_int(value) and value >= 2,
        "an integer of at least 2 (both ends)",
        resume=True,
        code=True,
        tool=True,
    ),
    "plots.*": Key(resume=True, code=True),  # and a figure setting of another version's run
    "kl_warmup_epochs": Key(
        non_negative_int, "a non-negative integer (epochs of KL warm-up; 0: off)", setting=WHERE_READ
    ),
    "iwae.k": Key(positive_int, "a positive integer (samples of z per image in the IWAE's bound)", setting=WHERE_READ),
    "eval.enabled": Key(boolean, TRUE_OR_FALSE, resume=True, code=True),
    "eval.split": Key(one_of("test", "dev"), "test or dev", resume=True, code=True, tool=True),
    "eval.iw_samples": Key(
        positive_int, "a positive integer (importance samples K per image)", resume=True, code=True, tool=True
    ),
    "eval.chunk_size": Key(
        positive_int, "a positive integer ((image, sample) pairs per decoder pass)", resume=True, code=True, tool=True
    ),
    "eval.generation.enabled": Key(boolean, TRUE_OR_FALSE, resume=True, code=True),
    "eval.generation.n": Key(positive_int, "a positive integer (images drawn from the model)", resume=True, code=True),
    "eval.*": Key(resume=True, code=True),  # and an evaluation setting of another version's run
    "paths.output_dir": Key(code=True),
    # conf/data/: the data module; where the data lies may change, what it is may not
    "data._target_": Key(),
    "data.dataset": Key(setting=NEVER),  # the choice of data says it
    "data.root": Key(resume=True, setting=NEVER),
    "data.download": Key(boolean, TRUE_OR_FALSE, resume=True, setting=NEVER),
    "data.dev_size": Key(positive_int, "a positive integer, smaller than the training set"),
    "data.split_seed": Key(below(2**63), "a non-negative integer below 2^63"),
    "data.batch_size": Key(),
    "data.eval_batch_size": Key(positive_int, POSITIVE, resume=True, setting=NEVER),
    "data.seed": Key(),
    "data.binarize": Key(),
    # conf/model/: the LightningModule, its parts copied in from their groups (${arch.encoder}, ${prior}, ...)
    "model._target_": Key(),
    "model._recursive_": Key(),
    "model.encoder.*": Key(),
    "model.decoder.*": Key(),
    "model.likelihood.*": Key(),
    "model.optimizer.*": Key(resume=True),  # the optimizer's settings, as optimizer.*
    "model.prior.*": Key(),
    "model.latent_dim": Key(),
    "model.beta": Key(),
    "model.kl_warmup_epochs": Key(),
    "model.k": Key(),
    # conf/prior/, conf/arch/, conf/likelihood/, conf/optimizer/: the model's parts
    "prior._target_": Key(),
    "prior.components": Key(positive_int, "a positive integer (the VampPrior's pseudo-inputs)"),
    "prior.init": Key(one_of("data", "random"), "data or random"),
    "arch.channels": Key(positive_int, "a positive integer (feature maps of the first convolution)"),
    "arch.encoder._target_": Key(),
    "arch.encoder.width": Key(),
    "arch.encoder.depth": Key(),
    "arch.encoder.channels": Key(),
    "arch.decoder._target_": Key(),
    "arch.decoder.latent_dim": Key(),
    "arch.decoder.width": Key(),
    "arch.decoder.depth": Key(),
    "arch.decoder.channels": Key(),
    "likelihood._target_": Key(),
    "likelihood.sigma": Key(positive_number, "a positive number (the pixel standard deviation)"),
    "likelihood.learn_sigma": Key(boolean, TRUE_OR_FALSE),
    "likelihood.min_sigma": Key(),
    "likelihood.per_pixel": Key(boolean, TRUE_OR_FALSE),
    "optimizer._target_": Key(),
    "optimizer._partial_": Key(resume=True),
    "optimizer.lr": Key(resume=True, setting=NEVER),  # ${lr}: a knob, listed as lr
    "optimizer.weight_decay": Key(resume=True),
    "optimizer.*": Key(resume=True),  # and any other setting of the optimiser (+optimizer.betas=...)
    # conf/trainer/, conf/callbacks/, conf/logger/: Lightning's objects, by pattern but for what a resume may change
    "trainer.max_epochs": Key(positive_int, "a positive integer (set it with epochs=N)", resume=True),
    "trainer.gradient_clip_val": Key(resume=True),
    "trainer.enable_progress_bar": Key(resume=True),
    "trainer.log_every_n_steps": Key(resume=True),
    "trainer.default_root_dir": Key(resume=True),  # changed by vae-lab since checkpoint format 2: older runs resume
    "trainer.*": Key(),
    "callbacks.checkpoint._target_": Key(resume=True, code=True),  # changed by vae-lab since checkpoint format 2
    "callbacks.figures._target_": Key(resume=True, code=True),  # changed by vae-lab since checkpoint format 2
    "callbacks.figures.plots.*": Key(resume=True, code=True),  # ${plots}
    "callbacks.*": Key(code=True),
    "logger.*": Key(resume=True),  # where the numbers go, `_target_`s included: the group's choice may change
}

GROUPS: dict[str, Group] = {  # in the order of conf/config.yaml's defaults
    "data": Group(setting=EVERY_RUN),
    "model": Group(setting=EVERY_RUN),
    "prior": Group(setting=WHERE_READ, part=True),
    "arch": Group(setting=EVERY_RUN, part=True),
    "likelihood": Group(setting=EVERY_RUN, part=True),
    "optimizer": Group(setting=EVERY_RUN, part=True),
    "trainer": Group(),
    "logger": Group(resume=True),  # a run trained before conf/logger/ was a group has logger._target_ and the like
    "callbacks": Group(),
    "sweep": Group(),  # presets of a sweep: values a resume would otherwise take in silence (epochs=10)
    "hparams_search": Group(),
    "variant": Group(setting=EVERY_RUN),  # a change of the lab's model (conf/variant/), swept by sweep=generation
}


def tool_settings(block: str) -> tuple[str, ...]:
    return tuple(key.partition(".")[2] for key, entry in KEYS.items() if entry.tool and key.startswith(f"{block}."))


PLOT_SETTINGS = tool_settings("plots")  # the keys of `plots` that python -m vae.plots may set
EVAL_SETTINGS = tool_settings("eval")  # the keys of `eval` that python -m vae.evaluate may set


def entry(key: str) -> Key | None:
    """The schema's entry of a flat key: its own, else that of the longest pattern it matches (None: unknown)."""
    if key in KEYS:
        return KEYS[key]
    patterns = [pattern for pattern in KEYS if "*" in pattern and fnmatch.fnmatchcase(key, pattern)]
    return KEYS[max(patterns, key=len)] if patterns else None


def resumable(key: str) -> bool:
    """Whether a resume may change `key`: how long and how fast it trains on, where the data lies, what it draws and
    measures at the end, where the numbers go. A `_target_` names a class: only by an entry of its own, or where the
    group's choice may change (the loggers)."""
    group = GROUPS.get(key.partition(".")[0])
    if group is not None and group.resume:
        return True
    found = KEYS.get(key) if key.endswith("_target_") else entry(key)
    return found is not None and found.resume


def default_choices(conf_dir: Path = CONF_DIR) -> dict:
    """The choices conf/config.yaml's defaults make: {"data": "mnist", ..., "sweep": None}."""
    return {
        key: value
        for item in OmegaConf.load(conf_dir / "config.yaml").defaults
        if OmegaConf.is_dict(item)
        for key, value in item.items()
    }


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
    for key, found in KEYS.items():
        if found.rule is None:
            continue
        value = OmegaConf.select(cfg, key, default="<absent>")
        if isinstance(value, str) and value == "<absent>":
            continue
        if not found.rule(value):
            raise UserError(f"{key}={value!r} is not valid: {key} must be {found.says}")
