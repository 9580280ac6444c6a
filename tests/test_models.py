"""What the LightningModule does for speed without changing the arithmetic: fused Adam, and no NVML probe per step."""

import copy
import ctypes

import torch
from hydra.utils import instantiate

import vae.module
from test_config import compose_config


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
    vae.module.skip_failing_nvml_check()
    assert torch.cuda._nvml_based_avail()
    monkeypatch.setattr(ctypes, "CDLL", missing)
    vae.module.skip_failing_nvml_check()
    assert not torch.cuda._nvml_based_avail()
