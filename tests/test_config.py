"""Every option of every config group composes and instantiates; the top-level knobs reach the objects."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(group, option.stem) for group in GROUPS for option in sorted((CONF / group).glob("*.yaml"))]


def compose_config(overrides, output_dir):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def build(cfg):
    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
    return (instantiate(cfg.data), instantiate(cfg.model),
            instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=callbacks))


def test_every_group_has_options():
    assert {"data", "model", "arch", "likelihood", "trainer", "logger", "callbacks"} <= set(GROUPS)
    assert ("model", "ae") in OPTIONS and ("likelihood", "bernoulli") in OPTIONS


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    datamodule, model, trainer = build(cfg)
    assert model.latent_dim == cfg.latent_dim
    assert trainer.max_epochs == cfg.epochs


def test_top_level_knobs_reach_the_objects(tmp_path):
    cfg = compose_config(["latent_dim=10", "width=256", "depth=2", "lr=1e-4", "batch_size=64", "epochs=3",
                          "beta=0.5", "gradient_clip_val=5", "likelihood.sigma=0.5"], tmp_path)
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
    assert cfg.model._target_ == "vae.module.VAE" and cfg.data.dev_size == 10000
