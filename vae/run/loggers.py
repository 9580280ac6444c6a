"""The run's loggers (conf/logger/): built from the config, and the one place that knows what each kind takes
besides the metrics the model logs, which Lightning sends to every logger itself.

    loggers = build_loggers(cfg)                        # a list: one per entry of cfg.logger, [] for logger=[]
    log_hyperparameters(loggers, params, hp_metrics)    # hp_metrics: TensorBoard's HPARAMS tab links them
    log_metrics(loggers, metrics, step)                 # the hp/ metrics, the evaluation's numbers
    image_writers(loggers)                              # the figures while training (TensorBoard, MLflow)
    log_files(loggers, folder, artifact_path)           # figures/*.png at the end (MLflow's artifacts)
    finalize(loggers)

What each kind takes (a logger of another kind gets the metrics and the hyperparameters only):

    TensorBoard   metrics, hyperparameters with hp metrics, images
    MLflow        metrics, hyperparameters, images (log_image: a step slider in its UI), files (artifacts)
    CSV           metrics, hyperparameters (hparams.yaml)

Whether a logger's package is installed is checked before any of this, with the config (vae/files/schema.py,
check_packages): a missing optional extra is one line, not an error deep inside Lightning.
"""

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger

from vae.run.lock import file_lock

ImageWriter = Callable[[str, object, int], None]  # write(tag, (height, width, 3) uint8 array, step)
SQLITE = "sqlite:///"
log = logging.getLogger(__name__)


def build_loggers(cfg) -> list[Logger]:
    """Every logger of cfg.logger, a mapping of name to `_target_` node (logger=[]: none; ~logger.csv or
    logger.csv=null leaves one out of several)."""
    from hydra.utils import instantiate

    return [instantiate(node) for node in (cfg.get("logger") or {}).values() if node is not None]


def log_hyperparameters(loggers: list[Logger], params: dict, hp_metrics: dict) -> None:
    """The run's hyperparameters to every logger; TensorBoard also gets `hp_metrics` (placeholders that the run's
    log_metrics fills in), so that its HPARAMS tab shows them beside the values."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, hp_metrics)
        else:
            logger.log_hyperparams(params)


def log_metrics(loggers: list[Logger], metrics: dict, step: int) -> None:
    for logger in loggers:
        logger.log_metrics(metrics, step=step)


def image_writer(logger: Logger) -> ImageWriter | None:
    """write(tag, image, step) for a logger that takes images ((height, width, 3) uint8), or None (CSV)."""
    if isinstance(logger, TensorBoardLogger):  # the IMAGES tab
        return lambda tag, image, step: logger.experiment.add_image(tag, image, step, dataformats="HWC")
    if isinstance(logger, LightningMLFlowLogger):  # the run's images, one per step under its key
        return lambda tag, image, step: logger.experiment.log_image(logger.run_id, image, key=tag, step=step)
    return None


def image_writers(loggers: list[Logger]) -> list[ImageWriter]:
    return [writer for writer in map(image_writer, loggers) if writer is not None]


def log_images(loggers: list[Logger], paths: list[Path], step: int) -> None:
    """The PNG files `paths` (figures/<name>.png) to every logger that takes images, as figures/<name> at `step`:
    the pictures as saved, read back rather than drawn again."""
    writers = image_writers(loggers)
    if not writers:
        return
    import numpy as np
    from PIL import Image

    for path in (Path(p) for p in paths if Path(p).suffix == ".png"):
        with Image.open(path) as png:
            image = np.asarray(png.convert("RGB"))
        for write in writers:
            write(f"figures/{path.stem}", image, step)


def log_files(loggers: list[Logger], folder: Path, artifact_path: str) -> None:
    """The files of `folder` to every logger that keeps files (MLflow: the run's artifacts under artifact_path)."""
    if not Path(folder).is_dir():
        return
    for logger in loggers:
        if isinstance(logger, LightningMLFlowLogger):
            logger.experiment.log_artifacts(logger.run_id, str(folder), artifact_path)


def finalize(loggers: list[Logger], status: str = "success") -> None:
    for logger in loggers:
        logger.finalize(status)


def shown(path: Path) -> str:
    """`path` relative to the working directory where it lies below it (outputs/2026-11-29), else absolute."""
    path = Path(path).absolute()
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


class MLFlowLogger(LightningMLFlowLogger):
    """Lightning's MLFlowLogger for a local store that all runs share, parallel jobs included:

    - a relative store (sqlite:///outputs/mlflow/mlflow.db) and artifact location are made absolute, and the store's
      folder is made (SQLite does not make it);
    - the store, the experiment and each run are created under a file lock beside the store: MLflow fails when two
      processes (a sweep's parallel jobs, DDP's processes) create the same store or experiment at once;
    - null names follow the run directory: the experiment is the folder that holds it (a sweep's folder, or
      outputs/<date> for single runs), the run is its own name (<time>, or a sweep job's 3_lr=0.001); the tag
      run_dir holds its absolute path.
    """

    def __init__(
        self,
        run_dir: str,
        tracking_uri: str | None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        artifact_location: str | None = None,
        tags: dict | None = None,
        **kwargs,
    ):
        run_dir = Path(run_dir).absolute()
        self._lock_file: Path | None = None
        if tracking_uri and tracking_uri.startswith(SQLITE):  # a local store: absolute, its folder made, a lock beside
            database = Path(tracking_uri[len(SQLITE) :]).absolute()
            database.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"{SQLITE}{database}"
            self._lock_file = database.with_name(f"{database.name}.lock")
        if artifact_location and "://" not in artifact_location:  # a local folder: absolute, whatever the cwd
            artifact_location = str(Path(artifact_location).absolute())
        with self._store_lock():  # Lightning's constructor opens the store: it creates and migrates a new one
            super().__init__(
                experiment_name=experiment_name or shown(run_dir.parent),
                run_name=run_name or run_dir.name,
                tracking_uri=tracking_uri,
                tags={"run_dir": str(run_dir), **(tags or {})},
                artifact_location=artifact_location,
                **kwargs,
            )

    @contextlib.contextmanager
    def _store_lock(self):
        if self._lock_file is None:  # a tracking server serialises its clients itself
            yield
            return
        with file_lock(self._lock_file):
            yield

    @property
    def experiment(self):
        """The MLflow client; its first use creates the experiment (if new) and the run, under the lock."""
        if self._initialized:
            return self._mlflow_client
        with self._store_lock():
            client = super().experiment
        if self._initialized:  # rank zero has created the run (the other processes of DDP get a dummy)
            log.info(f"MLflow: run {self._run_name!r} of experiment {self._experiment_name!r} in {self._tracking_uri}")
        return client
