"""vae/maths/models.py: the optimiser from its config group (fused Adam: the same updates as torch's default), no NVML
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

import vae.run.environment
from helpers import LIKELIHOODS, TINY_DEV, compose_config, make_model
from vae.core.errors import UserError
from vae.files.saved import load_run


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
    vae.run.environment.skip_failing_nvml_check()
    assert torch.cuda._nvml_based_avail()
    monkeypatch.setattr(ctypes, "CDLL", missing)
    vae.run.environment.skip_failing_nvml_check()
    assert not torch.cuda._nvml_based_avail()


def test_optimizer_group_chooses_the_optimiser(tmp_path):
    model = instantiate(compose_config(["optimizer=adamw", "lr=3e-4", "width=32"], tmp_path).model)
    optimiser = model.configure_optimizers()
    assert type(optimiser) is torch.optim.AdamW and optimiser.defaults["fused"] is True
    assert optimiser.defaults["lr"] == 3e-4 and optimiser.defaults["weight_decay"] == 0.01


LOAD_ALONE = """
import json, sys, torch
from vae.data.mnist import MNISTDataModule
from vae.maths.models import VAE, AutoEncoder
data = MNISTDataModule(root=sys.argv[3], dev_size=int(sys.argv[4]), download=False)
data.setup()
losses = {}
for name, model_class, path in (("vae", VAE, sys.argv[1]), ("ae", AutoEncoder, sys.argv[2])):
    model = model_class.load_from_checkpoint(path, map_location="cpu").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        loss = model(data.splits["dev"][0])["loss"].mean().item()
        losses[name] = {"loss": loss, "latent_dim": model.hparams.latent_dim}
print(json.dumps(losses))
"""


@pytest.mark.slow
def test_checkpoints_load_alone_in_a_fresh_process(vae_run, ae_run, tiny_mnist, tmp_path):
    """VAE/AutoEncoder.load_from_checkpoint(best.ckpt) rebuild the model from the checkpoint alone (no run directory,
    no config) and give the dev loss of the model the tools load from the run."""
    runs = {"vae": vae_run, "ae": ae_run}
    alone = {}
    for kind, run_dir in runs.items():
        alone[kind] = tmp_path / f"{kind}.ckpt"
        shutil.copy(run_dir / "checkpoints" / "best.ckpt", alone[kind])
    result = subprocess.run(
        [sys.executable, "-c", LOAD_ALONE, str(alone["vae"]), str(alone["ae"]), str(tiny_mnist), str(TINY_DEV)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for kind, run_dir in runs.items():
        run = load_run(run_dir)
        torch.manual_seed(0)
        with torch.no_grad():
            expected = run.model(run.datamodule().splits["dev"][0])["loss"].mean().item()
        assert loaded[kind]["loss"] == expected and loaded[kind]["latent_dim"] == run.cfg.latent_dim
    # the AE is deterministic: its dev loss is that of the best epoch, as training logged it
    assert loaded["ae"]["loss"] == pytest.approx(
        json.loads((ae_run / "metrics.json").read_text())["val/loss"], rel=1e-5
    )


def test_a_checkpoint_naming_a_foreign_class_is_refused(vae_run, tmp_path):
    """The hyperparameters of a checkpoint build only this project's classes: nothing from the file runs code."""
    run_dir = tmp_path / "run"
    shutil.copytree(vae_run, run_dir)
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
