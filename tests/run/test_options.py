"""The training options: binarised MNIST (dynamic, static), the convolutional architecture, a learned
decoder variance, KL warm-up."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch.distributions import Normal

from helpers import TINY_DEV, compose_config
from vae.core.errors import UserError
from vae.data.mnist import MNISTDataModule
from vae.maths.likelihoods import GaussianLikelihood
from vae.maths.networks import ConvDecoder, ConvEncoder


def datamodule(root, **kwargs):
    dm = MNISTDataModule(str(root), dev_size=TINY_DEV, batch_size=32, download=False, **kwargs)
    dm.setup()
    return dm


def epoch_sum(dm) -> torch.Tensor:
    """The sum of the training images served in one epoch: independent of their (shuffled) order."""
    return sum(x.sum(0) for x, _ in dm.train_dataloader())


def test_dynamic_binarisation_draws_new_images_every_epoch(tiny_mnist):
    dm = datamodule(tiny_mnist, binarize="dynamic")
    first, second = epoch_sum(dm), epoch_sum(dm)
    assert not torch.equal(first, second)
    x, _ = next(iter(dm.train_dataloader()))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    # each pixel is 1 with probability its grey level: on average the binary images are the grey ones
    grey = datamodule(tiny_mnist).splits["train"][0].sum(0)
    assert ((first - grey).sum() / grey.sum()).abs() < 0.02


def test_static_binarisation_serves_the_same_images_every_epoch(tiny_mnist):
    dm = datamodule(tiny_mnist, binarize="static")
    assert torch.equal(epoch_sum(dm), epoch_sum(dm))
    assert set(dm.splits["train"][0].unique().tolist()) == {0.0, 1.0}


def test_dev_and_test_are_one_fixed_draw_for_every_run(tiny_mnist):
    dynamic, static = (
        datamodule(tiny_mnist, binarize="dynamic", seed=0),
        datamodule(tiny_mnist, binarize="static", seed=1),
    )
    grey = datamodule(tiny_mnist)
    for split in ("dev", "test"):
        x = dynamic.splits[split][0]
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(x, static.splits[split][0])  # whatever the run's seed and binarize mode
        assert not torch.equal(x, grey.splits[split][0])
    assert not torch.equal(
        datamodule(tiny_mnist, binarize="static", split_seed=1).splits["test"][0], static.splits["test"][0]
    )  # split_seed fixes the draw


def test_unknown_binarize_is_named(tiny_mnist):
    with pytest.raises(UserError, match="data.binarize='yes' is not known"):
        datamodule(tiny_mnist, binarize="yes")


def test_conv_encoder_and_decoder_shapes():
    encoder, decoder = ConvEncoder(channels=8, width=64), ConvDecoder(latent_dim=5, channels=8, width=64)
    assert encoder(torch.rand(3, 1, 28, 28)).shape == (3, encoder.out_features) == (3, 64)
    assert decoder(torch.randn(3, 5)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("per_pixel", [False, True])
def test_learned_gaussian_nll_matches_normal_log_prob(per_pixel):
    likelihood = GaussianLikelihood(sigma=0.3, learn_sigma=True, min_sigma=0.05, per_pixel=per_pixel)
    with torch.no_grad():
        likelihood.s.add_(torch.randn(likelihood.s.shape, generator=torch.Generator().manual_seed(0)))
    x, x_hat = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    sigma = likelihood.sigma
    assert sigma.shape == ((1, 28, 28) if per_pixel else ())
    expected = -Normal(torch.sigmoid(x_hat), sigma.expand(4, 1, 28, 28)).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(likelihood.nll(x, x_hat), expected, rtol=1e-5)


def test_learned_sigma_starts_at_sigma_and_cannot_go_below_the_floor():
    likelihood = GaussianLikelihood(sigma=0.2, learn_sigma=True, min_sigma=0.01)
    assert likelihood.sigma.item() == pytest.approx(0.2)
    with torch.no_grad():
        likelihood.s.fill_(-1000.0)
    assert likelihood.sigma.item() == pytest.approx(0.01)
    with pytest.raises(UserError, match="min_sigma=0.5"):
        GaussianLikelihood(sigma=0.2, learn_sigma=True, min_sigma=0.5)


@pytest.mark.parametrize(
    "overrides",
    [
        ["arch=conv", "arch.channels=4"],
        ["likelihood=gaussian_learned", "likelihood.per_pixel=true"],
        ["arch=conv", "model=ae", "likelihood=bernoulli"],
    ],
    ids=["conv", "learned-sigma", "conv-ae"],
)
def test_model_trains_one_step(overrides, tmp_path):
    """Composed from the config, one optimiser step lowers the loss on its batch and moves every parameter
    (the learned sigma included)."""
    cfg = compose_config([*overrides, "width=32", "latent_dim=3"], tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    optimiser = model.configure_optimizers()
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss = lambda: model(x)["loss"].mean()  # noqa: E731
    with torch.random.fork_rng(devices=[]):
        first = loss()  # the VAE's noise: the same eps before and after the step
    first.backward()
    optimiser.step()
    assert all(not torch.equal(p, before[name]) for name, p in model.named_parameters()), "a parameter did not move"
    assert math.isfinite(first.item()) and loss().item() < first.item()


def test_kl_weight_is_beta_outside_training_with_warmup(tmp_path):
    cfg = compose_config(["kl_warmup_epochs=5", "beta=0.5"], tmp_path)
    model = instantiate(cfg.model)
    assert model.kl_warmup_epochs == 5 and model.kl_weight() == 0.5  # no trainer: val, test, evaluation
