"""What several test files share: the tiny MNIST-format dataset, composing the config, building small
models, starting train.py as a user does, reading what a run or a sweep wrote, and a linear-Gaussian model whose
log p(x) is known in closed form (the reference of the importance-weighted bound)."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict
from torch import nn
from torch.distributions import MultivariateNormal, Normal

from vae.maths.elbo import DiagonalGaussian
from vae.maths.evaluation import importance_sampled
from vae.maths.priors import StandardNormal

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY_TRAIN, TINY_TEST, TINY_DEV = 240, 60, 40  # train images, test images, dev images held out of train
NO_FIGURES = ["plots.every_n_epochs=0", "plots.at_end=false"]  # for runs whose figures no test looks at: seconds each
TIMING = {
    "fit_seconds",
    "eval_seconds",
    "seconds",
}  # the only fields of metrics.json allowed to differ between identical runs


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


def compose_config(overrides, output_dir):
    """conf/config.yaml with `overrides`, as train.py composes it, its output directory set to output_dir."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


LIKELIHOODS = {path.stem: OmegaConf.to_container(OmegaConf.load(path)) for path in (CONF / "likelihood").glob("*.yaml")}


def make_model(
    kind: str = "vae",
    latent_dim: int = 2,
    likelihood: str | dict = "gaussian",
    width: int = 32,
    seed: int = 0,
    **settings,
):
    """A small MLP model of the project (kind vae, iwae or ae), built from config nodes as train.py builds it."""
    import torch

    from vae.maths.models import IWAE, VAE, AutoEncoder

    torch.manual_seed(seed)
    model_class = {"vae": VAE, "iwae": IWAE, "ae": AutoEncoder}[kind]
    return model_class(
        encoder={"_target_": "vae.maths.networks.MLPEncoder", "width": width},
        decoder={"_target_": "vae.maths.networks.MLPDecoder", "latent_dim": latent_dim, "width": width},
        likelihood=LIKELIHOODS[likelihood] if isinstance(likelihood, str) else likelihood,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
        latent_dim=latent_dim,
        **settings,
    )


def train_run(overrides: list[str], run_dir: Path) -> dict:
    """One training run in this process, as `python train.py <overrides> hydra.run.dir=<run_dir>` runs it (same
    config, same vae.run.training.train and vae.run.run_directory.RunDirectory, a failure recorded in metrics.json and
    raised), without the seconds a new process spends importing. Returns metrics.json."""
    from vae.run.run_directory import RunDirectory
    from vae.run.training import train

    run = RunDirectory(run_dir)
    composed = compose_config(list(overrides), run_dir)
    cfg = OmegaConf.masked_copy(composed, [key for key in composed if key != "hydra"])  # what @hydra.main passes
    try:
        return train(cfg, run)
    except Exception as error:
        run.record_failure(error, cfg)
        raise
    finally:
        run.close()


def run_train(*args, cwd=ROOT, env=None):
    """train.py in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def run_tool(tool: str, *args):
    """python -m vae.<tool> in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"vae.{tool}", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


def assert_one_clear_line(result, *fragments):
    """Exit status 1, no traceback, and a last line `error: ...` holding every fragment."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last


def metrics_without_timing(run_dir: Path) -> dict:
    return {k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if k not in TIMING}


def table(markdown: str) -> list[dict]:
    """The rows of the first table in comparison.md as {column: cell}."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name.split("_")[0]))


def plot_defaults() -> dict:
    """The `plots` block of conf/config.yaml."""
    return OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml").plots)


class IdentityMeanGaussian(nn.Module):
    """p(x | z) = N(x; x_hat, sigma^2 I): with a linear decoder, p(x) is Gaussian in closed form."""

    def __init__(self, sigma):
        super().__init__()
        self.sigma = sigma

    def nll(self, x, x_hat):
        return -Normal(x_hat, self.sigma).log_prob(x).sum(-1)


class LinearGaussian(nn.Module):
    """z ~ N(0, I_n), x = W z + b + sigma * noise: p(x) = N(b, W W^T + sigma^2 I).

    q(z | x) is the exact posterior's mean shifted by `shift` and its diagonal variance inflated by
    `inflate`: a deliberately imperfect proposal, so that the bound is loose at K = 1.
    """

    def __init__(self, data_dim=6, latent_dim=2, sigma=0.5, shift=0.1, inflate=1.5):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.decoder = nn.Linear(latent_dim, data_dim)
        with torch.no_grad():
            self.decoder.weight.copy_(torch.randn(data_dim, latent_dim, generator=generator))
            self.decoder.bias.copy_(torch.randn(data_dim, generator=generator))
        self.likelihood = IdentityMeanGaussian(sigma)
        self.prior = StandardNormal(latent_dim)
        self.sigma, self.shift, self.inflate = sigma, shift, inflate

    def posterior(self, x):
        W, b, s2 = self.decoder.weight, self.decoder.bias, self.sigma**2
        covariance = torch.linalg.inv(torch.eye(W.shape[1]) + W.T @ W / s2)
        mean = (x - b) @ W @ covariance / s2  # covariance is symmetric
        log_sigma_squared = torch.log(self.inflate * torch.diagonal(covariance)).expand_as(mean)
        return DiagonalGaussian(mean + self.shift, log_sigma_squared)

    def log_p(self, x):
        W, b = self.decoder.weight, self.decoder.bias
        return MultivariateNormal(b, W @ W.T + self.sigma**2 * torch.eye(len(b))).log_prob(x)

    def sample(self, n, generator):
        W, b = self.decoder.weight, self.decoder.bias
        z = torch.randn(n, W.shape[1], generator=generator)
        return z @ W.T + b + self.sigma * torch.randn(n, len(b), generator=generator)


@torch.no_grad()
def assert_converges_to_exact(model, chunk_size: int, one_sample_below: float) -> None:
    """With K = 5000 the estimate is the model's exact log p(x) (20 images); with K = 1 (the ELBO, an imperfect
    proposal) it is clearly below."""
    generator = torch.Generator().manual_seed(1)
    x = model.sample(20, generator)
    exact = model.log_p(x)
    estimate = importance_sampled(model, x, iw_samples=5000, chunk_size=chunk_size, generator=generator)
    assert (estimate["log_likelihood"] - exact).abs().max() < 0.05
    one_sample = importance_sampled(model, x, iw_samples=1, chunk_size=chunk_size, generator=generator)
    assert (exact - one_sample["log_likelihood"]).mean() > one_sample_below
