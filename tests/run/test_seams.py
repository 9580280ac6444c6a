"""The seams of the newer parts fail as the old ones do: options that only fail against the data, a refused command
that leaves the run's train.log as it was, loggers' stores that do not open, sweep job directories whatever the
overrides, the tools' output folders, and the settings of a GPU or another precision. Each family in the process
first (fast), then as a user starts it."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import NO_FIGURES, ROOT, assert_one_clear_line, compose_config, run_train, train_run
from vae.core.errors import Refused, UserError
from vae.run.stores import check_stores
from vae.run.sweep_jobs import MAX_NAME, job_dir, next_number

TINY_TRAIN = 200  # the tiny data's training split (tests/helpers.py: 240 images less 40 for dev)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- options that only fail against the data -------------------------------------------------------------------


@pytest.mark.parametrize(
    "options,fragments",
    [
        (["prior=vamp", "prior.components=5000"], ["prior.components=5000", f"{TINY_TRAIN} images", "prior.init"]),
        (["batch_size=1000"], ["batch_size=1000", f"{TINY_TRAIN} images", "at most 200"]),
        (["plots.n_reconstructions=41"], ["plots.n_reconstructions=41", "40 images"]),
        (["plots.n_interpolations=21"], ["plots.n_interpolations=21", "at most 20"]),
    ],
)
def test_an_option_the_data_cannot_satisfy_is_one_line_before_training(tiny_overrides, tmp_path, options, fragments):
    with pytest.raises(UserError) as error:
        train_run([*tiny_overrides, *options], tmp_path / "run")
    assert all(fragment in str(error.value) for fragment in fragments), str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # before training: recorded as failed, as a bad value is
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


def test_random_pseudo_inputs_need_no_training_images(tiny_overrides, tmp_path):
    cfg = compose_config([*tiny_overrides, "prior=vamp", "prior.components=5000", "prior.init=random"], tmp_path)
    from vae.run.data_checks import limits

    assert "prior.components" not in [key for key, *_ in limits(cfg, TINY_TRAIN, 40)]


# --- a refused command leaves the run directory byte for byte, train.log included -----------------------------


@pytest.mark.slow
def test_a_refused_resume_adds_no_line_to_the_runs_train_log(vae_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(vae_run, run_dir)
    (run_dir / "train.log").write_text("[2026-12-04 09:00:00][train][INFO] - run directory: ...\n")
    before = snapshot(run_dir)
    result = run_train(f"resume={run_dir}", "latent_dim=3")  # refused once the config is composed
    assert_one_clear_line(result, "cannot change latent_dim")
    assert snapshot(run_dir) == before


# --- the loggers' stores ---------------------------------------------------------------------------------------


def mlflow_config(tmp_path: Path, uri: str):
    return OmegaConf.create({"logger": {"mlflow": {"tracking_uri": uri, "artifact_location": str(tmp_path / "a")}}})


def test_a_damaged_mlflow_store_is_one_line(tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_text("not a database\n")
    with pytest.raises(Refused, match=f"the MLflow store {store} is not an SQLite database"):
        check_stores(mlflow_config(tmp_path, f"sqlite:///{store}"))
    store.unlink()
    check_stores(mlflow_config(tmp_path, f"sqlite:///{store}"))  # a new store: MLflow makes it


def test_an_unreachable_tracking_server_is_one_line(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Refused, match=rf"no MLflow server answers there .*--port {port}"):
        check_stores(mlflow_config(tmp_path, f"http://127.0.0.1:{port}"))


@pytest.mark.slow
def test_a_damaged_store_stops_train_py_before_the_run_directory(tiny_overrides, tmp_path):
    pytest.importorskip("mlflow", reason="the optional extra mlflow is not installed (uv sync --extra mlflow)")
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"\x00" * 64)
    result = run_train(
        *tiny_overrides, "logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{store}", f"hydra.run.dir={tmp_path}/r"
    )
    assert_one_clear_line(result, "logger.mlflow.tracking_uri", str(store), "not an SQLite database")
    assert not (tmp_path / "r" / ".hydra").exists()


# --- sweep job directories -------------------------------------------------------------------------------------


def test_job_directory_names_are_short_unique_and_portable(monkeypatch):
    monkeypatch.delenv("VAE_LAB_FIRST_JOB", raising=False)
    monkeypatch.setenv("VAE_LAB_SWEEP_OVERRIDES", json.dumps(["epochs=2", "model=ae,vae", "data.root=/d"]))
    task = ["epochs=2", "data.root=/d", "model=ae", "latent_dim=8"]  # what one job of `-m model=ae,vae ...` sets
    assert job_dir(3, task, ["data.root"]) == "3_latent_dim=8,model=ae"  # what the job's values are, sorted
    long = [f"key{i}=value_{i}" for i in range(12)]
    names = {job_dir(0, long), job_dir(0, [*long, "x=1"]), job_dir(1, long)}
    assert len(names) == 3 and all(len(name) <= MAX_NAME for name in names)
    assert "/" not in job_dir(0, ["+data.path=/a/b"]) and ":" not in job_dir(0, ["x=c:d"])
    monkeypatch.setenv("VAE_LAB_FIRST_JOB", "4")
    assert job_dir(0, ["lr=0.1"]) == "4_lr=0.1"


def test_a_second_sweep_numbers_its_jobs_after_the_first(tmp_path):
    assert next_number(tmp_path) == 0 and next_number(tmp_path / "absent") == 0
    for name in ("0_lr=0.1", "1_5b2f9c1e", "notes"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n")
    assert next_number(tmp_path) == 2


@pytest.mark.slow
def test_a_sweep_with_a_dozen_overrides_into_a_used_folder(tiny_overrides, tmp_path):
    """Every job's name would be over 255 bytes; the folder holds a job 0 of an earlier sweep."""
    earlier = tmp_path / "0_lr=0.001" / ".hydra"
    earlier.mkdir(parents=True)
    (earlier / "overrides.yaml").write_text("- lr=0.001\n")
    result = run_train(
        "-m",
        *tiny_overrides,
        *NO_FIGURES,
        "eval.enabled=false",
        "plots.n_samples=4",
        "plots.grid_size=3",
        "plots.n_interpolations=2",
        "plots.interpolation_steps=2",
        "plots.n_reconstructions=2",
        "gradient_clip_val=100",
        "kl_warmup_epochs=0",
        "beta=1.0",
        "lr=1e-3,2e-3",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.name for p in tmp_path.iterdir() if (p / "metrics.json").is_file())
    assert [name.partition("_")[0] for name in jobs] == ["1", "2"] and all(len(n) <= MAX_NAME for n in jobs)
    for job in jobs:
        overrides = [str(o) for o in OmegaConf.load(tmp_path / job / ".hydra" / "overrides.yaml")]
        kept = sorted(o for o in overrides if not o.startswith(("data.root=", "hydra.")))
        assert len(",".join(kept)) > 255  # the name a job had before: more than a file system allows
        assert json.loads((tmp_path / job / "metrics.json").read_text())["status"] == "completed"
    assert (tmp_path / "comparison.md").is_file()


# --- the tools' output folders ---------------------------------------------------------------------------------


def test_a_figures_folder_that_cannot_be_made_is_one_line(vae_run, tmp_path, capsys):
    from vae.tools import plots

    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")  # a broken link on the way
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "dangling" / "figures", tmp_path / "file" / "figures"):
        with pytest.raises(SystemExit):
            plots.main([str(vae_run), "--out", str(out), "--device", "cpu"])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: cannot ") and "--out <folder>" in err, err


def test_the_tools_device_is_checked(vae_run, capsys):
    from vae.tools import plots

    with pytest.raises(SystemExit):
        plots.main([str(vae_run), "--device", "tpu:7"])
    assert "--device tpu:7" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            plots.main([str(vae_run), "--device", "cuda"])
        assert "this machine has no such device" in capsys.readouterr().err


# --- a GPU, other precisions -----------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_accelerator_without_a_gpu_is_one_line(tiny_overrides, tmp_path):
    with pytest.raises(UserError, match="trainer.accelerator=gpu: this machine has no such device"):
        train_run([*tiny_overrides, "trainer.accelerator=gpu"], tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_mixed_precision_with_clipping_trains(tiny_overrides, tmp_path):
    """bf16-mixed clips unscaled gradients: the fused Adam kernel (which refuses that) is left out."""
    metrics = train_run([*tiny_overrides, "+trainer.precision=bf16-mixed", *NO_FIGURES], tmp_path)
    assert metrics["status"] == "completed"


def test_the_random_states_of_a_gpu_are_saved_and_restored(monkeypatch):
    from vae.run.checkpoints import RunState

    states, restored = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3], dtype=torch.uint8)], {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # resumed on one GPU of the two it trained on
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.update({device: state}))
    saved = RunState().state_dict()
    assert saved["cuda_rng"] == states and torch.equal(saved["torch_rng"], torch.get_rng_state())
    RunState().load_state_dict(saved)
    assert list(restored) == [0] and torch.equal(restored[0], states[0])


def test_the_evaluation_and_the_figures_run_where_the_model_is(vae_run, monkeypatch):
    """Lightning's test leaves the model on the CPU; finish() moves it back to the training device first."""
    from vae.run import training

    moved = []
    model = torch.nn.Linear(1, 1)
    monkeypatch.setattr(model, "to", lambda device: moved.append(device) or model)

    class Trainer:
        strategy = type("Strategy", (), {"root_device": torch.device("cpu")})()
        is_global_zero, loggers, global_step = True, [], 0

    cfg = OmegaConf.create({"plots": {"at_end": False}, "eval": {"enabled": False}, "seed": 0})
    training.finish(cfg, model, None, Trainer(), type("Run", (), {"path": vae_run})(), {})
    assert moved == [torch.device("cpu")]


# --- no fcntl, no resource (Windows) ---------------------------------------------------------------------------

WITHOUT_POSIX = "import sys, runpy; sys.modules['fcntl'] = None; sys.modules['resource'] = None; "


@pytest.mark.slow
def test_train_evaluate_and_bench_run_without_fcntl_and_resource(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    train = WITHOUT_POSIX + f"sys.argv = {['train.py', *tiny_overrides, *NO_FIGURES, f'hydra.run.dir={run_dir}']!r}; "
    train += "runpy.run_path('train.py', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", train], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert not (run_dir / ".lock").exists()  # filelock's file goes with the lock
    for module, args in (("vae.evaluate", [str(run_dir), "--iw-samples", "2"]), ("vae.bench", ["--help"])):
        code = WITHOUT_POSIX + f"sys.argv = {[module, *args]!r}; runpy.run_module({module!r}, run_name='__main__')"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    assert "iw_samples" in json.loads((run_dir / "metrics.json").read_text())


def test_the_directory_lock_without_flock_refuses_a_second_holder(tmp_path, monkeypatch):
    import filelock

    from vae.run import lock

    monkeypatch.setattr(lock, "flock", lambda: None)  # as on Windows, whose filelock also removes its file
    monkeypatch.setattr(lock, "portable_lock", lambda path, timeout: filelock.SoftFileLock(str(path), timeout=timeout))
    first, second = lock.DirectoryLock(tmp_path), lock.DirectoryLock(tmp_path)
    first.acquire()
    with pytest.raises(Refused, match="is in use"):
        second.acquire()
    first.release()
    assert not (tmp_path / lock.LOCK_FILE).exists()
    second.acquire()
    second.release()
