"""The ELBO's terms (vae/maths/elbo.py, vae/maths/likelihoods.py, vae/maths/priors.py) against torch.distributions, the
reductions, gradients through the sample, and the one reparameterisation that training and evaluation share."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal
from torch.distributions import kl_divergence as reference_kl

from helpers import make_model
from vae.maths.elbo import DiagonalGaussian, kl_divergence, log_normal
from vae.maths.likelihoods import BernoulliLikelihood, GaussianLikelihood
from vae.maths.priors import FittedGaussian, StandardNormal


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, log_sigma_squared = torch.randn(16, 5), torch.randn(16, 5)
    q = Normal(mu, torch.exp(0.5 * log_sigma_squared))
    p = Normal(torch.zeros(5), torch.ones(5))
    expected = reference_kl(q, p).sum(-1)
    assert torch.allclose(kl_divergence(mu, log_sigma_squared), expected, atol=1e-5)


def test_kl_is_zero_at_the_prior():
    assert torch.equal(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))


@pytest.mark.parametrize("sigma", [0.1, 1 / math.sqrt(2), 1.0, 2.5])
def test_gaussian_nll_matches_normal_log_prob(sigma):
    torch.manual_seed(0)
    x, x_hat = torch.rand(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    expected = -Normal(torch.sigmoid(x_hat), sigma).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(GaussianLikelihood(sigma).nll(x, x_hat), expected, rtol=1e-5)


def test_gaussian_nll_is_scaled_squared_error_plus_constant():
    torch.manual_seed(0)
    x, x_hat = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    sigma = 0.3
    squared_error = ((x - torch.sigmoid(x_hat)) ** 2).sum(dim=(1, 2, 3))
    constant = 784 * math.log(sigma * math.sqrt(2 * math.pi))
    assert torch.allclose(GaussianLikelihood(sigma).nll(x, x_hat), squared_error / (2 * sigma**2) + constant)


def test_bernoulli_nll_matches_bernoulli_log_prob():
    torch.manual_seed(0)
    x, logits = torch.bernoulli(torch.rand(8, 1, 28, 28)), 3 * torch.randn(8, 1, 28, 28)
    expected = -Bernoulli(logits=logits).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(BernoulliLikelihood().nll(x, logits), expected, rtol=1e-5)


LIKELIHOOD_KINDS = {
    "gaussian": lambda: GaussianLikelihood(0.3),
    "learned sigma per pixel": lambda: GaussianLikelihood(0.3, learn_sigma=True, per_pixel=True),
    "bernoulli": BernoulliLikelihood,
}


@pytest.mark.parametrize("kind", LIKELIHOOD_KINDS)
@pytest.mark.parametrize("grad", [True, False], ids=["training", "no_grad"])
def test_nll_of_k_samples_per_image_is_exactly_each_samples_nll(kind, grad):
    """x (B, ...) against x_hat (k, B, ...), as the importance-weighted bound asks (vae/maths/elbo.py, log_weights):
    the same numbers as k separate calls, to the bit, with and without autograd (without, computed in place), and
    x_hat left as it was."""
    torch.manual_seed(0)
    likelihood = LIKELIHOOD_KINDS[kind]()
    x = torch.bernoulli(torch.rand(5, 1, 28, 28))
    x_hat = torch.randn(3, 5, 1, 28, 28, requires_grad=grad)
    before = x_hat.detach().clone()
    with torch.set_grad_enabled(grad):
        together = likelihood.nll(x, x_hat)
        one_by_one = torch.stack([likelihood.nll(x, sample) for sample in x_hat])
    assert together.shape == (3, 5)
    assert torch.equal(together, one_by_one)
    assert torch.equal(x_hat.detach(), before)


def small_vae(beta=1.0):
    likelihood = {"_target_": "vae.maths.likelihoods.GaussianLikelihood", "sigma": 0.5}
    return make_model("vae", latent_dim=3, likelihood=likelihood, width=16, beta=beta)


def test_vae_loss_is_rec_plus_beta_kl_per_image():
    model = small_vae(beta=0.25)
    x, eps = torch.rand(5, 1, 28, 28), torch.randn(5, 3)
    terms = model(x, eps)
    q = model.posterior(x)
    z = q.mu + torch.exp(0.5 * q.log_sigma_squared) * eps
    expected_rec = -Normal(torch.sigmoid(model.decoder(z)), 0.5).log_prob(x).sum(dim=(1, 2, 3))
    assert terms["rec"].shape == terms["kl"].shape == (5,)
    assert torch.allclose(terms["rec"], expected_rec, rtol=1e-5)
    assert torch.allclose(terms["loss"], terms["rec"] + 0.25 * terms["kl"])


def test_batch_loss_equals_loss_of_batch_concatenated_with_itself():
    """Sum per image, mean over the batch: duplicating the batch leaves the loss unchanged."""
    model = small_vae()
    x, eps = torch.rand(6, 1, 28, 28), torch.randn(6, 3)
    once = {name: value.mean() for name, value in model(x, eps).items()}
    twice = {name: value.mean() for name, value in model(torch.cat([x, x]), torch.cat([eps, eps])).items()}
    for name in once:
        assert torch.allclose(once[name], twice[name], rtol=1e-6), name
    # and the per-image sums are of the expected size: hundreds of nats, not a per-pixel mean
    assert once["rec"] > 100


def test_gradients_reach_mu_and_log_sigma_squared_through_the_sample():
    """With beta = 0 the loss is the reconstruction alone: sigma gets gradient only through z."""
    model = small_vae(beta=0.0)
    model(torch.rand(4, 1, 28, 28))["loss"].mean().backward()
    for head in (model.mu, model.log_sigma_squared):
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_autoencoder_loss_is_the_reconstruction():
    model = make_model("ae", latent_dim=2, likelihood="bernoulli", width=16)
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    terms = model(x)
    expected = -Bernoulli(logits=model.decoder(model.encode(x))).log_prob(x).sum(dim=(1, 2, 3))
    assert set(terms) == {"rec", "loss"}
    assert torch.allclose(terms["loss"], expected, rtol=1e-5)


def test_log_normal_and_the_posterior_match_torch_distributions():
    torch.manual_seed(0)
    z, mu, log_sigma_squared = torch.randn(7, 4), torch.randn(7, 4), torch.randn(7, 4)
    expected = Normal(mu, torch.exp(0.5 * log_sigma_squared)).log_prob(z).sum(-1)
    assert torch.allclose(log_normal(z, mu, log_sigma_squared), expected, atol=1e-5)
    assert torch.allclose(DiagonalGaussian(mu, log_sigma_squared).log_prob(z), expected, atol=1e-5)
    assert torch.allclose(StandardNormal(4).log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-5)


def test_the_reparameterisation_draws_from_q():
    """z = mu + sigma * eps for one sample or K per image; 20,000 draws have q's mean and standard deviation."""
    mu, log_sigma_squared = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(0.25)]])
    q = DiagonalGaussian(mu, log_sigma_squared)
    eps = torch.randn(20_000, 1, 2, generator=torch.Generator().manual_seed(0))
    z = q.rsample(eps)
    assert z.shape == (20_000, 1, 2)
    assert torch.allclose(z.mean(0), mu, atol=0.02) and torch.allclose(z.std(0), torch.tensor([[1.0, 0.5]]), atol=0.02)


def test_standard_normal_kl_is_the_closed_form_and_its_samples_are_standard():
    prior = StandardNormal(3)
    mu, log_sigma_squared = torch.randn(5, 3), torch.randn(5, 3)
    q = DiagonalGaussian(mu, log_sigma_squared)
    assert torch.equal(prior.kl(q, q.rsample(torch.randn(5, 3))), kl_divergence(mu, log_sigma_squared))
    z = prior.sample(20_000)
    assert z.shape == (20_000, 3) and z.mean(0).abs().max() < 0.03 and (z.std(0) - 1).abs().max() < 0.03


def test_fitted_gaussian_has_the_mean_and_covariance_of_its_codes():
    codes = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0)) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    fitted = FittedGaussian(codes)
    assert fitted.fitted_to == 5000
    assert torch.allclose(fitted.mean, codes.mean(0), atol=1e-5)
    assert torch.allclose(fitted.stddev, codes.std(0), rtol=1e-3)
    reference = torch.distributions.MultivariateNormal(codes.mean(0), torch.cov(codes.T))
    assert torch.allclose(fitted.log_prob(codes[:10]), reference.log_prob(codes[:10]), atol=1e-3)
