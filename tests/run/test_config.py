"""Every option of every config group composes and instantiates; the top-level knobs reach the objects."""

from pathlib import Path

import pytest

from helpers import CONF, compose_config
from vae.core.errors import Refused
from vae.run import training
from vae.run.checks import check_packages

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(group, option.stem) for group in GROUPS for option in sorted((CONF / group).glob("*.yaml"))]


def build(cfg):
    datamodule, model, trainer, _ = training.build(cfg)
    return datamodule, model, trainer


def test_every_group_has_options():
    assert {"data", "model", "arch", "likelihood", "optimizer", "trainer", "logger", "callbacks"} <= set(GROUPS)
    assert ("model", "ae") in OPTIONS and ("likelihood", "bernoulli") in OPTIONS


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> Path:
    """One MLflow store for the options that use it, instead of outputs/mlflow of the working directory."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option, tmp_path, mlflow_store):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    try:
        check_packages(cfg)
    except Refused as missing:  # an optional extra that is not installed (logger=mlflow without mlflow)
        pytest.skip(str(missing))
    if "mlflow" in (cfg.get("logger") or {}):
        cfg.logger.mlflow.tracking_uri = f"sqlite:///{mlflow_store}/mlflow.db"
        cfg.logger.mlflow.artifact_location = str(mlflow_store / "artifacts")
    datamodule, model, trainer = build(cfg)
    assert model.latent_dim == cfg.latent_dim
    assert trainer.max_epochs == cfg.epochs


def test_top_level_knobs_reach_the_objects(tmp_path):
    cfg = compose_config(
        [
            "latent_dim=10",
            "width=256",
            "depth=2",
            "lr=1e-4",
            "batch_size=64",
            "epochs=3",
            "beta=0.5",
            "gradient_clip_val=5",
            "likelihood.sigma=0.5",
        ],
        tmp_path,
    )
    datamodule, model, trainer = build(cfg)
    assert model.mu.out_features == 10 and model.log_sigma_squared.out_features == 10
    assert model.encoder.out_features == 256
    assert sum(1 for m in model.encoder.modules() if m.__class__.__name__ == "Linear") == 2
    assert model.lr == 1e-4 and model.beta == 0.5 and model.likelihood.sigma == 0.5
    assert datamodule.batch_size == 64
    assert trainer.max_epochs == 3 and trainer.gradient_clip_val == 5


def test_defaults_are_the_labs_advice(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.latent_dim == 2 and cfg.width == 512 and cfg.depth == 1
    assert cfg.lr == 1e-3 and cfg.batch_size == 128 and cfg.beta == 1.0
    assert cfg.gradient_clip_val > 0  # clipping on by default
    assert cfg.model._target_ == "vae.maths.models.VAE" and cfg.data.dev_size == 10000
