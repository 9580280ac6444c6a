"""Shared fixtures: a tiny MNIST-format dataset written by the tests themselves (IDX files)."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_TRAIN, TINY_TEST, TINY_DEV = 240, 60, 40  # train images, test images, dev images held out of train


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: magic 0x0800 + ndim, the big-endian sizes, the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_mnist(root: Path, n_train: int = TINY_TRAIN, n_test: int = TINY_TEST, folder: str = "MNIST") -> Path:
    """Writes <root>/<folder>/raw/ with four IDX files of blobby 28 x 28 'digits'; returns root."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        yy, xx = np.mgrid[:28, :28]
        # one bright disc per image whose place depends on the label, plus noise: learnable and not blank
        cx, cy = 6 + 2 * labels[:, None, None], 8 + (labels[:, None, None] % 3) * 6
        images = 255 * (((xx - cx) ** 2 + (yy - cy) ** 2) < 25) + rng.integers(0, 40, (n, 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.clip(images, 0, 255))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_overrides(tiny_mnist) -> list[str]:
    """Overrides that make a run fast on the tiny dataset."""
    return [f"data.root={tiny_mnist}", f"data.dev_size={TINY_DEV}", "data.download=false",
            "epochs=1", "width=32", "batch_size=32", "data.eval_batch_size=50"]


def run_train(*args, cwd=ROOT, env=None):
    """train.py in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def vae_run_args(tiny_overrides):
    return [*tiny_overrides, "epochs=2"]


@pytest.fixture(scope="session")
def vae_run(vae_run_args, tmp_path_factory):
    """One finished 2-epoch VAE run on the tiny dataset, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run") / "vae"
    result = run_train(*vae_run_args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir, result
