"""Train an auto-encoder or a VAE on MNIST: compose the config, build data, model and trainer, fit, test.

    python train.py model=vae latent_dim=2
    python train.py -m lr=1e-3,1e-4

Each run writes into its Hydra run directory (under outputs/): TensorBoard events, checkpoints/,
history.csv (losses per epoch) and metrics.json (val at the best epoch, test on the best checkpoint).
"""

import json
import logging
import math
import os
import sys
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vae.config import check_choices, validate
from vae.errors import UserError, exit_on_user_error, find_user_error
from vae.runs import update_metrics

log = logging.getLogger("train")


def flat_config(cfg: DictConfig) -> dict:
    """The resolved config as {"model.beta": 1.0, ...}: the run's hyperparameters."""
    flat = {}

    def visit(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                visit(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)

    visit(OmegaConf.to_container(cfg, resolve=True), "")
    return {key: value for key, value in flat.items() if not key.startswith("paths.")}


def quiet_lightning() -> None:
    """Lightning's messages once (through Hydra's handlers), without its advertising and a warning
    that its own code triggers on recent torch."""
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip"))
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def build(cfg: DictConfig):
    """The run's data module, model and Trainer (with its callbacks and logger), as the config describes
    them; `trainer.history` is the History callback. vae/bench.py times exactly this."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    progress_bar = cfg.trainer.enable_progress_bar
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    callbacks = {name: instantiate(node) for name, node in cfg.callbacks.items()}
    callbacks["history"].print_summary = not progress_bar
    trainer = instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=list(callbacks.values()),
                          enable_progress_bar=progress_bar)
    trainer.history = callbacks["history"]
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict:
    validate(cfg)  # before the slow imports: a bad value fails at once
    import lightning as L
    import torch

    from vae.plots import draw_all

    quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    run_dir = Path(cfg.paths.output_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt" if cfg.resume else None
    if checkpoint and not checkpoint.is_file():
        log.info(f"{checkpoint} does not exist yet (killed during the first epoch): starting from scratch")
        checkpoint = None
    log.info(f"run directory: {run_dir} (torch threads: {torch.get_num_threads()})"
             + (f" (resuming from {checkpoint})" if checkpoint else ""))
    L.seed_everything(cfg.seed, verbose=False)

    datamodule, model, trainer = build(cfg)
    history, logger = trainer.history, trainer.logger
    if (trainer.world_size > 1 and HydraConfig.get().mode == RunMode.MULTIRUN
            and not trainer.strategy.cluster_environment.creates_processes_externally):
        raise UserError("DDP starts its other processes by running the command line again, which a sweep on "
                        "this machine cannot do: train one run with DDP (python train.py trainer=ddp ...), or sweep "
                        "on SLURM (hydra/launcher=slurm hydra.launcher.tasks_per_node=<trainer.devices>), which "
                        "starts them")
    logger.log_hyperparams(flat_config(cfg), {"hp/best_val_loss": math.nan, "hp/test_loss": math.nan})

    trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
    test = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False, weights_only=True)[0]
    draw_all(model, datamodule, run_dir, cfg.seed, cfg.plots)  # figures/, from the best checkpoint's weights

    best = history.best("val/loss")
    metrics = {
        "status": "completed",
        **{name: value for name, value in best.items() if name.startswith("val/")},
        **{name: float(value) for name, value in test.items()},
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds": round(sum(row["seconds"] for row in history.rows), 2),  # all epochs, resumed ones too
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_checkpoint": os.path.relpath(trainer.checkpoint_callback.best_model_path, run_dir),
    }

    def write_metrics():
        if trainer.is_global_zero:  # with DDP, one process writes
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    write_metrics()  # before the evaluation, which can take long: an interrupted one loses nothing
    if cfg.eval.enabled and trainer.is_global_zero:  # the best checkpoint (loaded by trainer.test) in nats
        from vae.evaluate import evaluate_split, scalars, summary

        evaluation = evaluate_split(model, datamodule, cfg.eval.split, cfg.eval.iw_samples, cfg.eval.chunk_size, cfg.seed)
        metrics.update(evaluation)
        logger.log_metrics(scalars(evaluation), step=trainer.global_step)
        log.info(summary(evaluation, cfg.eval.split, len(datamodule.splits[cfg.eval.split][0])))
        write_metrics()
    logger.log_metrics({"hp/best_val_loss": metrics["val/loss"], "hp/test_loss": metrics["test/loss"]},
                       step=trainer.global_step)
    logger.finalize("success")
    log.info(f"val/loss {metrics['val/loss']:.3f} (epoch {best['epoch']})  test/loss {metrics['test/loss']:.3f}  "
             f"-> {run_dir / 'metrics.json'}")
    return metrics


def record_failure(run_dir: Path, error: Exception) -> str:
    """Marks metrics.json {"status": "failed", "error": ...}, keeping what it already holds (a failure during
    the evaluation keeps the training's numbers); an unexpected error's traceback goes to traceback.txt."""
    found = find_user_error(error)
    message = str(found) if found else f"{type(error).__name__}: {error}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if found is None:
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(error)))
    update_metrics(run_dir, {"status": "failed", "error": message})
    return message


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    run_dir = Path(cfg.paths.output_dir)
    try:
        return train(cfg)["val/loss"]
    except Exception as error:
        message = record_failure(run_dir, error)
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        # In a sweep a failed job is recorded and the others go on; the comparison marks it failed.
        log.error(f"error: {message} (job {run_dir} failed; the sweep goes on)")
        return math.inf


CONF = Path(__file__).resolve().parent / "conf"


@exit_on_user_error
def prepare_command_line(argv: list[str]) -> list[str]:
    """Checks group choices (`model=foo`) and expands `resume=<run directory>` into that run's own
    overrides, then the command line's, in the same run directory."""
    check_choices(argv[1:], CONF)
    resume = [arg.partition("=")[2] for arg in argv[1:] if arg.startswith("resume=")]
    if not resume:
        return argv
    run_dir = Path(resume[-1])
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise UserError(f"resume={run_dir}: {saved} is missing, so {run_dir} is not a run directory of train.py")
    if "-m" in argv or "--multirun" in argv:
        raise UserError("resume continues one run; resume each job of a sweep on its own: "
                        "python train.py resume=<job directory>")
    given = {arg.lstrip("+~").partition("=")[0] for arg in argv[1:]}
    kept = [o for o in OmegaConf.load(saved) if o.lstrip("+~").partition("=")[0] not in given]
    return [argv[0], *kept, *argv[1:], f"hydra.run.dir={run_dir}"]


if __name__ == "__main__":
    sys.argv = prepare_command_line(sys.argv)
    main()
