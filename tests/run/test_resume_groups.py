"""A resume that chooses another option of a config group (prior=, model=, data=, ...) is refused in the one line a
changed key gets, before Hydra composes anything, and changes no byte of the run directory; the loggers may change.
The run directories are made by hand (.hydra/ as train.py writes it, no training): prepare_command_line reads no
more of them."""

import hashlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import CONF, compose_config
from vae.core.errors import Refused
from vae.files.layout import RunFiles
from vae.files.schema import GROUPS, default_choices
from vae.run.command_line import RUN_DIR_ENV, prepare_command_line
from vae.run.resume import check_resume


def make_run(run_dir: Path, overrides: list[str], hydra_record: bool = True) -> Path:
    """A run directory of `python train.py <overrides>`: .hydra/ (config, Hydra's record, the overrides), a
    checkpoint and train.log (a refused resume must leave them as they are)."""
    cfg = compose_config(overrides, run_dir)
    files = RunFiles(run_dir)
    files.hydra.mkdir(parents=True)
    files.config.write_text(OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])))
    if hydra_record:
        files.hydra_config.write_text(OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, ["hydra"])))
    files.overrides.write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
    files.checkpoints.mkdir()
    files.last.write_bytes(b"a checkpoint: nothing here reads it")
    (run_dir / "train.log").write_text("[2026-11-29 12:00:00] run directory: ...\n")
    return run_dir


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "default", ["epochs=2"])


@pytest.fixture(scope="module")
def vamp_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "vamp", ["prior=vamp", "latent_dim=4"])


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, "")  # an accepted resume sets it: put back after each test


def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` (hidden ones too), with a hash of each file's bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        for path in sorted(folder.rglob("*"))
    }


def refusal(run_dir: Path, change: str) -> str:
    """The message prepare_command_line refuses `resume=<run_dir> <change>` with, the directory checked unchanged."""
    before = snapshot(run_dir)
    with pytest.raises(Refused) as error:
        prepare_command_line(["train.py", f"resume={run_dir}", change])
    assert snapshot(run_dir) == before
    return str(error.value)


def group_refusal(run_dir: Path, group: str, was, now) -> str:
    return (
        f"resume={run_dir} cannot change {group} (the run has {was!r}, this command {now!r}): its checkpoint "
        "continues the run it holds. A resume may change only epochs, lr and the optimizer's settings, "
        "gradient_clip_val, threads, data.root, plots.*, eval.* and the loggers; for other values train a new run "
        "(nothing was changed)"
    )


@pytest.mark.parametrize(
    "run,change,group,was,now",
    [
        ("vamp_run", "prior=standard", "prior", "vamp", "standard"),
        ("vamp_run", "~prior", "prior", "vamp", None),
        ("default_run", "prior=vamp", "prior", "standard", "vamp"),
        ("default_run", "model=ae", "model", "vae", "ae"),
        ("default_run", "likelihood=bernoulli", "likelihood", "gaussian", "bernoulli"),
        ("default_run", "arch=conv", "arch", "mlp", "conv"),
        ("default_run", "data=fashion_mnist", "data", "mnist", "fashion_mnist"),
        ("default_run", "optimizer=adamw", "optimizer", "adam", "adamw"),
        ("default_run", "trainer=ddp", "trainer", "default", "ddp"),
        ("default_run", "sweep=report", "sweep", None, "report"),
    ],
)
def test_a_resume_that_changes_a_group_is_refused_in_one_line(request, run, change, group, was, now):
    run_dir = request.getfixturevalue(run)
    assert refusal(run_dir, change) == group_refusal(run_dir, group, was, now)


def test_the_group_refusal_reads_as_the_key_refusal(vamp_run):
    cfg = compose_config(["prior=vamp", "latent_dim=5", f"resume={vamp_run}"], vamp_run)
    cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    with pytest.raises(Refused) as error:
        check_resume(cfg, vamp_run)
    changed_key = str(error.value).replace("latent_dim (the run has 4, this command 5)", "<change>")
    changed_group = refusal(vamp_run, "prior=standard")
    assert changed_group.replace("prior (the run has 'vamp', this command 'standard')", "<change>") == changed_key
    assert "\n" not in changed_group


OTHER = {  # each group a resume may not change, and a command line that changes it
    group: next((f"{group}={p.stem}" for p in sorted((CONF / group).glob("*.yaml")) if p.stem != default), f"~{group}")
    for group, default in default_choices().items()
    if not GROUPS[group].resume
}


@pytest.mark.parametrize("group", OTHER)
def test_every_group_the_schema_keeps_is_refused(default_run, group):
    assert f"cannot change {group} (the run has " in refusal(default_run, OTHER[group])


@pytest.mark.parametrize("change", ["logger=csv", "logger=[csv,tensorboard]", "logger=many", "logger=[]"])
def test_a_resume_may_change_the_loggers(vamp_run, change):
    before = snapshot(vamp_run)
    argv = prepare_command_line(["train.py", f"resume={vamp_run}", change, "epochs=3"])
    assert argv[1:4] == ["prior=vamp", "latent_dim=4", change] and argv[-2].startswith("resume=")
    assert snapshot(vamp_run) == before


@pytest.mark.parametrize("same", ["prior=vamp", "model=vae", "sweep=null", "data=mnist"])
def test_a_resume_may_repeat_the_runs_choices(vamp_run, same):
    assert same in prepare_command_line(["train.py", f"resume={vamp_run}", same])


def test_without_hydras_record_the_runs_overrides_and_the_defaults_say_its_choices(tmp_path):
    vamp = make_run(tmp_path / "vamp", ["prior=vamp"], hydra_record=False)
    assert "(the run has 'vamp', this command 'standard')" in refusal(vamp, "prior=standard")
    plain = make_run(tmp_path / "plain", ["epochs=2"])
    RunFiles(plain).hydra_config.write_text("hydra: [damaged\n")
    assert "(the run has 'standard', this command 'vamp')" in refusal(plain, "prior=vamp")
    assert "(the run has 'vae', this command 'iwae')" in refusal(plain, "model=iwae")
