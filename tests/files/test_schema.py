"""The config's schema (vae/files/schema.py) against conf/: every key of every option of every config group is known
to it, and every key it names is in some config; what derives from it (the resume policy, check_used's tables, the
tools' and the report's settings) reads as it did before the one table."""

import fnmatch
import re

import pytest
from omegaconf import OmegaConf

from helpers import CONF, compose_config
from vae.files import schema
from vae.files.schema import GROUPS, KEYS, default_choices, resumable, validate

OPTIONS = [(group, option.stem) for group in GROUPS for option in sorted((CONF / group).glob("*.yaml"))]
# Lightning's objects and the loggers: their own settings are known by pattern (trainer.*); the rest by name.
BY_PATTERN = ("trainer.", "logger.", "callbacks.")
COPY = re.compile(r"^\$\{([\w.]+)\}$")  # a node that is another node: model.encoder: ${arch.encoder}


def leaves(resolved, unresolved, prefix="") -> dict[str, str | None]:
    """The flat keys of a config (paths.* included), each with the key it copies through ${...} (None: its own)."""
    found = {}
    for key, value in resolved.items():
        raw = unresolved.get(key) if isinstance(unresolved, dict) else None
        if isinstance(value, dict):
            source = COPY.match(raw) if isinstance(raw, str) else None
            inner = leaves(value, raw if isinstance(raw, dict) else {}, f"{prefix}{key}.")
            if source:  # model.encoder.width is arch.encoder.width
                inner = {name: f"{source[1]}.{name.removeprefix(f'{prefix}{key}.')}" for name in inner}
            found.update(inner)
        else:
            found[f"{prefix}{key}"] = None
    return found


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> dict[str, dict[str, str | None]]:
    """{"<group>=<option>": its flat keys}, for every option of every config group."""
    output = tmp_path_factory.mktemp("run")
    found = {}
    for group, option in OPTIONS:
        cfg = compose_config([f"{group}={option}"], output)
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        validate(cfg)  # every value conf/ holds passes its rule
        found[f"{group}={option}"] = leaves(
            OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_container(cfg, resolve=False)
        )
    return found


def known(key: str) -> bool:
    return schema.entry(key) is not None


def unknown_keys(keys: dict[str, str | None]) -> list[str]:
    """The keys the schema does not know: Lightning's and the loggers' by a pattern, all others by name (a copy
    through ${...} by the name of what it copies)."""
    return sorted(
        key
        for key, source in keys.items()
        if not (known(key) if key.startswith(BY_PATTERN) else (source or key) in KEYS)
    )


def test_the_schemas_groups_are_conf_s():
    assert set(GROUPS) == {p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"}
    assert list(GROUPS) == list(default_choices())  # in the order of the defaults


def test_every_key_of_every_option_is_known(composed):
    for option, keys in composed.items():
        assert unknown_keys(keys) == [], f"{option}: keys of conf/ that vae/files/schema.py does not know"


def test_a_key_the_schema_does_not_know_is_found(composed):
    keys = dict(composed["model=vae"])
    assert unknown_keys({**keys, "plots.dpi": None, "data.flip": None, "trainer.precision": None}) == [
        "data.flip",
        "plots.dpi",
    ]
    assert unknown_keys({**keys, "model.encoder.dropout": "arch.encoder.dropout"}) == ["model.encoder.dropout"]


def test_every_key_of_the_schema_is_in_conf(composed):
    everywhere = {key for keys in composed.values() for key in keys}
    missing = [name for name in KEYS if not any(fnmatch.fnmatchcase(key, name) for key in everywhere)]
    assert missing == [], "keys of vae/files/schema.py that no config of conf/ has"


def test_rules_have_words_and_patterns_no_rules():
    for name, key in KEYS.items():
        assert bool(key.says) == (key.rule is not None), name
        assert "*" not in name or key.rule is None, name  # validate checks keys by name
        assert key.setting in (schema.EVERY_RUN, schema.WHERE_READ, schema.WITH_GROUP, schema.NEVER), name


# What a resume could change before the schema was one table (vae/files/schema.py at e88e8d5): the policy is the same.
RESUMABLE = (
    "epochs trainer.max_epochs lr optimizer.* model.optimizer.* gradient_clip_val trainer.gradient_clip_val threads "
    "plots.* callbacks.figures.plots.* eval.* trainer.enable_progress_bar trainer.log_every_n_steps data.root "
    "data.download data.eval_batch_size"
).split()
UPGRADED = ("callbacks.checkpoint._target_", "trainer.default_root_dir", "callbacks.figures._target_")


def resumable_before(key: str) -> bool:
    if key in UPGRADED or any(fnmatch.fnmatchcase(key, pattern) for pattern in ("logger", "logger.*")):
        return True
    return not key.endswith("_target_") and any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE)


ODD_KEYS = (  # of runs written by other versions, or set with +key=value
    "logger logger._target_ logger.save_dir optimizer.betas optimizer.foo._target_ plots.dpi eval.batches unknown "
    "callbacks.figures.plots.x trainer.precision model.optimizer._target_ data.root.x callbacks.timer._target_"
).split()


def test_the_resume_policy_is_as_before(composed):
    keys = sorted({key for found in composed.values() for key in found} | set(ODD_KEYS))
    assert [key for key in keys if resumable(key) != resumable_before(key)] == []
    assert resumable("epochs") and resumable("logger.mlflow._target_") and not resumable("optimizer._target_")


def test_the_derived_tables_are_as_before():
    from vae.results import report_settings
    from vae.run import checks

    assert checks.READ_BY_CODE == set("seed threads resume overwrite eval plots paths callbacks".split())
    assert checks.MODEL_PARTS == {"arch", "likelihood", "optimizer", "prior"}
    assert report_settings.KNOBS == tuple("latent_dim width depth lr batch_size epochs seed gradient_clip_val".split())
    assert report_settings.MODEL_KNOBS == ("beta", "kl_warmup_epochs", "iwae.k")
    assert report_settings.GROUPS == ("data", "model", "prior", "arch", "likelihood", "optimizer", "variant")
    assert report_settings.NOT_SETTINGS == set(
        "data.root data.download data.eval_batch_size data.dataset optimizer.lr".split()
    )
    assert schema.PLOT_SETTINGS == tuple(
        "n_samples n_reconstructions grid_size n_interpolations interpolation_steps".split()
    )
    assert schema.EVAL_SETTINGS == ("split", "iw_samples", "chunk_size")
    assert [name for name, group in GROUPS.items() if group.resume] == ["logger"]
