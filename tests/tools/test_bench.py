"""vae/bench.py runs on tiny data and writes every field of its JSON; bad input is one error line. No timing checks."""

import json
import math
import subprocess
import sys

import pytest

from helpers import ROOT

FIELDS = {
    "quick",
    "command",
    "data",
    "machine",
    "settings",
    "epoch",
    "goal",
    "steps",
    "eval",
    "memory",
    "startup",
    "variants",
    "sweep",
}
PIPELINES, MODELS = ("plain", "project", "torchvision"), ("bernoulli_400_20", "lab")


def run_bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "vae.bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
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
            assert (
                steps["ratio"] == pytest.approx(steps["ms"] / steps["plain_ms"]) and steps["ratio_median_of_pairs"] > 0
            )
        assert report["eval"]["iw"][model]["images_per_second"] > 0
        assert set(report["goal"]["models"][model]) == {"project_over_plain", "torchvision_over_project", "holds"}
    assert report["memory"]["peak_rss_mib"] > 0
    startup = report["startup"]
    assert startup["error"] is None, startup
    for name in (
        "import_torch",
        "import_lightning",
        "train_first_step",
        "plots_help",
        "evaluate_help",
        "compare_help",
        "bad_value",
    ):
        assert startup[name]["median"] > 0 and len(startup[name]["rounds"]) == 1, name
    assert set(startup["ratios"]) == {
        "lightning_over_torch",
        "plots_help_over_torch",
        "evaluate_help_over_torch",
        "compare_help_over_torch",
        "first_step_minus_lightning",
    }
    assert startup["ratios"]["lightning_over_torch"] == pytest.approx(
        startup["import_lightning"]["median"] / startup["import_torch"]["median"], abs=0.01
    )
    # the parts not asked for are there, null, with the reason
    assert report["variants"]["skipped"] and report["sweep"]["skipped"]
    assert set(report["variants"]) == {"skipped", "error", "plain_compile", "plain_bf16", "eval_batch"}
    assert report["variants"]["plain_bf16"] == {model: None for model in MODELS}
    assert report["sweep"]["basic"] is None and report["sweep"]["joblib"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rounds", "0"], "--rounds 0"),
        (["--data", "no/such/folder"], "lacks train-images-idx3-ubyte"),
        (["--whole", "--generation"], "each run alone"),
    ],
)
def test_bad_input_is_one_error_line(args, message, tmp_path, capsys):
    from vae.bench import main

    with pytest.raises(SystemExit) as exit_:
        main([*args, "--json", str(tmp_path / "bench.json")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "bench.json").exists()


def test_startup_only_writes_the_start_alone(tiny_mnist, tmp_path, monkeypatch, capsys):
    """--startup-only measures nothing but the start (the measurement itself runs in the quick test above)."""
    import benchmarks.bench

    measured = {"import_torch": {"median": 1.0, "min": 1.0, "max": 1.0, "rounds": [1.0]}, "ratios": {}, "error": None}
    monkeypatch.setattr(benchmarks.bench, "measure_startup", lambda data, threads, rounds, tmp: measured)
    path = tmp_path / "startup.json"
    benchmarks.bench.main(["--startup-only", "--quick", "--data", str(tiny_mnist), "--json", str(path)])
    report = json.loads(path.read_text())
    assert set(report) == {"command", "machine", "startup"} and report["startup"] == measured
    assert "python -c 'import torch'" in capsys.readouterr().out


@pytest.mark.slow
def test_whole_times_the_command_against_the_plain_script_phase_by_phase(tiny_mnist, tmp_path, capsys):
    """--whole: python train.py (with and without the generation measures) and benchmarks/plain_script.py as whole
    processes; each arm's phases add up to its wall time; both train and evaluate (a test log-likelihood each)."""
    from vae.bench import main

    path = tmp_path / "whole.json"
    main(["--whole", "--quick", "--data", str(tiny_mnist), "--json", str(path)])
    out = capsys.readouterr().out
    assert "to plain (paired)" in out and "goal: python train.py at most 1.15 x" in out
    whole = json.loads(path.read_text())["whole"]
    assert set(whole["arms"]) == {"project", "project_no_generation", "plain"} and whole["rounds"] == 1
    for name, arm in whole["arms"].items():
        assert arm["median"] > 0 and arm["ratio_to_plain"] == pytest.approx(
            arm["median"] / whole["arms"]["plain"]["median"]
        )
        assert {"start", "fit", "test", "evaluation", "exit and the rest"} <= set(arm["phases"]), name
        assert sum(arm["phases"].values()) == pytest.approx(arm["median"], rel=1e-9), name
        assert math.isfinite(arm["runs"][0]["test_log_likelihood"]), name
    assert "generation" in whole["arms"]["project"]["phases"]
    assert "generation" not in whole["arms"]["project_no_generation"]["phases"]
    assert whole["holds"] == (whole["arms"]["project"]["ratio_to_plain"] <= 1.15)
    loop = json.loads(path.read_text())["loop"]  # the lab's steps, interleaved with plain ones
    assert set(loop) == {"project", "lightning"} and "Lightning's Trainer alone" in out
    for step in loop.values():
        assert step["steps"] > 0 and step["ratio"] == pytest.approx(step["ms"] / step["plain_ms"])
    iw = json.loads(path.read_text())["eval"]["iw"]["lab"]
    expected = 2 * (2 * 512 + 512 * 784)  # the lab's decoder: 2 -> 512 -> 784
    assert iw["decoder_flops_per_sample"] == expected and 0 < iw["fraction_of_peak"]


def test_generation_times_each_measure(tiny_mnist, tmp_path):
    from vae.bench import main

    path = tmp_path / "generation.json"
    main(["--generation", "--quick", "--data", str(tiny_mnist), "--json", str(path)])
    generation = json.loads(path.read_text())["generation"]
    assert generation["features"] == 128 and 0 <= generation["classifier_accuracy"] <= 1
    assert set(generation["seconds"]) == {
        "classifier training",
        "reference (once per data)",
        "features of 2 N generated",
        "Fréchet distance, means",
        "precision/recall, means",
        "Fréchet distance, samples",
        "precision/recall, samples",
        "all, as a run does",
    }
    assert all(seconds > 0 for seconds in generation["seconds"].values())
