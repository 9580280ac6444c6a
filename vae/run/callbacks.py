"""Lightning callbacks of a run (the checkpoints' random state is in vae/run/checkpoints.py): the per-epoch history,
the guard against a non-finite loss, and the figures in the loggers (TensorBoard, MLflow)."""

import logging
import math
import time
from collections import deque
from pathlib import Path

import lightning as L
from omegaconf import OmegaConf

from vae.core.errors import UserError
from vae.files.history import read_history, write_history
from vae.files.layout import RunFiles
from vae.files.schema import validate

log = logging.getLogger(__name__)


class History(L.Callback):
    """Writes train and val metrics of every epoch to `history.csv` (the data of the learning curves).

    With `print_summary` (None: when the Trainer shows no progress bar, as in CI logs) it also prints one line per
    epoch.
    """

    def __init__(self, path: str, print_summary: bool | None = None):
        self.path = Path(path)
        self.print_summary = print_summary
        self.rows: list[dict] = []
        self.untrained_loss: float | None = None  # the loss of the first step, before any update
        self._start = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.untrained_loss is None and not self.rows and batch_idx == 0:
            self.untrained_loss = float(outputs["loss"])

    def on_train_start(self, trainer, pl_module):
        if self.print_summary is None:
            self.print_summary = trainer.progress_bar_callback is None

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.split("/")[0] in ("train", "val")
        }
        row = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "seconds": round(time.perf_counter() - self._start, 3),
            **dict(sorted(metrics.items())),
        }
        self.rows.append(row)
        if trainer.is_global_zero:
            write_history(self.path, self.rows)
            if self.print_summary:
                shown = "  ".join(f"{name} {value:.2f}" for name, value in sorted(metrics.items()))
                log.info(f"epoch {row['epoch']}/{trainer.max_epochs}  {shown}  ({row['seconds']:.1f} s)")

    def best(self, monitor: str = "val/loss") -> dict:
        """The epoch row with the lowest `monitor`: the epoch of the best checkpoint."""
        return min((row for row in self.rows if monitor in row), key=lambda row: row[monitor])

    def diverged(self, lr: float, monitor: str = "val/loss") -> str | None:
        """Why the run counts as diverged, or None: its best `monitor` is worse than the untrained model's loss by
        as much again (no noise does that; a learning rate that blew the weights up does)."""
        best = self.best(monitor)[monitor]
        start = self.untrained_loss
        if start is None or not best > start + abs(start):
            return None
        return (
            f"training diverged: the best {monitor} {best:.4g} is far worse than the untrained model's loss "
            f"{start:.4g} (its first step); lower the learning rate (lr={lr}) and train again"
        )

    def state_dict(self) -> dict:
        return {"rows": self.rows, "untrained_loss": self.untrained_loss}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])
        self.untrained_loss = state_dict.get("untrained_loss")


class FiniteLoss(L.Callback):
    """Stops training at the first non-finite training loss, before a checkpoint can store the
    ruined weights (checkpoints are written at the end of each epoch)."""

    def __init__(self, keep: int = 5):
        self.recent: deque[tuple[int, float]] = deque(maxlen=keep)  # (step, loss) of the last finite steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = float(outputs["loss"])
        if math.isfinite(loss):
            self.recent.append((trainer.global_step, loss))
            return
        recent = ", ".join(f"{value:.2f} (step {step})" for step, value in self.recent) or "none"
        saver = getattr(trainer, "checkpoint_callback", None)  # its folder is <run>/checkpoints
        last = RunFiles(Path(saver.dirpath).parent).last if saver and saver.dirpath else None
        kept = (
            f"{last} from the last finished epoch is intact"
            if last and last.is_file()
            else "no epoch had finished, so there is no checkpoint"
        )
        raise UserError(
            f"the training loss became {loss} at step {trainer.global_step} (epoch {trainer.current_epoch + 1}); "
            f"the last finite losses: {recent}. Lower the learning rate (lr={pl_module.lr}) and keep gradient "
            f"clipping on (gradient_clip_val={trainer.gradient_clip_val}), then train again; {kept}"
        )


class LoggedFigures(L.Callback):
    """Sends the figures of vae/results/figures.py to every logger that takes images (tags figures/<name>: TensorBoard's
    IMAGES tab, MLflow's run images; vae/run/loggers.py) every `plots.every_n_epochs` epochs, on rank zero, so the
    manifold can be watched as it forms; drawn at `plots.logged_dpi` (a quarter of the pixels of figures/ at 75 dpi:
    half the time), all but the learning curves. After the last epoch the end's figures/ (vae/run/training.py) go to
    the loggers instead, drawn once for both; with plots.at_end=false this callback draws them then, learning curves
    too. Nothing is drawn when no logger takes images."""

    def __init__(self, plots, seed: int = 0):
        self.plots = OmegaConf.to_container(plots, resolve=True) if OmegaConf.is_config(plots) else dict(plots)
        validate({"plots": self.plots})  # matplotlib is imported when the first figure is drawn, not before training
        self.every_n_epochs = self.plots["every_n_epochs"]
        self.seed = seed

    @staticmethod
    def last_epoch(trainer) -> bool:
        return trainer.current_epoch + 1 == trainer.max_epochs

    def due(self, trainer) -> bool:
        if not self.every_n_epochs or trainer.sanity_checking or not trainer.is_global_zero:
            return False
        if self.last_epoch(trainer):  # the end's figures/ are sent then, unless the run draws none
            return not self.plots.get("at_end", True)
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_train_epoch_end(self, trainer, pl_module):
        if not self.due(trainer):
            return
        from vae.run.loggers import image_writers

        writers = image_writers(trainer.loggers)
        datamodule = trainer.datamodule
        if not writers or not getattr(datamodule, "splits", None):
            return
        from vae.results.figures import figures, to_rgb

        # the learning curves only after the last epoch: until then the loggers plot the same losses themselves
        # (TensorBoard's SCALARS), and they are the dearest figure to draw
        last = self.last_epoch(trainer)
        history = read_history(RunFiles(trainer.default_root_dir).history) if last else None  # this epoch's row too
        for name, fig in figures(pl_module, datamodule, history, self.seed, self.plots).items():
            image = to_rgb(fig, dpi=self.plots.get("logged_dpi"))
            for write in writers:
                write(f"figures/{name}", image, trainer.global_step)


class StartFromData(L.Callback):
    """When training starts, the model gets the training images of the data module it is given (a VampPrior's
    pseudo-inputs start as some; a resume restores them afterwards)."""

    def __init__(self, datamodule):
        self.datamodule = datamodule

    def on_fit_start(self, trainer, pl_module):
        if self.datamodule.splits:
            pl_module.start_from_data(self.datamodule.splits["train"][0])


class OptimiserSettings(L.Callback):
    """The optimiser's settings are the model's config, also on resume, where Lightning restores the checkpoint's
    (`resume=<run> lr=0.05` would otherwise train on at the old lr while the saved config says 0.05)."""

    def on_train_start(self, trainer, pl_module):
        settings = {key: tuple(v) if isinstance(v, list) else v for key, v in pl_module.hparams.optimizer.items()}
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group.update({key: value for key, value in settings.items() if key in group})


TensorBoardFigures = LoggedFigures  # its name until the loggers became a group: configs written before name it
