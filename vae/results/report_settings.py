"""The settings table of the lab report: what every run of a sweep shares, as `key: value` a reader cites."""

import logging

from omegaconf import OmegaConf

from vae.core.errors import in_brief
from vae.files.layout import RunFiles
from vae.files.saved import load_config
from vae.files.schema import EVERY_RUN, KEYS, NEVER, WHERE_READ
from vae.files.schema import GROUPS as CONFIG_GROUPS
from vae.results.sweeps import Job, readable
from vae.results.tables import latex_escape, latex_value

log = logging.getLogger(__name__)

# What the table lists, from the config's schema (vae/files/schema.py): conf/config.yaml's knobs of every run, and
# those only some models read; the config groups (the choice, then its values), and their keys that are not settings.
KNOBS = tuple(key for key, entry in KEYS.items() if entry.setting == EVERY_RUN)
MODEL_KNOBS = tuple(key for key, entry in KEYS.items() if entry.setting == WHERE_READ)
GROUPS = tuple(name for name, group in CONFIG_GROUPS.items() if group.setting != NEVER)
NOT_SETTINGS = {key for key, entry in KEYS.items() if entry.setting == NEVER}


def setting(value) -> str:
    """A config value as the settings table shows it: null as in the config, numbers as a reader writes them."""
    return readable("null" if value is None else str(value))


def run_settings(job: Job) -> dict[str, str]:
    """The settings a run was trained with, as `key: value` a reader cites: the config groups' choices and their
    own values, and conf/config.yaml's knobs (`beta` only where the model reads it)."""
    cfg = load_config(job.dir)  # a damaged one is a UserError
    hydra = RunFiles(job.dir).hydra_config
    choices = OmegaConf.select(OmegaConf.load(hydra), "hydra.runtime.choices") if hydra.is_file() else None
    text = OmegaConf.to_yaml(cfg)  # unresolved: which knobs something reads through ${...}
    settings = {}
    for group in GROUPS:
        where_read = CONFIG_GROUPS[group].setting == WHERE_READ  # the prior: not an auto-encoder's
        if group not in (choices or {}) or (where_read and "${" + group + "}" not in text):
            continue
        settings[group] = str(choices[group])
        node = cfg.get(group)
        for key, value in node.items_ex(resolve=False) if OmegaConf.is_dict(node) else []:
            name = f"{group}.{key}"
            if key.startswith("_") or name in NOT_SETTINGS or OmegaConf.is_config(value):
                continue
            if not OmegaConf.is_interpolation(node, key):  # a ${...} is a knob, listed below
                settings[name] = setting(value)
    for key in KNOBS + MODEL_KNOBS:
        value = OmegaConf.select(cfg, key, default=None)
        if key in KNOBS or "${" + key + "}" in text:  # the model's node reads its knobs through ${...}
            settings[key] = setting(value)
    if cfg.get("eval", {}).get("enabled"):
        settings["eval.iw_samples"] = str(cfg.eval.iw_samples)  # K of the test log p(x)
    return settings


def shared_settings(jobs: list[Job]) -> dict[str, str]:
    """The settings every readable run has alike (those that differ are the comparison table's columns)."""
    found = []
    for job in jobs:
        try:
            found.append(run_settings(job))
        except Exception as error:  # a job without a readable config (failed early, damaged): its row says so
            log.info(f"settings: {job.dir} left out ({in_brief(error)})")
    if not found:
        return {}
    return {key: value for key, value in found[0].items() if all(other.get(key) == value for other in found)}


def settings_table(settings: dict[str, str], n_runs: int) -> str:
    rows = [rf"\texttt{{{latex_escape(key)}}} & {latex_value(value)} \\" for key, value in settings.items()]
    every = "every run" if n_runs > 1 else "the run"
    return "\n".join(
        [
            r"\begin{table}[ht]",
            r"\centering",
            r"\begin{tabular}{ll}",
            r"\toprule",
            r"setting & value \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{The settings of {every} (keys of the Hydra config, conf/); "
            r"settings that differ between runs are columns of Table~\ref{tab:comparison}.}",
            r"\label{tab:settings}",
            r"\end{table}",
        ]
    )
