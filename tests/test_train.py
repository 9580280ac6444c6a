"""End to end: train.py as a user runs it, on a tiny MNIST-format dataset written by the test."""

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import run_train
TAGS = {"train/rec", "train/kl", "train/loss", "val/rec", "val/kl", "val/loss"}


def scalar_tags(run_dir: Path) -> set[str]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_run_writes_checkpoints_events_history_and_metrics(vae_run):
    run_dir, result = vae_run
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert TAGS <= scalar_tags(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val/rec", "val/kl", "val/loss", "test/rec", "test/kl", "test/loss"):
        assert isinstance(metrics[key], float)
    assert metrics["epochs"] == 2 and metrics["parameters"] > 0 and metrics["fit_seconds"] > 0
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    assert abs(metrics["val/loss"] - (metrics["val/rec"] + metrics["val/kl"])) < 1e-3
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert str(run_dir) in result.stdout  # says where the run went


def test_history_has_one_row_per_epoch_and_metrics_take_the_best(vae_run):
    run_dir, result = vae_run
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert {"epoch", "seconds", *TAGS} <= set(header) and len(lines) == 3
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    best = min(rows, key=lambda row: float(row["val/loss"]))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == int(best["epoch"])
    assert metrics["val/loss"] == pytest.approx(float(best["val/loss"]))
    # without a terminal: one summary line per epoch instead of a progress bar
    assert result.stdout.count("epoch 1/2") == 1 and result.stdout.count("epoch 2/2") == 1


def test_metrics_match_an_independent_evaluation_of_the_best_checkpoint(vae_run, tiny_mnist):
    """test/rec recomputed here with torch.distributions from the checkpoint's weights."""
    import torch
    from torch.distributions import Normal

    from vae.data import load_split
    from vae.runs import load_run

    run_dir, _ = vae_run
    run = load_run(run_dir)
    model, cfg = run.model, run.cfg
    assert run.checkpoint == run_dir / "checkpoints" / "best.ckpt"
    x, _ = load_split(tiny_mnist / "MNIST" / "raw", "test")
    with torch.no_grad():
        q = model.posterior(x)
        mu, log_sigma_squared = q.mu, q.log_sigma_squared
        recs = []
        for _ in range(200):  # Monte-Carlo over z: the run's one-sample estimate scatters around this mean
            z = mu + torch.exp(0.5 * log_sigma_squared) * torch.randn_like(mu)
            mean = torch.sigmoid(model.decoder(z))
            recs.append(-Normal(mean, cfg.likelihood.sigma).log_prob(x).sum(dim=(1, 2, 3)).mean())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/rec"] == pytest.approx(torch.stack(recs).mean().item(), rel=0.02)


def test_autoencoder_logs_rec_and_loss(tiny_overrides, tmp_path):
    result = run_train(*tiny_overrides, "model=ae", "likelihood=bernoulli", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"train/rec", "train/loss", "val/rec", "val/loss"} <= scalar_tags(tmp_path)
    assert not {"train/kl", "val/kl"} & scalar_tags(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test/loss"] == pytest.approx(metrics["test/rec"])


def test_multirun_gives_one_directory_per_job(tiny_overrides, tmp_path):
    result = run_train("-m", *tiny_overrides, "lr=1e-3,1e-4", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name.split("_")[0] for p in jobs] == ["0", "1"]  # <job number>_<its overrides>
    assert "lr=0.001" in jobs[0].name and "lr=0.0001" in jobs[1].name
    lrs = [(job / ".hydra" / "overrides.yaml").read_text() for job in jobs]
    assert "lr=0.001" in lrs[0] and "lr=0.0001" in lrs[1]
    for job in jobs:
        assert (job / "metrics.json").is_file() and (job / "checkpoints" / "last.ckpt").is_file()


def test_missing_data_offline_is_one_clear_message(tmp_path):
    empty = tmp_path / "nowhere"
    result = run_train(f"data.root={empty}", "data.download=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert str(empty / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte", "data.root", "VAE_DATA_DIR"):
        assert name in message


def test_load_run_from_checkpoint_file_and_errors(vae_run, tmp_path):
    from vae.errors import UserError
    from vae.runs import load_run

    run_dir, _ = vae_run
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
