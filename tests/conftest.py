"""Shared fixtures: a tiny MNIST-format dataset written by the tests themselves (IDX files), the finished
runs that several tests read, each trained once per session in this process (helpers.train_run), and one sweep.
Helpers: tests/helpers.py."""

import sys
from pathlib import Path

import pytest

from helpers import NO_FIGURES, TINY_DEV, make_mnist, run_train, train_run


def pytest_collection_modifyitems(config, items):
    """Tests marked linux (signals, setpriv, rlimits, SLURM) skip on Windows and macOS."""
    if sys.platform.startswith("linux"):
        return
    skip = pytest.mark.skip(reason="needs Linux")
    for item in items:
        if "linux" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_overrides(tiny_mnist) -> list[str]:
    """Overrides that make a run fast on the tiny dataset."""
    return [
        f"data.root={tiny_mnist}",
        f"data.dev_size={TINY_DEV}",
        "data.download=false",
        "epochs=1",
        "width=32",
        "batch_size=32",
        "data.eval_batch_size=50",
        "eval.generation.n=100",  # the generated pictures' measures on 100 draws: seconds less per run
    ]


@pytest.fixture(scope="session")
def vae_run_args(tiny_overrides):
    """The default VAE for two epochs, with the figures in TensorBoard every epoch."""
    return [
        *tiny_overrides,
        "epochs=2",
        "plots.every_n_epochs=1",
        "plots.grid_size=8",
        "plots.n_samples=16",
        "plots.n_interpolations=4",
    ]


@pytest.fixture(scope="session")
def vae_run(vae_run_args, tmp_path_factory) -> Path:
    """One finished VAE run, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run") / "vae"
    train_run(vae_run_args, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def ae_run(tiny_overrides, tmp_path_factory) -> Path:
    """One finished auto-encoder run with the Bernoulli likelihood."""
    run_dir = tmp_path_factory.mktemp("run") / "ae"
    train_run([*tiny_overrides, "model=ae", "likelihood=bernoulli", "plots.at_end=false"], run_dir)
    return run_dir


@pytest.fixture(scope="session")
def bernoulli_run(tiny_overrides, tmp_path_factory) -> Path:
    """A Bernoulli conv VAE on dynamically binarised images with KL warm-up, evaluated with K = 7."""
    run_dir = tmp_path_factory.mktemp("run") / "bernoulli"
    train_run(
        [
            *tiny_overrides,
            "epochs=2",
            "likelihood=bernoulli",
            "data.binarize=dynamic",
            "arch=conv",
            "arch.channels=4",
            "latent_dim=3",
            "kl_warmup_epochs=1",
            "eval.iw_samples=7",
            "plots.every_n_epochs=0",  # no figures: they are vae_run's to test
            "plots.at_end=false",
        ],
        run_dir,
    )
    return run_dir


@pytest.fixture(scope="session")
def sweep(tiny_overrides, tmp_path_factory):  # the tests that use it are marked slow: 4 jobs in a new process
    """A 2 x 2 sweep (model x latent_dim) of two epochs, as a user runs it (the comparison's and the report's)."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "2x2"
    result = run_train(
        "-m", *tiny_overrides, *NO_FIGURES, "epochs=2", "model=ae,vae", "latent_dim=2,3", f"hydra.sweep.dir={sweep_dir}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return sweep_dir, result
