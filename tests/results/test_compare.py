"""Sweeps end with the model comparison: vae.compare's table and figures against the runs' own files,
failed and unfinished jobs, the presets, and the parallel launcher and the Optuna sweeper for real."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from helpers import CONF, NO_FIGURES, ROOT, job_dirs, run_train, table
from vae.core.errors import UserError
from vae.results.comparison import write_comparison
from vae.results.sweeps import Job, collect
from vae.results.tables import generation_note
from vae.tools.compare import main as compare_main

FIGURES = ["val_curves.png", "val_rec_curves.png", "val_kl_curves.png", "samples_by_run.png"]


@pytest.mark.slow
def test_sweep_writes_a_table_whose_numbers_are_the_runs_metrics(sweep):
    sweep_dir, result = sweep
    rows = table((sweep_dir / "comparison.md").read_text())
    assert len(rows) == 4
    seen = set()
    for job in job_dirs(sweep_dir):
        overrides = dict(item.split("=", 1) for item in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        metrics = json.loads((job / "metrics.json").read_text())
        [row] = [row for row in rows if row["run"] == job.name.split("_")[0]]
        assert (row["model"], row["latent_dim"]) == (overrides["model"], overrides["latent_dim"])
        assert row["status"] == "completed"
        assert row["val loss"] == f"{metrics['val/loss']:.2f}" and row["val rec"] == f"{metrics['val/rec']:.2f}"
        assert row["val KL"] == (f"{metrics['val/kl']:.2f}" if overrides["model"] == "vae" else "-")
        assert row["test loss"] == f"{metrics['test/loss']:.2f}"
        assert row["parameters"] == f"{metrics['parameters']:,}" and row["epochs run"] == str(metrics["epochs"]) == "2"
        assert row["fit time (s)"] == f"{metrics['fit_seconds']:.0f}"
        seen.add((overrides["model"], overrides["latent_dim"]))
    assert seen == {("ae", "2"), ("ae", "3"), ("vae", "2"), ("vae", "3")}
    losses = [float(row["val loss"]) for row in rows]
    assert losses == sorted(losses)
    # the overrides every run shares are said once, not made columns
    assert "width" not in rows[0] and "`width=32`" in (sweep_dir / "comparison.md").read_text()
    assert "Model comparison" in result.stdout  # the table is printed when the sweep ends
    # each job says where it goes and, without a terminal, prints one summary line per epoch instead of a bar
    for job in job_dirs(sweep_dir):
        assert f"run directory: {job}" in result.stdout
    assert result.stdout.count("epoch 1/2") == 4 and result.stdout.count("epoch 2/2") == 4


@pytest.mark.slow
def test_sweep_writes_latex_and_figures(sweep):
    sweep_dir, _ = sweep
    tex = (sweep_dir / "comparison.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 4 and all(line.endswith(r"\\") for line in body)
    assert r"latent\_dim" in tex and "latent_dim" not in tex.replace(r"latent\_dim", "")
    for name in FIGURES:
        assert (sweep_dir / name).stat().st_size > 10_000, name


@pytest.mark.slow
def test_job_directories_and_tensorboard_runs_are_named_by_their_values(sweep):
    sweep_dir, _ = sweep
    names = [job.name for job in job_dirs(sweep_dir)]
    assert [name.split("_")[0] for name in names] == ["0", "1", "2", "3"]
    assert "latent_dim=2" in names[0] and "model=ae" in names[0] and "model=vae" in names[3]
    assert not any("data.root" in name for name in names)  # paths stay out of the names
    for job in job_dirs(sweep_dir):
        assert list(job.glob("events.out.tfevents.*"))  # `tensorboard --logdir` names the run by its folder


@pytest.mark.slow
def test_compare_on_demand_reproduces_the_files(sweep, tmp_path, capsys):
    sweep_dir, _ = sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns("comparison.*", "*.png"))
    compare_main([str(copy), "--pdf"])
    assert "Model comparison" in capsys.readouterr().out
    for name in ("comparison.md", "comparison.tex"):
        assert (copy / name).read_text() == (sweep_dir / name).read_text().replace(str(sweep_dir), str(copy))
    for name in FIGURES:
        assert (copy / name).is_file() and (copy / name).with_suffix(".pdf").is_file()


@pytest.mark.slow
def test_unfinished_job_is_marked_and_shown_so_far(sweep, tmp_path):
    sweep_dir, _ = sweep
    copy = tmp_path / "running"
    shutil.copytree(sweep_dir, copy)
    stopped = job_dirs(copy)[1]
    (stopped / "metrics.json").unlink()
    history = (stopped / "history.csv").read_text().splitlines()
    (stopped / "history.csv").write_text("\n".join(history[:2]) + "\n")  # killed after its first epoch
    write_comparison(copy)
    [row] = [row for row in table((copy / "comparison.md").read_text()) if row["run"] == "1"]
    first = dict(zip(history[0].split(","), history[1].split(",")))
    assert row["status"] == "unfinished" and row["epochs run"] == "1"
    assert row["val loss"] == f"{float(first['val/loss']):.2f}" and row["test loss"] == "-"
    assert table((copy / "comparison.md").read_text())[-1]["run"] == "1"  # after the completed runs


@pytest.mark.slow
def test_compare_errors_are_one_line(sweep, tmp_path):
    sweep_dir, _ = sweep
    with pytest.raises(UserError, match="is a single run, not a sweep"):
        collect(job_dirs(sweep_dir)[0])
    with pytest.raises(UserError, match="does not exist"):
        collect(tmp_path / "missing")
    result = subprocess.run(
        [sys.executable, "-m", "vae.compare", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {tmp_path} is not a sweep directory: it holds no job directories "
        "(<job>/.hydra/overrides.yaml); give the folder `python train.py -m ...` "
        "printed, e.g. outputs/multirun/<date>/<time>"
    )


@pytest.mark.slow
def test_parallel_sweep_with_failing_jobs_still_writes_the_table(tiny_overrides, tmp_path):
    """joblib runs two jobs at once with one torch thread each; a job with an impossible dev split and the
    jobs that ask for DDP inside a local sweep fail, are recorded, and the sweep goes on."""
    result = run_train(
        "-m",
        *tiny_overrides,
        *NO_FIGURES,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "trainer=default,ddp",
        "trainer.accelerator=cpu",
        "data.dev_size=40,100000",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    rows = {(row["trainer"], row["data.dev_size"]): row for row in table((tmp_path / "comparison.md").read_text())}
    assert len(rows) == 4
    assert rows[("default", "40")]["status"] == "completed" and rows[("default", "40")]["val loss"] != "-"
    for key in [("default", "100000"), ("ddp", "40"), ("ddp", "100000")]:
        assert rows[key]["status"] == "failed" and rows[key]["val loss"] == "-"
    markdown = (tmp_path / "comparison.md").read_text()
    assert markdown.count("data.dev_size=100000 must be between 1 and 239") == 2  # the data is read first
    assert markdown.count("DDP starts its other processes by running the command line again") == 1
    first = table(markdown)[0]
    assert (first["trainer"], first["data.dev_size"]) == ("default", "40")  # the completed run first
    [completed] = [
        job for job in job_dirs(tmp_path) if json.loads((job / "metrics.json").read_text())["status"] == "completed"
    ]
    assert "(torch threads: 1)" in (completed / "train.log").read_text()
    assert (tmp_path / "samples_by_run.png").is_file()


@pytest.mark.slow
def test_optuna_search_minimises_the_val_loss(tiny_overrides, tmp_path):
    result = run_train(
        "-m",
        *tiny_overrides,
        *NO_FIGURES,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    losses = [json.loads((job / "metrics.json").read_text())["val/loss"] for job in job_dirs(tmp_path)]
    assert len(losses) == 2
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(losses))
    rows = table((tmp_path / "comparison.md").read_text())
    assert len(rows) == 2 and "lr" in rows[0] and "width" not in rows[0]  # width=32 on the command line fixes it
    assert all(1e-4 <= float(row["lr"]) <= 1e-2 for row in rows)
    assert rows[0]["val loss"] == f"{min(losses):.2f}"


PRESETS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_sweep_preset_composes(name):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={name}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params and all(len(str(values).split(",")) >= 2 for values in params.values())
    for key in params:
        assert cfg.get(key) is not None or key in cfg.hydra.runtime.choices  # a top-level knob, or a group


def test_presets_cover_the_issue():
    assert {"latent", "width", "lr", "ae_vs_vae", "report"} <= set(PRESETS)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        latent = compose("config", overrides=["sweep=latent"], return_hydra_config=True)
        optuna = compose("config", overrides=["hparams_search=optuna"], return_hydra_config=True)
        slurm = compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
        )
        ddp = compose("config", overrides=["trainer=ddp"], return_hydra_config=True)
    assert latent.hydra.sweeper.params.latent_dim == "2,4,8,16,32"
    assert optuna.hydra.sweeper._target_.endswith("OptunaSweeper") and optuna.hydra.sweeper.direction == "minimize"
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher") and slurm.hydra.launcher.partition == "gpu"
    assert {"timeout_min", "gpus_per_node", "tasks_per_node"} <= set(slurm.hydra.launcher)
    assert ddp.trainer.strategy == "ddp" and ddp.trainer.devices == 2


def generation_job(num: int, floor: float, accuracy: float) -> Job:
    metrics = {"gen/fid_means": 50.0, "gen/fid_floor": floor, "gen/n": 10000, "gen/classifier_accuracy": accuracy}
    return Job(dir=Path(f"/runs/{num}"), num=num, overrides={}, status="completed", metrics=metrics)


def test_the_generation_note_gives_the_floor_and_accuracy_once_or_as_a_span():
    same = generation_note([generation_job(0, 0.2963, 0.9928), generation_job(1, 0.2963, 0.9928)])
    assert "test accuracy 0.9928)" in same and "is 0.30 (a perfect generator)" in same
    assert "N = 10,000" in same and "binarised" not in same
    # a run on binarised test images: its own floor and accuracy, stated as a span from the lowest to the highest
    mixed = generation_note(
        [generation_job(0, 0.2963, 0.9928), generation_job(1, 4.29, 0.9726), generation_job(2, 1.0, 0.98)]
    )
    assert "test accuracy 0.9726 to 0.9928" in mixed and "is 0.30 to 4.29" in mixed and "binarised" in mixed
    assert generation_note([Job(dir=Path("/runs/0"), num=0, overrides={}, status="completed")]) == ""
