"""End to end: what a training run writes, on a tiny MNIST-format dataset written by the tests (the runs are
trained in this process, by the same vae.run.training.train that train.py calls; the command line itself is tested
with the sweeps of tests/results/test_compare.py and the faults of tests/run/test_faults.py)."""

import gc
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import train_run
from vae.core.errors import UserError

TAGS = {"train/rec", "train/kl", "train/loss", "val/rec", "val/kl", "val/loss"}


def scalar_tags(run_dir: Path) -> set[str]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_run_writes_checkpoints_events_history_and_metrics(vae_run):
    run_dir = vae_run
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert TAGS <= scalar_tags(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val/rec", "val/kl", "val/loss", "test/rec", "test/kl", "test/loss"):
        assert isinstance(metrics[key], float)
    assert metrics["epochs"] == 2 and metrics["parameters"] > 0 and metrics["fit_seconds"] > 0
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    # where the run's seconds went (vae/run/timing.py), phase by phase in the order they ran
    assert list(metrics["seconds"]) == ["start", "fit", "test", "evaluation", "generation", "figures"]
    assert all(seconds >= 0 for seconds in metrics["seconds"].values())
    assert metrics["seconds"]["fit"] >= metrics["fit_seconds"] - 0.01  # the epochs, and the fit's own start and end
    assert abs(metrics["val/loss"] - (metrics["val/rec"] + metrics["val/kl"])) < 1e-3
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_history_has_one_row_per_epoch_and_metrics_take_the_best(vae_run):
    run_dir = vae_run
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert {"epoch", "seconds", *TAGS} <= set(header) and len(lines) == 3
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    best = min(rows, key=lambda row: float(row["val/loss"]))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == int(best["epoch"])
    assert metrics["val/loss"] == pytest.approx(float(best["val/loss"]))


def test_metrics_match_an_independent_evaluation_of_the_best_checkpoint(vae_run, tiny_mnist):
    """test/rec recomputed here with torch.distributions from the checkpoint's weights."""
    import torch
    from torch.distributions import Normal

    from vae.data.mnist import load_split
    from vae.files.saved import load_run

    run_dir = vae_run
    run = load_run(run_dir)
    model, cfg = run.model, run.cfg
    assert run.checkpoint == run_dir / "checkpoints" / "best.ckpt"
    x, _ = load_split(tiny_mnist / "MNIST" / "raw", "test")
    with torch.no_grad():
        q = model.posterior(x)
        mu, log_sigma_squared = q.mu, q.log_sigma_squared
        # Monte-Carlo over z, 200 draws per image: the run's one-sample estimate scatters around this mean
        z = mu + torch.exp(0.5 * log_sigma_squared) * torch.randn(200, *mu.shape)
        mean = torch.sigmoid(model.decoder(z.flatten(0, 1))).view(200, *x.shape)
        rec = -Normal(mean, cfg.likelihood.sigma).log_prob(x).sum(dim=(2, 3, 4)).mean()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/rec"] == pytest.approx(rec.item(), rel=0.02)


def test_train_turns_the_garbage_collector_back_on(tiny_overrides, tmp_path):
    """train.py switches the collector off for its imports (the full collections their growth sets off free next to
    nothing); a run must not go on without it. Without a logger: TensorBoard names its event files by a counter of
    the process and reads a folder's in name order, so one more writer in this process can put a later run's .10
    before its .9 (tests/run/test_loggers.py then reads the start's hp metrics last)."""
    gc.disable()
    try:
        quiet = ["model=ae", "plots.at_end=false", "plots.every_n_epochs=0", "logger=[]"]  # no event file: see below
        train_run([*tiny_overrides, *quiet], tmp_path / "run")
        assert gc.isenabled()
    finally:
        gc.enable()


def test_autoencoder_logs_rec_and_loss(ae_run):
    assert {"train/rec", "train/loss", "val/rec", "val/loss"} <= scalar_tags(ae_run)
    assert not {"train/kl", "val/kl"} & scalar_tags(ae_run)
    metrics = json.loads((ae_run / "metrics.json").read_text())
    assert metrics["test/loss"] == pytest.approx(metrics["test/rec"])
    events = EventAccumulator(str(ae_run), size_guidance={"images": 0})
    events.Reload()  # plots.at_end=false: the refresh after the last epoch is the loggers' images, learning curves too
    assert {"figures/learning_curves", "figures/latent"} <= set(events.Tags()["images"])


def test_missing_data_offline_is_one_clear_message(tmp_path):
    """The message names the folder, the files and the two ways to point at them; metrics.json says failed."""
    empty = tmp_path / "nowhere"
    with pytest.raises(UserError) as error:
        train_run([f"data.root={empty}", "data.download=false"], tmp_path / "run")
    message = str(error.value)
    assert "\n" not in message and str(empty / "MNIST" / "raw") in message
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {"status": "failed", "error": message}
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "data.root",
        "VAE_DATA_DIR",
    ):
        assert name in message


def test_load_run_from_checkpoint_file_and_errors(vae_run, tmp_path):
    from vae.files.saved import load_run

    run_dir = vae_run
    run = load_run(run_dir / "checkpoints" / "last.ckpt")
    assert run.dir == run_dir and run.checkpoint.name == "last.ckpt" and not run.model.training
    with pytest.raises(UserError, match="is not a run of train.py"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "missing")
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / ".hydra").mkdir()
    (broken / ".hydra" / "config.yaml").write_text((run_dir / ".hydra" / "config.yaml").read_text())
    (broken / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="does not load"):
        load_run(broken)
