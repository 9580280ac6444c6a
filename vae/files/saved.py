"""A run directory after (or during) training: its saved config, checkpoints, model and metrics.json.

The tools that work from a run without retraining (plots, evaluation, comparison) start here:

    run = load_run("outputs/2026-11-29/12-00-00")        # or a path to a .ckpt file
    run.model, run.cfg, run.dir, run.checkpoint

A notebook (notebooks/explore_run.ipynb) starts from `load`, the same in one call, the data module included:

    cfg, model, datamodule = vae.load("outputs/2026-11-29/12-00-00")

Nothing in a run's files runs code: the model is rebuilt from the checkpoint's own hyperparameters, and
the saved config's data module only when it names this project's classes (vae/core/targets.py).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import UserError, in_brief
from vae.core.targets import build
from vae.files.checkpoint import model_of, read_checkpoint
from vae.files.layout import RunFiles

if TYPE_CHECKING:  # torch and Lightning are imported where they are needed
    import lightning as L
    import torch


def plain(node) -> dict:
    """A saved config's node as a plain dict, its ${...} resolved."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


@dataclass
class Run:
    dir: Path
    checkpoint: Path
    cfg: DictConfig
    model: "torch.nn.Module"

    def datamodule(self, root: str | Path | None = None, **overrides):
        """The run's data module (set up), with config values replaced by `overrides`; `root`, when given, is the
        folder that holds MNIST/raw/ now (None: where the run found it)."""
        if root is not None:
            overrides["root"] = str(root)
        datamodule = build(plain(self.cfg.data), str(RunFiles(self.dir).config), **overrides)
        datamodule.setup()
        return datamodule


def find_checkpoint(path: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint) from a run directory (best.ckpt, else last.ckpt) or a .ckpt file."""
    path = Path(path)
    if path.is_file():
        files, checkpoint = RunFiles.of_checkpoint(path), path
    elif path.is_dir():
        files = RunFiles(path)
        checkpoint = files.saved_checkpoint()
        if checkpoint is None and files.is_run():
            raise UserError(
                f"{path} is a run directory without checkpoints ({files.best.relative_to(path)} or "
                f"{files.last.name}): it stopped before the end of its first epoch"
            )
    else:
        raise UserError(f"{path} does not exist: give a run directory (outputs/<date>/<time>) or a .ckpt file")
    if not files.is_run():
        raise UserError(
            f"{path} is not a run of train.py: {files.config} is missing; "
            "give a run directory (outputs/<date>/<time>) or a checkpoint inside one"
        )
    return files.root, checkpoint


def load_config(run_dir: Path) -> DictConfig:
    """The config the run was trained with, its output directory pointing at run_dir."""
    path = RunFiles(run_dir).config
    try:
        cfg = OmegaConf.load(path)
        cfg.paths.output_dir = str(run_dir)
    except Exception as error:  # not YAML, not a mapping, no `paths`: damaged, or not written by train.py
        raise UserError(
            f"{path} does not read as a config of train.py ({in_brief(error)}); the run's config is damaged"
        ) from None
    return cfg


def load_model(checkpoint: Path):
    """The model a checkpoint holds, rebuilt from its own hyperparameters (class and parts checked first; the
    model's own on_load_checkpoint refuses weights of another shape)."""
    saved = read_checkpoint(checkpoint)
    model_class, hparams = model_of(saved, checkpoint)
    model = build({"_target_": model_class, **hparams}, str(checkpoint))
    model.on_load_checkpoint(saved)
    model.load_state_dict(saved["state_dict"])
    return model


def load_run(path: str | Path, device="cpu") -> Run:
    """The run's config and its checkpoint's model, in eval mode, on `device`."""
    run_dir, checkpoint = find_checkpoint(Path(path))
    cfg = load_config(run_dir)
    return Run(dir=run_dir, checkpoint=checkpoint, cfg=cfg, model=load_model(checkpoint).to(device).eval())


class LoadedRun(NamedTuple):
    """What `load` returns; it unpacks as `cfg, model, datamodule = load(path)`."""

    cfg: DictConfig
    model: "torch.nn.Module"
    datamodule: "L.LightningDataModule"


def load(path: str | Path, data_root: str | Path | None = None) -> LoadedRun:
    """A finished run, ready to explore: (cfg, model, datamodule).

    path:       a run directory (outputs/<date>/<time>: its checkpoints/best.ckpt, else last.ckpt) or a .ckpt file
                inside one; relative paths are relative to the working directory, as for the tools.
    data_root:  the folder that holds MNIST/raw/ (FashionMNIST/raw/), when it is no longer where the run found it
                (None: the run's data.root, which the VAE_DATA_DIR environment variable sets too).

    cfg         the config the run was trained with (.hydra/config.yaml), cfg.paths.output_dir = its directory
    model       the checkpoint's model, on the CPU, in eval mode: model.encode(x) -> mu (AE: the code z),
                model.decode(z) -> E[x | z] (the decoder's mean image), model.latent_dim, model.describe()
    datamodule  the run's data, set up: datamodule.splits["train" | "dev" | "test"] = (x, y), x (N, 1, 28, 28) in [0, 1]

    A path that is not a run, a damaged checkpoint or missing data raise UserError, whose message says what to do.
    """
    run = load_run(path)
    datamodule = run.datamodule(root=data_root)
    return LoadedRun(cfg=run.cfg, model=run.model, datamodule=datamodule)
