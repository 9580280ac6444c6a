"""One training run, from a composed config to a finished run directory:

    build(cfg)        the data module, the model and the Trainer (callbacks, loggers) the config describes
    train(cfg, run)   seed, check and take the run directory (vae/run/run_directory.py), fit, test the best
                      checkpoint, write metrics.json, draw the figures, evaluate in nats

train.py is the command line around `train`; vae/bench.py times what `build` makes.
"""

import gc
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vae.core.errors import Interrupted, UserError, signal_name, sigterm_as_interrupt
from vae.core.targets import build as build_target
from vae.files.layout import RunFiles
from vae.files.saved import plain
from vae.files.schema import flatten, validate
from vae.run.checks import check_accelerator, check_packages, check_used
from vae.run.data_checks import check_against_data
from vae.run.environment import quiet_lightning, skip_failing_nvml_check
from vae.run.run_log import held_log
from vae.run.stores import check_stores
from vae.run.timing import Phases

if TYPE_CHECKING:
    import lightning as L

    from vae.run.callbacks import History
    from vae.run.run_directory import RunDirectory


class Built(NamedTuple):
    datamodule: "L.LightningDataModule"
    model: "L.LightningModule"
    trainer: "L.Trainer"
    history: "History"  # the epochs' rows: metrics.json's best epoch and fit time come from them


log = logging.getLogger("train")


def build_data(cfg: DictConfig):
    """The data module the config describes (not set up: it reads its files in setup())."""
    return build_target(plain(cfg.data), "the config's data")


def build(cfg: DictConfig, datamodule=None) -> Built:
    """The run's objects as the config describes them (`datamodule`: one built already). The command line is the
    user's own: the Trainer's, the loggers' and the callbacks' `_target_`s are built as given (a callback of theirs,
    say); the data module and the model only from this project's classes (vae/core/targets.py), since they go into
    checkpoints that others load. The run's own callbacks (checkpoint tags, the optimiser's settings, the data the
    model starts from) are added here: they are how a run works, not settings."""
    from hydra.utils import instantiate

    from vae.run.callbacks import OptimiserSettings, StartFromData
    from vae.run.checkpoints import CheckpointTags
    from vae.run.loggers import build_loggers

    skip_failing_nvml_check()
    datamodule = datamodule if datamodule is not None else build_data(cfg)
    model = build_target(plain(cfg.model), "the config's model")
    progress_bar = cfg.trainer.enable_progress_bar
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    configured = {name: instantiate(node) for name, node in cfg.callbacks.items()}
    trainer = instantiate(
        cfg.trainer,
        logger=build_loggers(cfg),  # conf/logger/: a list, empty for logger=[]
        callbacks=[*configured.values(), CheckpointTags(), OptimiserSettings(), StartFromData(datamodule)],
        enable_progress_bar=progress_bar,
    )
    return Built(datamodule, model, trainer, configured["history"])


def check_launch(trainer, multirun: bool) -> None:
    """DDP on one machine starts its other processes by running the command line again: not inside a sweep."""
    if multirun and trainer.world_size > 1 and not trainer.strategy.cluster_environment.creates_processes_externally:
        raise UserError(
            "DDP starts its other processes by running the command line again, which a sweep on "
            "this machine cannot do: train one run with DDP (python train.py trainer=ddp ...), or sweep "
            "on SLURM (hydra/launcher=slurm hydra.launcher.tasks_per_node=<trainer.devices>), which "
            "starts them"
        )


def interrupted(stop: SystemExit, trainer, run_dir: Path) -> Interrupted:
    """The one-line message for a fit that a signal stopped."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    signal = "SIGTERM" if isinstance(stop, SIGTERMException) else "SIGINT (Ctrl+C)"
    last = RunFiles(run_dir).last
    kept = (
        f"{last} holds the last finished epoch; continue with `python train.py resume={run_dir}`"
        if last.is_file()
        else "no epoch had finished, so there is no checkpoint: train again"
    )
    return Interrupted(
        f"training stopped by {signal} in epoch {trainer.current_epoch + 1} (step {trainer.global_step}): {kept}"
    )


def run_metrics(trainer, history, test: dict, model, run_dir: Path) -> dict:
    """metrics.json of a finished fit: val at the best epoch, test of the best checkpoint, how long, how big."""
    best = history.best("val/loss")
    diverged = history.diverged(model.lr)
    return {
        "status": "diverged" if diverged else "completed",
        **({"warning": diverged} if diverged else {}),
        **{name: value for name, value in best.items() if name.startswith("val/")},
        **{name: float(value) for name, value in test.items()},
        "best_epoch": best["epoch"],
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds": round(sum(row["seconds"] for row in history.rows), 2),  # all epochs, resumed ones too
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_checkpoint": os.path.relpath(trainer.checkpoint_callback.best_model_path, run_dir),
    }


def hyperparameters(cfg: DictConfig) -> dict:
    """What the loggers record as the run's hyperparameters: the flat config less logger.* (where the numbers go, not
    what made them)."""
    return {key: value for key, value in flatten(cfg).items() if not key.startswith("logger.")}


def train(cfg: DictConfig, run: "RunDirectory", multirun: bool = False, started: float | None = None) -> dict:
    """Trains the run `cfg` describes into its directory `run` (vae/run/run_directory.py); returns its metrics.json.
    `started`: when the run began on time.perf_counter's clock (None: now), for metrics.json's `seconds`."""
    phases = Phases(started)
    validate(cfg)  # before the slow imports: a bad value fails at once
    check_packages(cfg)  # a logger's missing optional extra too, before the run directory is touched
    check_stores(cfg)  # and a logger's store that does not open
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        check_used(cfg, list(hydra.overrides.task), dict(hydra.runtime.choices))
    import lightning as L
    import torch

    from vae.run import loggers

    if not gc.isenabled():  # train.py turned the collector off at its start: these imports build about 500,000
        # objects that live as long as the process, and their growth sets off seven full collections (0.7 s on 2
        # cores) that free next to nothing; one, here, moves them all to the oldest generation
        gc.enable()
        gc.collect()
    quiet_lightning()
    check_accelerator(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = run.path
    L.seed_everything(cfg.seed, verbose=False)

    with held_log(run_dir):  # no line of a refused command reaches the run's train.log
        datamodule = build_data(cfg)
        datamodule.setup()  # the data is read and checked before the run directory changes
        check_against_data(cfg, datamodule)
        checkpoint = run.open(cfg)  # refuses, before writing or building anything, what would damage the directory
    datamodule, model, trainer, history = build(cfg, datamodule)
    check_launch(trainer, multirun)
    log.info(
        f"run directory: {run_dir} (torch threads: {torch.get_num_threads()})"
        + (f" (resuming from {checkpoint})" if checkpoint else "")
    )
    loggers.log_hyperparameters(
        trainer.loggers, hyperparameters(cfg), {"hp/best_val_loss": math.nan, "hp/test_loss": math.nan}
    )

    phases.lap("start")
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
        phases.lap("fit")
        test = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False, weights_only=True)[0]
        phases.lap("test")
    except SystemExit as stop:  # Lightning ends fit and test so on SIGTERM (SIGTERMException, status 0!) and SIGINT
        raise interrupted(stop, trainer, run_dir) from stop
    metrics = {**run_metrics(trainer, history, test, model, run_dir), "seconds": phases.seconds}
    if "warning" in metrics:
        log.warning(f"warning: {metrics['warning']}")
    if trainer.is_global_zero:  # with DDP, one process writes
        run.write_metrics(metrics)  # first: the figures and the evaluation can fail or be interrupted
    try:
        with sigterm_as_interrupt():
            finish(cfg, model, datamodule, trainer, run, metrics, phases)
    except KeyboardInterrupt as stop:  # Ctrl+C or SIGTERM (vae/core/errors.py); Lightning's handlers end with the fit
        raise Interrupted(
            f"stopped by {signal_name(stop)} after training, during the figures or the evaluation: the training's "
            f"numbers are in {RunFiles(run_dir).metrics}; `python -m vae.plots {run_dir}` and "
            f"`python -m vae.evaluate {run_dir}` do the rest"
        ) from None
    loggers.log_metrics(
        trainer.loggers,
        {"hp/best_val_loss": metrics["val/loss"], "hp/test_loss": metrics["test/loss"]},
        step=trainer.global_step,
    )
    loggers.finalize(trainer.loggers, "success")
    log.info(
        f"val/loss {metrics['val/loss']:.3f} (epoch {metrics['best_epoch']})  test/loss {metrics['test/loss']:.3f}  "
        f"-> {RunFiles(run_dir).metrics}"
    )
    return metrics


def finish(
    cfg: DictConfig, model, datamodule, trainer, run: "RunDirectory", metrics: dict, phases: Phases | None = None
) -> None:
    """After training, on the best checkpoint's weights: the evaluation in nats and the generated pictures' measures,
    each added to metrics.json and sent to every logger as soon as it is done, then figures/ (into the loggers that
    keep files too)."""
    from vae.maths.evaluation import evaluate_split, scalars, summary  # imported once needed: training starts sooner
    from vae.maths.generation import summary_lines
    from vae.results.figures import draw_all
    from vae.run import generation
    from vae.run.loggers import log_files, log_images, log_metrics

    run_dir, phases = run.path, phases or Phases()
    model.to(trainer.strategy.root_device)  # Lightning's test leaves the model on the CPU: evaluate where it trained
    if not trainer.is_global_zero:  # with DDP, rank zero evaluates and draws
        return

    def record(measured: dict, lines: str, phase: str) -> None:
        phases.lap(phase)
        metrics.update(measured)
        log_metrics(trainer.loggers, scalars(measured), step=trainer.global_step)
        log.info(lines)
        run.write_metrics(metrics)

    if cfg.eval.enabled:
        split = cfg.eval.split
        evaluation = evaluate_split(model, datamodule, split, cfg.eval.iw_samples, cfg.eval.chunk_size, cfg.seed)
        record(evaluation, summary(evaluation, split, len(datamodule.splits[split][0])), "evaluation")
    if generation.enabled(cfg):  # how good the generated pictures are
        measured = generation.measure_generation(model, datamodule, cfg.eval.generation.n, cfg.seed)
        record(measured, "\n".join(summary_lines(measured)), "generation")
    if cfg.plots.at_end:  # a figure that does not scale is left out with a warning (vae/results/figures.py)
        paths = draw_all(model, datamodule, run_dir, cfg.seed, cfg.plots)  # figures/, from the best checkpoint
        if cfg.plots.every_n_epochs:  # the loggers' last images (vae/run/callbacks.py, LoggedFigures): these, as saved
            log_images(trainer.loggers, paths, trainer.global_step)
        log_files(trainer.loggers, RunFiles(run_dir).figures, "figures")  # MLflow: the run's artifacts figures/*.png
        phases.lap("figures")
        run.write_metrics(metrics)
