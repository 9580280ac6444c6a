"""Runs that fail well: bad values and files give one message, a NaN stops cleanly, a killed run
resumes to the same result, a sweep survives a failed job."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import (
    NO_FIGURES,
    ROOT,
    assert_one_clear_line,
    compose_config,
    make_mnist,
    metrics_without_timing,
    run_train,
    train_run,
)
from vae.core.errors import UserError
from vae.files.schema import validate
from vae.run.checks import check_choices
from vae.run.command_line import RESUMED, RUN_DIR_ENV, prepare_command_line


@pytest.mark.parametrize(
    "override,message",
    [
        ("latent_dim=two", "latent_dim='two' is not valid: latent_dim must be a positive integer"),
        ("latent_dim=0", "latent_dim=0 is not valid"),
        ("width=-3", "width=-3 is not valid: width must be a positive integer"),
        ("depth=1.5", "depth=1.5 is not valid"),
        ("batch_size=0", "batch_size=0 is not valid"),
        ("epochs=true", "epochs=True is not valid"),
        ("lr=-1", "lr=-1 is not valid: lr must be a positive number"),
        ("lr=abc", "lr='abc' is not valid"),
        ("beta=-0.5", "beta=-0.5 is not valid: beta must be a non-negative number"),
        ("likelihood.sigma=0", "likelihood.sigma=0 is not valid: likelihood.sigma must be a positive number"),
        ("gradient_clip_val=-1", "gradient_clip_val=-1 is not valid"),
        ("data.dev_size=0", "data.dev_size=0 is not valid"),
        ("plots.pdf=maybe", "plots.pdf='maybe' is not valid: plots.pdf must be true or false"),
        ("eval.enabled=1", "eval.enabled=1 is not valid: eval.enabled must be true or false"),
        ("threads=-1", "threads=-1 is not valid: threads must be a positive integer"),
        ("threads=abc", "threads='abc' is not valid"),
        ("seed=4294967296", "seed=4294967296 is not valid: seed must be an integer from 0 to 4294967295"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is not valid: trainer.max_epochs must be a positive integer"),
        ("overwrite=yes", "overwrite='yes' is not valid: overwrite must be true or false"),
        ("lr=inf", "lr=inf is not valid: lr must be a positive number"),
        ("iwae.k=0", "iwae.k=0 is not valid: iwae.k must be a positive integer"),
        ("beta=inf", "beta=inf is not valid"),
    ],
)
def test_bad_values_are_named_with_their_rule(override, message, tmp_path):
    cfg = compose_config([override], tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=ae", "beta=5"], "beta=5 has no effect with model=ae, arch=mlp: nothing in this run reads beta"),
        (["model=ae", "kl_warmup_epochs=3"], "kl_warmup_epochs=3 has no effect with model=ae"),
        (["arch=conv", "depth=3"], "depth=3 has no effect with model=vae, arch=conv"),
        (["model=ae", "prior=vamp"], "prior=vamp has no effect with model=ae"),
        (["model=vae", "iwae.k=9"], "iwae.k=9 has no effect with model=vae"),
        (["model=iwae", "beta=2"], "beta=2 has no effect with model=iwae"),
    ],
)
def test_a_key_nothing_reads_is_refused(overrides, message, tmp_path):
    from vae.run.checks import check_used

    cfg = compose_config(overrides, tmp_path)
    choices = dict(cfg.hydra.runtime.choices)
    cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    with pytest.raises(UserError, match=message):
        check_used(cfg, overrides, choices)
    check_used(cfg, [o for o in overrides if o.startswith(("model=", "arch="))] + ["seed=3", "lr=0.01"], choices)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=iwae", "iwae.k=9", "prior=vamp"],
        ["model=vae", "prior=vamp", "prior.components=9", "beta=2"],
        ["+callbacks.timer._target_=lightning.pytorch.callbacks.Timer", "trainer.max_epochs=3", "data.dev_size=7"],
    ],
)
def test_keys_the_run_reads_pass(overrides, tmp_path):
    from vae.run.checks import check_used

    cfg = compose_config(overrides, tmp_path)
    choices = dict(cfg.hydra.runtime.choices)
    check_used(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), overrides, choices)


@pytest.mark.parametrize("override", ["gradient_clip_val=null", "beta=0", "lr=1e-5", "seed=0"])
def test_good_values_pass(override, tmp_path):
    validate(compose_config([override], tmp_path))


@pytest.mark.parametrize(
    "override,valid",
    [
        ("model=vea", "ae, iwae, vae"),
        ("likelihood=poisson", "bernoulli, gaussian, gaussian_learned"),
        ("arch=resnet", "conv, mlp"),
        ("data=cifar", "fashion_mnist, mnist"),
        ("model=ae,vea", "ae, iwae, vae"),
    ],
)
def test_unknown_group_options_list_the_valid_ones(override, valid):
    with pytest.raises(UserError, match=f"choose one of: {valid}"):
        check_choices([override], ROOT / "conf")


def test_cli_bad_value_and_bad_choice(tmp_path):
    assert_one_clear_line(run_train("lr=-1", f"hydra.run.dir={tmp_path}"), "lr=-1", "positive number")
    assert_one_clear_line(run_train("model=vea", f"hydra.run.dir={tmp_path}"), "model=vea", "ae, iwae, vae")


def test_corrupt_file_is_named_and_nothing_is_lost(tmp_path):
    root = make_mnist(tmp_path / "data", n_train=60, n_test=20)
    images = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(UserError, match=f"{images}.*truncated or corrupt"):
        train_run([f"data.root={root}", "data.dev_size=20", "data.download=false"], tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


def test_nan_loss_stops_with_the_step_and_advice(tiny_overrides, tmp_path):
    # an absurd learning rate sends log sigma^2 to +-inf within a few steps: the KL and the loss go non-finite
    with pytest.raises(UserError) as error:
        train_run([*tiny_overrides, "epochs=3", "lr=1e12", "gradient_clip_val=null"], tmp_path)
    for fragment in (
        "the training loss became",
        "at step",
        "Lower the learning rate (lr=1000000000000.0)",
        "keep gradient clipping on",
    ):
        assert fragment in str(error.value)
    # what is left to go back to, as it is: a checkpoint only once an epoch has finished
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert ("last.ckpt from the last finished epoch is intact" in str(error.value)) == last.is_file()
    assert ("no epoch had finished, so there is no checkpoint" in str(error.value)) != last.is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "became" in metrics["error"]


def test_a_run_that_blew_up_says_it_diverged(tiny_overrides, tmp_path, caplog):
    """lr=1e4 with clipping stays finite, at a loss far above the untrained model's: not "completed"."""
    with caplog.at_level("WARNING", logger="train"):
        metrics = train_run([*tiny_overrides, *NO_FIGURES, "lr=1e4", "eval.enabled=false"], tmp_path)
    assert metrics["status"] == "diverged" and metrics["val/loss"] > 1e6
    assert "training diverged: the best val/loss" in metrics["warning"] and "lr=10000.0" in metrics["warning"]
    assert "warning: training diverged" in caplog.text
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    slow = train_run([*tiny_overrides, *NO_FIGURES, "lr=1e-9", "eval.enabled=false"], tmp_path / "slow")
    assert slow["status"] == "completed"  # a run that barely moved did not diverge


def test_nan_guard_keeps_last_finite_losses():
    from vae.run.callbacks import FiniteLoss

    class Trainer:
        global_step, current_epoch, gradient_clip_val = 7, 0, 250.0

    class Module:
        lr = 1e-3

    guard = FiniteLoss(keep=2)
    for step, loss in enumerate([3.0, 2.0, 1.0]):
        Trainer.global_step = step
        guard.on_train_batch_end(Trainer, Module, {"loss": torch.tensor(loss)}, None, step)
    Trainer.global_step = 3
    with pytest.raises(
        UserError, match=r"became nan at step 3 \(epoch 1\); the last finite losses: 2\.00 \(step 1\), 1\.00 \(step 2\)"
    ):
        guard.on_train_batch_end(Trainer, Module, {"loss": torch.tensor(math.nan)}, None, 3)


def test_same_seed_same_metrics(vae_run, vae_run_args, tmp_path):
    """And the figures take none of training's random numbers: without them the numbers are the same too."""
    train_run([*vae_run_args, "plots.every_n_epochs=0", "plots.at_end=false"], tmp_path)
    assert metrics_without_timing(tmp_path) == metrics_without_timing(vae_run)


SECOND_EPOCH_STEP = 10  # the tiny data's 200 training images make 7 steps of 32 per epoch: step 10 is in the second


def signalled(stop: int, run_dir: Path, overrides: list[str]) -> subprocess.Popen:
    """train.py, which sends itself `stop` from inside its tenth training step (tests/signal_at.py): the same moment
    on any machine, however fast."""
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "signal_at.py"),
            "vae.maths.epoch_means:EpochMeans.training_step",
            str(SECOND_EPOCH_STEP),
            str(int(stop)),
            str(ROOT / "train.py"),
            *overrides,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.linux
def test_sigkill_mid_epoch_then_resume_gives_the_same_metrics(tiny_overrides, tmp_path):
    overrides = [*tiny_overrides, "epochs=3", *NO_FIGURES]
    train_run(overrides, tmp_path / "reference")  # the uninterrupted run, in this process

    killed = tmp_path / "killed"
    process = signalled(signal.SIGKILL, killed, overrides)
    process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL
    rows_at_kill = len((killed / "history.csv").read_text().splitlines()) - 1
    assert rows_at_kill == 1 and (killed / "checkpoints" / "last.ckpt").is_file()
    assert not (killed / "metrics.json").exists()

    resumed = run_train(f"resume={killed}")  # nothing else: the run's own overrides are read back
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    expected, got = metrics_without_timing(tmp_path / "reference"), metrics_without_timing(killed)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value, rel=1e-6, abs=1e-6) if isinstance(value, float) else value), key
    rows = (killed / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]


@pytest.mark.slow
@pytest.mark.linux
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_epoch_stops_with_a_nonzero_status_and_an_interrupted_run(stop, tiny_overrides, tmp_path):
    """SIGTERM (SLURM, `timeout`) ended with status 0 and no metrics.json: a script took it for a finished run."""
    run_dir = tmp_path / "run"
    process = signalled(stop, run_dir, [*tiny_overrides, "epochs=3", *NO_FIGURES])
    _, stderr = process.communicate(timeout=600)
    name = "SIGTERM" if stop == signal.SIGTERM else "SIGINT (Ctrl+C)"
    assert process.returncode != 0, stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: training stopped by {name} in epoch 2 "), stderr
    assert f"resume={run_dir}" in stderr.strip().splitlines()[-1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and name in metrics["error"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()  # what resume= continues from (tested above)


def copy_run(vae_run, tmp_path) -> Path:
    run_dir = tmp_path / "copy"
    shutil.copytree(vae_run, run_dir)
    return run_dir


def test_resume_reads_the_runs_overrides_back(vae_run, tmp_path):
    """resume= puts the run's own overrides first, then the command line's (which win); the directory reaches
    Hydra through an environment variable, whatever its name (tests/run/test_run_directory.py resumes one)."""
    run_dir = copy_run(vae_run, tmp_path)
    argv = prepare_command_line(["train.py", f"resume={run_dir}", "epochs=3"])
    saved = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
    kept = [o for o in saved if not o.startswith("epochs=")]
    assert argv[1 : 1 + len(kept)] == kept
    assert "epochs=3" in argv and argv[-2:] == RESUMED and os.environ[RUN_DIR_ENV] == str(run_dir.absolute())


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    assert_one_clear_line(run_train(f"resume={tmp_path}"), "is not a run directory")


def test_checkpoint_of_another_format_is_refused(vae_run, tmp_path):
    from vae.files.saved import load_run

    run_dir = copy_run(vae_run, tmp_path)
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    saved["vae_lab_format"] = 0
    torch.save(saved, checkpoint)
    with pytest.raises(UserError, match="another version of vae-lab"):
        load_run(run_dir)


@pytest.mark.slow
def test_sweep_with_a_failing_job_completes_the_others(tiny_overrides, tmp_path):
    """Hydra's basic launcher runs the jobs in one process: the job after a failed one still completes."""
    result = run_train("-m", *tiny_overrides, *NO_FIGURES, "lr=-1,1e-3", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    status = {}
    for job in sorted(p for p in tmp_path.iterdir() if p.is_dir() and (p / ".hydra").is_dir()):
        lr = OmegaConf.load(job / ".hydra" / "config.yaml").lr
        status[lr] = json.loads((job / "metrics.json").read_text())["status"]
    assert status == {-1: "failed", 1e-3: "completed"}
