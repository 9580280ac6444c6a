"""A sweep on a real SLURM cluster through the submitit launcher (hydra/launcher=slurm).

The test starts a one-node cluster from Debian's packages (slurmctld, slurmd, munge; see
../shared/notes/slurm-one-node.md), every file of it in a temporary folder and on free ports, runs a
small sweep on the tiny dataset (DDP inside each job), checks the comparison, and stops the daemons it
started. It skips, saying why, where SLURM is not installed (`apt-get install slurmctld slurmd
slurm-client munge`, as .ci/run does) or cannot be started.
"""

import json
import math
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import TINY_DEV, TINY_TRAIN, job_dirs, run_train, table

pytestmark = pytest.mark.slow
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo")


def find(program: str) -> str | None:
    """The daemons live in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder: Path, node: str) -> str:
    return f"""ClusterName=vaelab
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def stop(pid_files: list[Path]) -> None:
    """Ends the daemons this test started, by the PIDs they wrote."""
    for pid_file in pid_files:
        if pid_file.is_file():
            try:
                os.kill(int(pid_file.read_text().split()[0]), 15)
            except (ProcessLookupError, ValueError):
                pass
    deadline = time.time() + 15
    for pid_file in pid_files:
        while pid_file.is_file() and time.time() < deadline:
            try:
                os.kill(int(pid_file.read_text().split()[0]), 0)
            except (ProcessLookupError, ValueError):
                break
            time.sleep(0.2)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The environment (SLURM_CONF) of a running one-node cluster."""
    missing = [program for program in PROGRAMS if find(program) is None]
    if missing:
        pytest.skip(
            f"SLURM is not installed ({', '.join(missing)} missing): "
            "apt-get install slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the one-node SLURM cluster runs its daemons as root")
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    node = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, node))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pid_files = [folder / "slurmd.pid", folder / "slurmctld.pid", folder / "munged.pid"]
    commands = [
        [find("mungekey"), "--create", f"--keyfile={folder}/munge.key"],
        [
            find("munged"),
            "--force",
            f"--socket={folder}/munge.socket",
            f"--key-file={folder}/munge.key",
            f"--pid-file={folder}/munged.pid",
            f"--log-file={folder}/munged.log",
            f"--seed-file={folder}/munged.seed",
        ],
        [find("slurmctld"), "-f", str(conf)],
        [find("slurmd"), "-f", str(conf)],
    ]
    try:
        for command in commands:
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            if started.returncode != 0:
                pytest.skip(
                    f"SLURM could not be started: {' '.join(command)} failed: "
                    f"{(started.stderr or started.stdout).strip()[-300:]}"
                )
        state = ""
        for _ in range(60):
            state = subprocess.run([find("sinfo"), "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            logs = " | ".join(
                (folder / name).read_text()[-300:]
                for name in ("slurmctld.log", "slurmd.log")
                if (folder / name).is_file()
            )
            pytest.skip(f"SLURM could not be started: the node is {state.strip() or 'not listed'}: {logs}")
        yield env
    finally:
        stop(pid_files)


@pytest.mark.linux
def test_sweep_on_slurm_trains_with_ddp_and_writes_the_comparison(slurm, tiny_overrides, tmp_path):
    """Two SLURM jobs of two tasks each: SLURM starts the DDP processes (two CPU processes, gloo). One job
    fails (an impossible dev split): both are recorded and the comparison follows."""
    result = run_train(
        "-m",
        *tiny_overrides,
        "hydra/launcher=slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=10",
        "threads=1",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "data.dev_size=40,100000",
        f"hydra.sweep.dir={tmp_path}",
        env=slurm,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    logs = sorted((tmp_path / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 4  # each job ran as a SLURM job of two tasks, logged by submitit
    jobs = job_dirs(tmp_path)
    metrics = [json.loads((job / "metrics.json").read_text()) for job in jobs]
    assert [m["status"] for m in metrics] == ["completed", "failed"]
    assert metrics[0]["steps"] == math.ceil((TINY_TRAIN - TINY_DEV) // 2 / 32)  # each process: half the batches
    assert "(torch threads: 1)" in (jobs[0] / "train.log").read_text()
    rows = table((tmp_path / "comparison.md").read_text())
    assert [(row["data.dev_size"], row["status"]) for row in rows] == [("40", "completed"), ("100000", "failed")]
    assert rows[0]["val loss"] == f"{metrics[0]['val/loss']:.2f}"
    assert rows[0]["test loss"] == f"{metrics[0]['test/loss']:.2f}"
    assert "data.dev_size=100000 must be between" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "val_curves.png").is_file() and (tmp_path / "samples_by_run.png").is_file()
