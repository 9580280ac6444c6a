"""A run directory nothing can damage (vae/run/run_directory.py): a refused command changes no byte of it, a resume
applies what a continuation may change and refuses the rest, a used directory is not trained into twice, a run
directory from elsewhere runs no code, and faults of the machine (a full disk, a read-only folder) end in one line."""

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import NO_FIGURES, ROOT, assert_one_clear_line, run_train, table, train_run
from vae.core.errors import Refused, UserError
from vae.run.command_line import prepare_command_line
from vae.run.run_directory import RunDirectory


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones too) and a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def copy_run(run_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    copy = tmp_path / name
    shutil.copytree(run_dir, copy)
    return copy


def resume(run_dir: Path, *overrides: str) -> list[str]:
    """train.py's command line for `resume=<run_dir> <overrides>`, as prepare_command_line expands it."""
    return prepare_command_line(["train.py", f"resume={run_dir}", *overrides])[1:]


@pytest.mark.parametrize(
    "change,message",
    [
        ("latent_dim=3", "cannot change latent_dim (the run has 2, this command 3)"),
        ("model=ae", "cannot change model (the run has 'vae', this command 'ae')"),
        ("seed=1", "cannot change seed"),
        ("likelihood=bernoulli", "cannot change likelihood (the run has 'gaussian', this command 'bernoulli')"),
        ("lr=-1", "lr=-1 is not valid"),
    ],
)
def test_a_refused_resume_changes_nothing(vae_run, tmp_path, change, message):
    run_dir = copy_run(vae_run, tmp_path)
    before = snapshot(run_dir)
    with pytest.raises(UserError) as error:
        train_run(resume(run_dir, change), run_dir)
    assert message in str(error.value)
    assert snapshot(run_dir) == before
    # and the run still resumes as it was
    assert prepare_command_line(["train.py", f"resume={run_dir}"])[-2].startswith("resume=")


def test_a_resume_applies_the_new_lr_and_epochs(vae_run, tmp_path):
    run_dir = copy_run(vae_run, tmp_path)
    metrics = train_run(resume(run_dir, "epochs=3", "lr=0.05", *NO_FIGURES), run_dir)
    assert metrics["epochs"] == 3 and metrics["status"] == "completed"
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert [group["lr"] for group in last["optimizer_states"][0]["param_groups"]] == [0.05]
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.lr == 0.05 and saved.epochs == 3 and saved.resume == str(run_dir.absolute())
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 3


def test_a_resume_from_a_damaged_or_missing_last_checkpoint_is_refused(vae_run, tmp_path):
    run_dir = copy_run(vae_run, tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])  # cut short, as a full disk or a kill during a copy leaves it
    before = snapshot(run_dir)
    with pytest.raises(Refused, match="last.ckpt is damaged .* cannot be continued"):
        train_run(resume(run_dir), run_dir)
    assert snapshot(run_dir) == before
    last.unlink()
    with pytest.raises(Refused, match="last.ckpt is missing"):
        train_run(resume(run_dir), run_dir)
    assert snapshot(run_dir) == {k: v for k, v in before.items() if k != "checkpoints/last.ckpt"}


def test_a_second_run_into_a_used_directory_is_refused_unless_overwrite(vae_run, tiny_overrides, tmp_path):
    run_dir = copy_run(vae_run, tmp_path)
    before = snapshot(run_dir)
    with pytest.raises(Refused, match=r"already holds a run .*resume=.*overwrite=true"):
        train_run([*tiny_overrides, *NO_FIGURES, "eval.enabled=false"], run_dir)
    assert snapshot(run_dir) == before
    # the command line refuses it at once, before the imports
    with pytest.raises(Refused, match="already holds a run"):
        prepare_command_line(["train.py", f"hydra.run.dir={run_dir}"])

    metrics = train_run([*tiny_overrides, *NO_FIGURES, "eval.enabled=false", "overwrite=true"], run_dir)
    assert metrics["epochs"] == 1 and "test/log_likelihood" not in metrics
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (run_dir / "figures").exists()  # the old run's figures went with it
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 1
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == len(list(vae_run.glob("events.out.tfevents.*")))


def test_a_requeued_slurm_job_continues_its_own_run(vae_run, tmp_path, monkeypatch):
    """SLURM requeues a preempted job by running it again, into the directory it had: it continues from last.ckpt
    (checked as a resume is) instead of being refused as a second run."""
    run_dir = copy_run(vae_run, tmp_path)
    overrides = [*OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"), *NO_FIGURES, "epochs=3"]
    with pytest.raises(Refused, match="already holds a run"):
        train_run(overrides, run_dir)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with pytest.raises(Refused, match="cannot change latent_dim"):
        train_run([*overrides, "latent_dim=3"], run_dir)
    metrics = train_run(overrides, run_dir)
    assert metrics["epochs"] == 3 and len((run_dir / "history.csv").read_text().splitlines()) == 1 + 3


def test_one_process_at_a_time(vae_run, tiny_overrides, tmp_path, capsys):
    from vae.tools import evaluate

    run_dir = copy_run(vae_run, tmp_path)
    with RunDirectory(run_dir):  # as another process training into it holds it
        before = snapshot(run_dir)
        with pytest.raises(Refused, match="is in use: another process"):
            train_run(resume(run_dir, "epochs=3"), run_dir)
        with pytest.raises(SystemExit):
            evaluate.main([str(run_dir), "--iw-samples", "2"])
        assert "is in use" in capsys.readouterr().err
        assert snapshot(run_dir) == before
    with pytest.raises(Refused, match="is in use"):
        with RunDirectory(tmp_path / "new"), RunDirectory(tmp_path / "new"):
            pass


@pytest.mark.slow
def test_a_sweep_job_directory_resumes_whatever_its_name(vae_run, tmp_path):
    """A job directory holds `=` and `,` (0_lr=0.001,width=32); a student's folder may hold spaces and accents.
    The copy resumes in its own directory: the checkpoint's paths follow it, and no best-v1.ckpt appears."""
    run_dir = copy_run(vae_run, tmp_path, "0_lr=0.001,width=32 Überlauf")
    original = snapshot(vae_run)
    result = run_train(f"resume={run_dir}", "epochs=3", *NO_FIGURES)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert snapshot(vae_run) == original  # the original is untouched by its copy's resume


@pytest.mark.parametrize(
    "override",
    ["+callbacks.spy._target_=builtins.print", "hydra.callbacks.x._target_=os.system", "hydra.job.chdir=true"],
)
def test_a_resume_refuses_overrides_that_name_code(vae_run, tmp_path, override):
    run_dir = copy_run(vae_run, tmp_path)
    saved = run_dir / ".hydra" / "overrides.yaml"
    saved.write_text(saved.read_text() + f"- {override}\n")
    with pytest.raises(Refused, match="names code or Hydra's own settings"):
        prepare_command_line(["train.py", f"resume={run_dir}"])


@pytest.mark.slow
@pytest.mark.linux
@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_an_evaluation_in_one_line_and_changes_nothing(vae_run, tmp_path, sent):
    run_dir = copy_run(vae_run, tmp_path)
    before = snapshot(run_dir)
    process = subprocess.Popen(  # it sends itself the signal inside the importance sampling (tests/signal_at.py)
        [
            sys.executable,
            str(ROOT / "tests" / "signal_at.py"),
            "vae.maths.evaluation:importance_sampled",
            "1",
            str(int(sent)),
            "-m",
            "vae.evaluate",
            str(run_dir),
            "--iw-samples",
            "1000000",  # minutes: it is stopped
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    name = "SIGTERM" if sent == signal.SIGTERM else "SIGINT"
    assert stderr.strip().splitlines()[-1].startswith(f"error: stopped by {name}")
    assert snapshot(run_dir) == before


def drop_write_permission() -> list[str]:
    """The prefix that runs a command without the right to write a folder its permissions forbid: as root (CI),
    without CAP_DAC_OVERRIDE, which lets root write anywhere."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root can write read-only folders, and setpriv (util-linux) is missing to drop that right")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.linux
def test_read_only_folders_get_one_line(vae_run, tmp_path):
    prefix = drop_write_permission()
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    run_dir = copy_run(vae_run, read_only, "run")
    before = snapshot(run_dir)
    for folder in (read_only, run_dir):
        folder.chmod(0o555)
    try:

        def run(*command):
            return subprocess.run(
                [*prefix, sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=300
            )

        assert_one_clear_line(
            run(str(ROOT / "train.py"), f"hydra.run.dir={read_only}/new"), f"{read_only}", "not a writable folder"
        )
        assert_one_clear_line(run("-m", "vae.evaluate", str(run_dir)), "metrics.json into", "copy the run")
        assert_one_clear_line(run("-m", "vae.plots", str(run_dir), "--out", str(read_only / "figures")), "figures")
        assert_one_clear_line(run(str(ROOT / "train.py"), f"resume={run_dir}", "epochs=3"), "not a writable folder")
    finally:
        for folder in (read_only, run_dir):
            folder.chmod(0o755)
    assert snapshot(run_dir) == before


def limit_file_size(limit: int):
    """A disk that fills up: files past `limit` bytes cannot be written (EFBIG instead of ENOSPC)."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
@pytest.mark.linux
def test_a_full_disk_ends_in_one_line_and_leaves_no_half_files(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *tiny_overrides, *NO_FIGURES, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size(64_000),  # metrics.json fits; a checkpoint (about 0.5 MB) does not
    )
    assert_one_clear_line(result, "could not write the checkpoint", "best.ckpt")
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "traceback.txt").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "could not write the checkpoint" in metrics["error"]


def test_a_comparison_lists_jobs_whose_metrics_are_damaged(vae_run, ae_run, bernoulli_run, tmp_path):
    """Jobs whose metrics.json holds `[]` or lacks keys: the table says so instead of a traceback."""
    from vae.results.comparison import write_comparison

    sweep = tmp_path / "sweep"
    for num, run in enumerate((vae_run, ae_run, bernoulli_run)):
        job = copy_run(run, sweep, f"{num}_job")
        hydra = OmegaConf.load(job / ".hydra" / "hydra.yaml")
        hydra.hydra.job.num = num
        OmegaConf.save(hydra, job / ".hydra" / "hydra.yaml")
    (sweep / "0_job" / "metrics.json").write_text("[]\n")
    metrics = json.loads((sweep / "1_job" / "metrics.json").read_text())
    for key in ("parameters", "epochs", "fit_seconds", "test/loss"):
        del metrics[key]
    (sweep / "1_job" / "metrics.json").write_text(json.dumps(metrics))
    (sweep / "2_job" / "metrics.json").write_text(json.dumps({"status": "completed", "val/loss": "nan?"}))
    write_comparison(sweep)
    rows = {row["run"]: row for row in table((sweep / "comparison.md").read_text())}
    assert rows["0"]["status"] == "damaged" and rows["2"]["status"] == "damaged"
    assert rows["1"]["status"] == "completed" and rows["1"]["parameters"] == "-" and rows["1"]["test loss"] == "-"
    assert rows["1"]["val loss"] == f"{metrics['val/loss']:.2f}"
    text = (sweep / "comparison.md").read_text()
    assert "metrics.json holds a list" in text and "holds no val/loss" in text
    assert r"\emph{damaged}" in (sweep / "comparison.tex").read_text()


def test_damaged_files_of_a_run_give_one_line_or_are_read_around(vae_run, tmp_path):
    from vae.files.history import read_history
    from vae.files.saved import load_run

    run_dir = copy_run(vae_run, tmp_path)
    lines = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_bytes(("\n".join(lines[:2]) + "\nnot,numbers\n").encode() + b"\xff\xfe\x00" * 50)
    assert [row["epoch"] for row in read_history(run_dir / "history.csv")] == [1.0]
    (run_dir / ".hydra" / "config.yaml").write_text("- a list\n- not a config\n")
    with pytest.raises(UserError, match="config.yaml does not read as a config of train.py"):
        load_run(run_dir)
