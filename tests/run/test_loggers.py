"""conf/logger/: TensorBoard, CSV and MLflow at once each receive the epoch metrics of a run (trained once, in this
process), its hyperparameters and the evaluation's numbers, and the loggers that take images its figures; MLflow's
part is skipped when the optional extra is not installed. A missing extra is one line; a resume may change the
loggers, also of a run trained before they became a group."""

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from helpers import compose_config, train_run
from vae.core.errors import Refused, UserError, exit_on_user_error

MLFLOW = importlib.util.find_spec("mlflow") is not None
EPOCH_METRICS = {"train/rec", "train/kl", "train/loss", "val/rec", "val/kl", "val/loss"}
SMALL_FIGURES = ["plots.grid_size=4", "plots.n_samples=4", "plots.n_reconstructions=4", "plots.n_interpolations=2"]


@pytest.fixture(scope="module")
def logged_run(tiny_overrides, tmp_path_factory):
    """Two epochs with every logger (TensorBoard and CSV without mlflow), the MLflow store in a folder of its own:
    (run directory, its metrics.json, the store's tracking URI or None)."""
    folder = tmp_path_factory.mktemp("loggers")
    run_dir, store = folder / "run", folder / "mlflow"
    loggers = ["logger=many"] if MLFLOW else ["logger=[tensorboard,csv]"]
    if MLFLOW:
        loggers += [
            f"logger.mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
            f"logger.mlflow.artifact_location={store}",
        ]
    overrides = [*tiny_overrides, "epochs=2", "threads=1", "eval.iw_samples=5", *SMALL_FIGURES, *loggers]
    metrics = train_run(overrides, run_dir)
    return run_dir, metrics, f"sqlite:///{store}/mlflow.db" if MLFLOW else None


def epochs(run_dir: Path, name: str) -> list[float]:
    """The values of `name` at the end of each epoch, from history.csv: what every logger must have received, one
    value per epoch (float32 in TensorBoard)."""
    from vae.files.history import read_history

    values = [row[name] for row in read_history(run_dir / "history.csv")]
    assert len(values) == 2
    return pytest.approx(values, rel=1e-6)


def increasing(steps: list[int]) -> bool:
    return all(a < b for a, b in zip(steps, steps[1:]))


def evaluation_scalars(metrics: dict) -> dict:
    from vae.maths.evaluation import scalars

    return scalars(metrics)


def test_tensorboard_receives_epoch_metrics_hp_metrics_evaluation_and_figures(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, metrics, _ = logged_run
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()  # the event files stay directly in the run directory, as with the TensorBoard logger alone
    for name in EPOCH_METRICS:
        scalars = events.Scalars(name)
        assert [event.value for event in scalars] == epochs(run_dir, name), name
        assert increasing([event.step for event in scalars]), name
    assert events.Scalars("hp/test_loss")[-1].value == pytest.approx(metrics["test/loss"])
    evaluation = evaluation_scalars(metrics)
    assert evaluation
    for name, value in evaluation.items():
        assert events.Scalars(name)[-1].value == pytest.approx(value), name
    assert {"figures/latent", "figures/manifold", "figures/samples"} <= set(events.Tags()["images"])


def test_csv_receives_epoch_metrics_and_hyperparameters(logged_run):
    run_dir, metrics, _ = logged_run
    folder = run_dir / "csv" / "version_0"
    with open(folder / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    for name in EPOCH_METRICS:
        logged = [row for row in rows if row[name]]
        assert [float(row[name]) for row in logged] == epochs(run_dir, name), name
        assert increasing([int(row["step"]) for row in logged]), name
    assert {"hp/test_loss", *evaluation_scalars(metrics)} <= set(rows[0])  # the evaluation's numbers, at the end
    hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
    assert hparams["latent_dim"] == 2 and hparams["lr"] == 1e-3 and hparams["model._target_"] == "vae.maths.models.VAE"
    assert not any(key.startswith("logger.") for key in hparams)  # where the numbers go is not a hyperparameter


def test_mlflow_store_receives_hyperparameters_epoch_metrics_evaluation_and_figures(logged_run):
    pytest.importorskip("mlflow", reason="the optional extra mlflow is not installed (uv sync --extra mlflow)")
    from mlflow import MlflowClient

    run_dir, metrics, tracking_uri = logged_run
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(str(run_dir.parent))  # not below the working directory: absolute
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.data.tags["run_dir"] == str(run_dir)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["latent_dim"] == "2" and params["lr"] == "0.001" and params["epochs"] == "2"
    assert not any(key.startswith("logger.") for key in params)
    for name in EPOCH_METRICS:  # MLflow keeps the names with their "/"; one value per epoch, at its step
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.value for m in history] == epochs(run_dir, name), name
        assert increasing([m.step for m in history]), name
    assert run.data.metrics["hp/test_loss"] == pytest.approx(metrics["test/loss"])
    evaluation = evaluation_scalars(metrics)
    assert evaluation
    for name, value in evaluation.items():
        assert run.data.metrics[name] == pytest.approx(value), name
    # figures/*.png of the run directory as artifacts, and the figures of the last epoch as the run's images
    artifacts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert artifacts == {p.name for p in (run_dir / "figures").glob("*.png")} and "manifold.png" in artifacts
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert any(path.startswith("images/figures~latent+step+") for path in images), images


def test_missing_mlflow_is_one_line_before_the_run_directory_is_touched(tiny_overrides, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the optional extra were not installed
    run_dir = tmp_path / "run"
    with pytest.raises(Refused) as error:
        train_run([*tiny_overrides, "logger=mlflow"], run_dir)
    message = str(error.value)
    assert "\n" not in message and "logger.mlflow needs the Python package mlflow" in message
    assert "`uv sync --extra mlflow`" in message
    assert not run_dir.exists()  # nothing written, not even a failed metrics.json
    # as train.py prints it: one line, exit status 1
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(train_run)([*tiny_overrides, "logger=[csv,mlflow]"], run_dir)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: logger.mlflow needs") and "Traceback" not in err


def test_logger_choices_one_several_or_none(tmp_path):
    from vae.files.schema import CONF_DIR
    from vae.run.checks import check_choices
    from vae.run.training import build

    for overrides, kinds in (
        ([], ["TensorBoardLogger"]),
        (["logger=csv"], ["CSVLogger"]),
        (["logger=[tensorboard,csv]"], ["TensorBoardLogger", "CSVLogger"]),
        (["logger=[]"], []),
    ):
        check_choices(overrides, CONF_DIR)
        _, _, trainer, _ = build(compose_config(overrides, tmp_path))
        assert [type(logger).__name__ for logger in trainer.loggers] == kinds, overrides
    composed = compose_config(["logger=many", "~logger.mlflow"], tmp_path)
    assert list(composed.logger) == ["tensorboard", "csv"]
    with pytest.raises(UserError, match=r"logger=null is refused .* logger=\[\] or ~logger"):
        check_choices(["logger=null"], CONF_DIR)
    with pytest.raises(UserError, match="logger=wandb is not an option"):
        check_choices(["logger=[csv,wandb]"], CONF_DIR)


def run_config(overrides: list[str], run_dir: Path):
    """The config train.py passes to vae.run.training.train: composed, without Hydra's own node."""
    composed = compose_config(overrides, run_dir)
    return OmegaConf.masked_copy(composed, [key for key in composed if key != "hydra"])


def test_a_resume_may_change_the_loggers_also_of_a_run_trained_before_they_became_a_group(
    logged_run, tiny_overrides, tmp_path
):
    from vae.run.resume import check_resume

    run_dir, _, _ = logged_run
    old = tmp_path / "old"  # the run as vae-lab wrote it before: one TensorBoard node, the figures' old callback
    shutil.copytree(run_dir / "checkpoints", old / "checkpoints")
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    saved.logger = saved.logger.tensorboard
    saved.callbacks.figures._target_ = "vae.callbacks.TensorBoardFigures"  # where it lived before the layers
    (old / ".hydra").mkdir()
    OmegaConf.save(saved, old / ".hydra" / "config.yaml")
    overrides = [*tiny_overrides, "epochs=3", "threads=1", "eval.iw_samples=5", *SMALL_FIGURES]
    for directory, loggers in ((old, "logger=csv"), (run_dir, "logger=tensorboard"), (old, "logger=[]")):
        cfg = run_config([*overrides, loggers, f"resume={directory}"], directory)
        assert check_resume(cfg, directory) == directory / "checkpoints" / "last.ckpt"
    cfg = run_config([*overrides, "latent_dim=3", f"resume={old}"], old)
    with pytest.raises(Refused, match="cannot change latent_dim"):  # what the checkpoint holds stays fixed
        check_resume(cfg, old)
