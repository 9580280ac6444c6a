"""Shared fixtures: a tiny MNIST-format dataset written by the tests themselves (IDX files), and one
finished run that the tests which only read a run share. Helpers: tests/helpers.py."""

from pathlib import Path

import pytest

from helpers import TINY_DEV, make_mnist, run_train


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_overrides(tiny_mnist) -> list[str]:
    """Overrides that make a run fast on the tiny dataset."""
    return [f"data.root={tiny_mnist}", f"data.dev_size={TINY_DEV}", "data.download=false",
            "epochs=1", "width=32", "batch_size=32", "data.eval_batch_size=50"]


@pytest.fixture(scope="session")
def vae_run_args(tiny_overrides):
    return [*tiny_overrides, "epochs=2"]


@pytest.fixture(scope="session")
def vae_run(vae_run_args, tmp_path_factory):
    """One finished 2-epoch VAE run on the tiny dataset, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run") / "vae"
    result = run_train(*vae_run_args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir, result
