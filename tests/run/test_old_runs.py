"""Runs written before the package took its layers (bcfd08c and earlier) name their classes where they lived then
(`vae.models.VAE`, `vae.callbacks.History`, ...), in .hydra/config.yaml and in every checkpoint: they still load,
redraw, evaluate and resume, to the same numbers as a run written now (vae/core/targets.py, MOVED)."""

import json
import shutil
from pathlib import Path

import torch

from helpers import NO_FIGURES, metrics_without_timing, train_run
from vae.core.targets import MOVED
from vae.run.command_line import prepare_command_line

BEFORE = {new: old for old, new in MOVED.items()}  # vae.maths.models -> vae.models


def old_names(text: str) -> str:
    for new, old in sorted(BEFORE.items(), key=lambda item: -len(item[0])):  # vae.data.mnist before vae.data
        text = text.replace(f"{new}.", f"{old}.")
    return text


def as_written_before(run_dir: Path, copy: Path) -> Path:
    """A copy of a run with every `_target_` and the checkpoints' model class named as before the layers."""
    shutil.copytree(run_dir, copy)
    config = copy / ".hydra" / "config.yaml"
    config.write_text(old_names(config.read_text()))
    for path in (copy / "checkpoints").glob("*.ckpt"):
        saved = torch.load(path, weights_only=True)
        saved["vae_lab_model"] = old_names(saved["vae_lab_model"])
        saved["hyper_parameters"] = json.loads(old_names(json.dumps(saved["hyper_parameters"])))
        torch.save(saved, path)
    return copy


def test_the_copy_names_the_old_classes(vae_run, tmp_path):
    old = as_written_before(vae_run, tmp_path / "old")
    assert "_target_: vae.models.VAE" in (old / ".hydra" / "config.yaml").read_text()
    saved = torch.load(old / "checkpoints" / "best.ckpt", weights_only=True)
    assert saved["vae_lab_model"] == "vae.models.VAE"
    assert saved["hyper_parameters"]["encoder"]["_target_"] == "vae.networks.MLPEncoder"


def test_an_old_run_loads_redraws_and_evaluates(vae_run, tmp_path):
    from vae.files.saved import load_run
    from vae.tools import evaluate, plots

    old = as_written_before(vae_run, tmp_path / "old")
    run, now = load_run(old), load_run(vae_run)
    assert type(run.model) is type(now.model)
    for (name, p), q in zip(run.model.state_dict().items(), now.model.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)
    assert {p.name for p in plots.main([str(old), "--out", str(tmp_path / "figures")])} >= {"samples.png"}
    assert "test/log_likelihood" in evaluate.main([str(old), "--iw-samples", "3"])


def test_an_old_run_resumes_as_a_run_written_now(vae_run, tmp_path):
    old = as_written_before(vae_run, tmp_path / "old")
    new = tmp_path / "new"
    shutil.copytree(vae_run, new)
    for run_dir in (old, new):
        overrides = prepare_command_line(["train.py", f"resume={run_dir}", "epochs=3", *NO_FIGURES])[1:]
        train_run(overrides, run_dir)
    assert metrics_without_timing(old) == metrics_without_timing(new)
    assert metrics_without_timing(old)["epochs"] == 3
