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
import time
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vae.errors import exit_on_user_error, find_user_error

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


def train(cfg: DictConfig) -> dict:
    import lightning as L
    from hydra.utils import instantiate

    quiet_lightning()

    run_dir = Path(cfg.paths.output_dir)
    log.info(f"run directory: {run_dir}")
    L.seed_everything(cfg.seed, verbose=False)

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    progress_bar = cfg.trainer.enable_progress_bar
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    callbacks = {name: instantiate(node) for name, node in cfg.callbacks.items()}
    history = callbacks["history"]
    history.print_summary = not progress_bar
    logger = instantiate(cfg.logger)
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=list(callbacks.values()),
                          enable_progress_bar=progress_bar)
    logger.log_hyperparams(flat_config(cfg), {"hp/best_val_loss": math.nan, "hp/test_loss": math.nan})

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    test = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)[0]

    best = history.best("val/loss")
    metrics = {
        "status": "completed",
        **{name: value for name, value in best.items() if name.startswith("val/")},
        **{name: float(value) for name, value in test.items()},
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds": round(fit_seconds, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_checkpoint": os.path.relpath(trainer.checkpoint_callback.best_model_path, run_dir),
    }
    if cfg.eval.enabled:  # the best checkpoint (loaded by trainer.test) in nats: vae/evaluate.py
        from vae.evaluate import evaluate_split, scalars, summary

        evaluation = evaluate_split(model, datamodule, cfg.eval.split, cfg.eval.iw_samples, cfg.eval.chunk_size, cfg.seed)
        metrics.update(evaluation)
        logger.log_metrics(scalars(evaluation), step=trainer.global_step)
        log.info(summary(evaluation, cfg.eval.split, len(datamodule.splits[cfg.eval.split][0])))
    logger.log_metrics({"hp/best_val_loss": metrics["val/loss"], "hp/test_loss": metrics["test/loss"]},
                       step=trainer.global_step)
    logger.finalize("success")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info(f"val/loss {metrics['val/loss']:.3f} (epoch {best['epoch']})  test/loss {metrics['test/loss']:.3f}  "
             f"-> {run_dir / 'metrics.json'}")
    return metrics


def record_failure(run_dir: Path, error: Exception) -> str:
    """metrics.json of a failed run: {"status": "failed", "error": ...}; an unexpected error's traceback
    goes to traceback.txt beside it."""
    found = find_user_error(error)
    message = str(found) if found else f"{type(error).__name__}: {error}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if found is None:
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(error)))
    (run_dir / "metrics.json").write_text(json.dumps({"status": "failed", "error": message}, indent=2) + "\n")
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


if __name__ == "__main__":
    main()
