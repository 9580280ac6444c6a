"""vae/models.py: the optimiser from its config group (fused Adam: the same updates as torch's default), no NVML
probe per step, checkpoints that load alone, and the contract that figures and evaluation use."""

import copy
import ctypes
import json
import shutil
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

import vae.models
from helpers import LIKELIHOODS, TINY_DEV, compose_config, make_model
from vae.errors import UserError
from vae.runs import load_run


def test_fused_adam_makes_the_updates_of_torchs_default_adam(tmp_path):
    model = instantiate(compose_config(["width=32", "latent_dim=3"], tmp_path).model)
    reference = copy.deepcopy(model)
    optimiser = model.configure_optimizers()
    assert isinstance(optimiser, torch.optim.Adam) and optimiser.defaults["fused"] is True
    assert optimiser.defaults["lr"] == model.lr
    default = torch.optim.Adam(reference.parameters(), lr=model.lr)  # torch's own choice of implementation
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for step in range(5):
        eps = torch.randn(16, 3, generator=torch.Generator().manual_seed(step))
        for m, opt in ((model, optimiser), (reference, default)):
            opt.zero_grad()
            m(x, eps)["loss"].mean().backward()
            opt.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_nvml_check_is_dropped_only_without_nvidias_library(monkeypatch):
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1; without libnvidia-ml every torch.cuda.is_available() (one per
    Adam step) would try to load it and fail."""
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # a machine with NVIDIA's driver: kept
    vae.models.skip_failing_nvml_check()
    assert torch.cuda._nvml_based_avail()
    monkeypatch.setattr(ctypes, "CDLL", missing)
    vae.models.skip_failing_nvml_check()
    assert not torch.cuda._nvml_based_avail()


def test_optimizer_group_chooses_the_optimiser(tmp_path):
    model = instantiate(compose_config(["optimizer=adamw", "lr=3e-4", "width=32"], tmp_path).model)
    optimiser = model.configure_optimizers()
    assert type(optimiser) is torch.optim.AdamW and optimiser.defaults["fused"] is True
    assert optimiser.defaults["lr"] == 3e-4 and optimiser.defaults["weight_decay"] == 0.01


@pytest.fixture(scope="module")
def ae_run(tiny_overrides, tmp_path_factory):
    from helpers import run_train

    run_dir = tmp_path_factory.mktemp("run") / "ae"
    result = run_train(*tiny_overrides, "model=ae", "likelihood=bernoulli", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


LOAD_ALONE = """
import json, sys, torch
from vae.data import MNISTDataModule
from vae.models import {cls}
model = {cls}.load_from_checkpoint(sys.argv[1], map_location="cpu").eval()
data = MNISTDataModule(root=sys.argv[2], dev_size={dev}, download=False)
data.setup()
torch.manual_seed(0)
with torch.no_grad():
    print(json.dumps({{"loss": model(data.splits["dev"][0])["loss"].mean().item(), "hparams": dict(model.hparams)}}))
"""


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_checkpoint_loads_alone_in_a_fresh_process(kind, vae_run, ae_run, tiny_mnist, tmp_path):
    """Model.load_from_checkpoint(best.ckpt) rebuilds the model from the checkpoint alone (no run directory, no
    config) and gives the dev loss of the model the tools load from the run."""
    run_dir = vae_run[0] if kind == "vae" else ae_run
    alone = tmp_path / "best.ckpt"
    shutil.copy(run_dir / "checkpoints" / "best.ckpt", alone)
    code = LOAD_ALONE.format(cls="VAE" if kind == "vae" else "AutoEncoder", dev=TINY_DEV)
    result = subprocess.run([sys.executable, "-c", code, str(alone), str(tiny_mnist)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    run = load_run(run_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        expected = run.model(run.datamodule().splits["dev"][0])["loss"].mean().item()
    assert loaded["loss"] == expected
    assert loaded["hparams"]["latent_dim"] == run.cfg.latent_dim
    if kind == "ae":  # deterministic: the dev loss of the best epoch, as training logged it
        assert loaded["loss"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["val/loss"], rel=1e-5)


def test_a_checkpoint_naming_a_foreign_class_is_refused(vae_run, tmp_path):
    """The hyperparameters of a checkpoint build only this project's classes: nothing from the file runs code."""
    run_dir = tmp_path / "run"
    shutil.copytree(vae_run[0], run_dir)
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    saved["hyper_parameters"]["decoder"] = {"_target_": "builtins.open", "file": str(tmp_path / "created")}
    torch.save(saved, checkpoint)
    with pytest.raises(UserError, match="builtins.open.*refusing to build it"):
        load_run(run_dir)
    assert not (tmp_path / "created").exists()


@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_every_model_describes_itself_and_its_likelihood(kind, likelihood):
    model = make_model(kind, latent_dim=2, likelihood=likelihood)
    line = model.describe()
    assert line.startswith("VAE" if kind == "vae" else "auto-encoder") and "latent_dim = 2" in line
    assert ("Bernoulli" if likelihood == "bernoulli" else "Gaussian") in line
    assert ("learned σ" in line) == (likelihood == "gaussian_learned")
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        prior = model.sampling_prior(x)
        z = prior.sample(5)
        assert z.shape == (5, 2) and model.decode(z).shape == (5, 1, 28, 28)
        assert model.encode(x[:3]).shape == (3, 2)
    assert (prior.fitted_to is None) == (kind == "vae")  # the AE's stand-in is fitted to the codes of x
    assert (model.posterior(x[:3]) is None) == (kind == "ae") and (model.prior is None) == (kind == "ae")
    assert set(model.terms) == ({"rec", "kl", "loss"} if kind == "vae" else {"rec"})
