"""The process a run trains in: Lightning's messages, and a check that Lightning's import makes slow for nothing.
Called when a run starts (vae/run/training.py), never at import."""

import ctypes
import logging
import os
import warnings


def quiet_lightning() -> None:
    """Lightning's messages once (through Hydra's handlers), without its advertising, a warning that its own code
    triggers on recent torch, and the MLflow logger's warning that a new experiment is new (vae/run/loggers.py says
    where each run goes)."""
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip")
    )
    logging.getLogger("lightning.pytorch.loggers.mlflow").addFilter(
        lambda record: not str(record.msg).endswith("not found. Creating it.")
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def skip_failing_nvml_check() -> None:
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (find GPUs through NVIDIA's library, so that the
    check does not initialise CUDA before DDP forks). Adam.step asks torch.cuda.is_available() at every step; with
    a CUDA build of torch (pip's default on Linux) on a machine without NVIDIA's driver, each of those calls then
    loads libnvidia-ml, fails and falls back to the ordinary check: 0.1 ms per step for nothing. Without the
    library both checks give the same answer, so the variable is dropped."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1":
        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError:
            del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
