"""vae/bench.py runs on tiny data and writes every field of its JSON; bad input is one error line. No timing checks."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT

FIELDS = {"quick", "command", "data", "machine", "settings", "epoch", "goal", "steps", "eval", "memory", "startup",
          "variants", "sweep"}
PIPELINES, MODELS = ("plain", "project", "torchvision"), ("bernoulli_400_20", "lab")


def run_bench(*args):
    return subprocess.run([sys.executable, "-m", "vae.bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_quick_run_writes_every_field(tiny_mnist, tmp_path):
    path = tmp_path / "bench.json"
    result = run_bench("--quick", "--rounds", "1", "--data", str(tiny_mnist), "--json", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "QUICK" in result.stdout and "seconds per epoch" in result.stdout
    report = json.loads(path.read_text())
    assert set(report) == FIELDS
    assert report["quick"] is True and report["data"]["kind"] == "mnist" and report["settings"]["rounds"] == 1
    for pipeline in PIPELINES:
        for model in MODELS:
            entry = report["epoch"][pipeline][model]
            assert entry["median"] > 0 and entry["min"] > 0 and entry["max"] >= entry["min"], (pipeline, model)
            assert entry["ratio_to_plain"] > 0 and len(entry["rounds"]) == 1
            assert report["eval"]["dev_pass_seconds"][pipeline][model]["median"] > 0
    for model in MODELS:
        for kind in ("project", "lightning"):  # the training steps, each against an interleaved plain step
            steps = report["steps"][kind][model]
            assert steps["steps"] >= 1 and steps["ms"] > 0 and steps["plain_ms"] > 0, (kind, model, steps)
            assert steps["ratio"] == pytest.approx(steps["ms"] / steps["plain_ms"]) and steps["ratio_median_of_pairs"] > 0
        assert report["eval"]["iw"][model]["images_per_second"] > 0
        assert set(report["goal"]["models"][model]) == {"project_over_plain", "torchvision_over_project", "holds"}
    assert report["memory"]["peak_rss_mib"] > 0
    assert report["startup"]["first_step_seconds"]["median"] > 0, report["startup"]
    assert report["startup"]["import_torch_seconds"] > 0 and report["startup"]["import_lightning_seconds"] > 0
    # the parts not asked for are there, null, with the reason
    assert report["variants"]["skipped"] and report["sweep"]["skipped"]
    assert set(report["variants"]) == {"skipped", "error", "plain_compile", "plain_bf16", "eval_batch"}
    assert report["variants"]["plain_bf16"] == {model: None for model in MODELS}
    assert report["sweep"]["basic"] is None and report["sweep"]["joblib"] is None


@pytest.mark.parametrize("args, message", [
    (["--rounds", "0"], "--rounds 0"),
    (["--data", "no/such/folder"], "lacks train-images-idx3-ubyte"),
])
def test_bad_input_is_one_error_line(args, message, tmp_path):
    result = run_bench(*args, "--json", str(tmp_path / "bench.json"))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bench.json").exists()
