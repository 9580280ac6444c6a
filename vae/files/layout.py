"""The one owner of a run directory's layout: every file train.py writes there is named here, and only here.

    <run>/.hydra/config.yaml, hydra.yaml, overrides.yaml   the composed config, Hydra's own, the command line's
    <run>/checkpoints/best.ckpt, last.ckpt                 the lowest val/loss, and the last epoch
    <run>/metrics.json                                     vae/files/metrics.py
    <run>/history.csv                                      vae/files/history.py
    <run>/figures/                                         vae/results/figures.py
    <run>/traceback.txt, train.log                         an unexpected error's traceback; the log

Every file there is replaced whole (vae/files/writing.py).
"""

from pathlib import Path

CHECKPOINTS = "checkpoints"
BEST, LAST = "best", "last"  # the checkpoints' stems (conf/callbacks/default.yaml names them for Lightning)
CHECKPOINT_SUFFIX = ".ckpt"
# A run's results: what makes a directory used, and what overwrite=true deletes (train.log is appended to).
RESULTS = (".hydra", CHECKPOINTS, "figures", "metrics.json", "history.csv", "traceback.txt", "hparams.yaml", "csv")
EVENTS = ("events.out.tfevents.*", "hpc_ckpt_*.ckpt")  # TensorBoard's files, and Lightning's on SLURM's signal


class RunFiles:
    """The paths of one run directory (which need not exist yet)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    hydra = property(lambda self: self.root / ".hydra")
    config = property(lambda self: self.hydra / "config.yaml")
    hydra_config = property(lambda self: self.hydra / "hydra.yaml")
    overrides = property(lambda self: self.hydra / "overrides.yaml")
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    best = property(lambda self: self.checkpoints / f"{BEST}{CHECKPOINT_SUFFIX}")
    last = property(lambda self: self.checkpoints / f"{LAST}{CHECKPOINT_SUFFIX}")
    metrics = property(lambda self: self.root / "metrics.json")
    history = property(lambda self: self.root / "history.csv")
    figures = property(lambda self: self.root / "figures")
    traceback = property(lambda self: self.root / "traceback.txt")

    def is_run(self) -> bool:
        """True for a directory of train.py (its saved config is there)."""
        return self.config.is_file()

    def is_job(self) -> bool:
        """True for a directory of train.py with its command line saved (every run and sweep job has it)."""
        return self.overrides.is_file()

    def has_checkpoints(self) -> bool:
        return self.checkpoints.is_dir()

    def saved_checkpoint(self) -> Path | None:
        """best.ckpt, else last.ckpt, else None."""
        return next((path for path in (self.best, self.last) if path.is_file()), None)

    def used(self) -> list[str]:
        """The names of an earlier run's results in this directory (empty for a new one; of TensorBoard's event
        files the first only)."""
        found = [name for name in RESULTS if (self.root / name).exists()]
        return found + sorted(path.name for pattern in EVENTS for path in self.root.glob(pattern))[:1]

    def results(self) -> list[Path]:
        """The results of an earlier run in this directory, as paths: what overwrite=true deletes."""
        found = [self.root / name for name in RESULTS if (self.root / name).exists()]
        return found + sorted(path for pattern in EVENTS for path in self.root.glob(pattern))

    @staticmethod
    def of_checkpoint(path: Path) -> "RunFiles":
        """The run directory a checkpoint file lies in (<run>/checkpoints/<name>.ckpt, or <run>/<name>.ckpt)."""
        path = Path(path)
        return RunFiles(path.parent.parent if path.parent.name == CHECKPOINTS else path.parent)
