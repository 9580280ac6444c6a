"""The importance-weighted objective (model=iwae) and the VampPrior (prior=vamp), against independent references:
torch.distributions for the bound and the mixture density, and the exact log p(x) of a linear-Gaussian model
whose prior is a known mixture."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

from helpers import NO_FIGURES, LinearGaussian, assert_converges_to_exact, make_model, metrics_without_timing, train_run
from vae.maths.elbo import DiagonalGaussian, kl_divergence
from vae.maths.priors import StandardNormal, VampPrior

VAMP = {"_target_": "vae.maths.priors.VampPrior", "components": 7, "init": "random"}


def images(n=12, seed=0):
    return torch.bernoulli(torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)))


def test_iw_loss_with_k_1_is_the_vae_loss_for_the_same_noise():
    x = images()
    vae = make_model("vae", latent_dim=3, likelihood="bernoulli", seed=4)
    iwae = make_model("iwae", latent_dim=3, likelihood="bernoulli", seed=4, k=1)
    eps = torch.randn(1, len(x), 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(iwae(x, eps)["loss"], vae(x, eps[0])["loss"])


@torch.no_grad()
def test_iw_loss_is_the_negative_log_mean_weight_of_torch_distributions():
    x = images()
    k = 6
    iwae = make_model("iwae", latent_dim=3, likelihood="bernoulli", seed=1, k=k)
    eps = torch.randn(k, len(x), 3, generator=torch.Generator().manual_seed(2))
    q = iwae.posterior(x)
    z = q.mu + (0.5 * q.log_sigma_squared).exp() * eps  # (k, B, n)
    log_px_z = Bernoulli(logits=iwae.decoder(z.flatten(0, 1))).log_prob(x.repeat(k, 1, 1, 1)).flatten(1).sum(-1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = Normal(q.mu, (0.5 * q.log_sigma_squared).exp()).log_prob(z).sum(-1)
    log_w = log_px_z.view(k, len(x)) + log_pz - log_qz
    expected = -(torch.logsumexp(log_w, 0) - math.log(k))
    terms = iwae(x, eps)
    assert torch.allclose(terms["loss"], expected, rtol=1e-5, atol=1e-3)
    assert torch.allclose(terms["rec"], -log_px_z.view(k, len(x)).mean(0), rtol=1e-5, atol=1e-3)


@torch.no_grad()
def test_iw_bound_is_not_below_the_elbo_in_expectation():
    """E[L_5] >= E[ELBO] (Burda et al., theorem 1): averaged over 300 draws of the noise, far beyond its error."""
    x = images(8)
    iwae = make_model("iwae", latent_dim=3, likelihood="bernoulli", seed=3, k=5)
    vae = make_model("vae", latent_dim=3, likelihood="bernoulli", seed=3)
    generator = torch.Generator().manual_seed(0)
    gaps = torch.stack(
        [
            vae(x, torch.randn(len(x), 3, generator=generator))["loss"]
            - iwae(x, torch.randn(5, len(x), 3, generator=generator))["loss"]
            for _ in range(300)
        ]
    ).mean(-1)  # -ELBO - (-L_5) per draw, mean over the images
    assert gaps.mean() > 3 * gaps.std() / math.sqrt(len(gaps))


@pytest.mark.parametrize("prior", [None, VAMP])
def test_the_iw_gradient_reaches_encoder_decoder_and_prior(prior):
    iwae = make_model("iwae", latent_dim=3, likelihood="bernoulli", k=4, **({"prior": prior} if prior else {}))
    iwae(images())["loss"].mean().backward()
    reached = {name for name, p in iwae.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    expected = {name for name, _ in iwae.named_parameters()}
    assert reached == expected
    assert any(name.startswith("encoder.") for name in reached) and any(name.startswith("decoder.") for name in reached)
    assert ("prior.logits" in reached) == (prior is not None)


def fixed_mixture(mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> VampPrior:
    """A VampPrior whose 'encoder' gives the components (mu_k, sigma_k^2) whatever the pseudo-inputs."""
    prior = VampPrior(mu.shape[1], lambda u: DiagonalGaussian(mu, log_sigma_squared), len(mu), "random", (1, 2, 2))
    return prior


def test_vamp_log_density_is_the_mixture_density_of_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu, log_sigma_squared = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator) * 0.5
    prior = fixed_mixture(mu, log_sigma_squared)
    reference = MixtureSameFamily(
        Categorical(torch.ones(4)), Independent(Normal(mu, (0.5 * log_sigma_squared).exp()), 1)
    )
    z = 2 * torch.randn(5, 6, 3, generator=generator)  # (k, B, n): the shape the IW bound asks for
    assert torch.allclose(prior.log_prob(z), reference.log_prob(z), atol=1e-4)
    q = DiagonalGaussian(torch.randn(6, 3, generator=generator), torch.zeros(6, 3))
    assert torch.allclose(prior.kl(q, z), q.log_prob(z) - reference.log_prob(z), atol=1e-4)
    # its moments, for the figures' grid and circles, and its samples
    samples = prior.sample(40_000)
    assert torch.allclose(prior.mean, reference.mean, atol=1e-5)
    assert torch.allclose(prior.stddev, reference.stddev, atol=1e-4)
    assert torch.allclose(samples.mean(0), reference.mean, atol=0.05)
    assert torch.allclose(samples.std(0), reference.stddev, atol=0.05)


def test_vamp_with_one_component_is_that_gaussian():
    mu, log_sigma_squared = torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.3, 0.4]])
    z = torch.randn(10, 2)
    gaussian = Independent(Normal(mu[0], (0.5 * log_sigma_squared[0]).exp()), 1)
    assert torch.allclose(fixed_mixture(mu, log_sigma_squared).log_prob(z), gaussian.log_prob(z), atol=1e-5)


def test_vamp_pseudo_inputs_start_as_training_images_once():
    prior = VampPrior(2, lambda u: None, components=3, init="data")
    x = torch.rand(10, 1, 28, 28)
    torch.manual_seed(0)
    chosen = x[torch.randperm(10)[:3]]
    torch.manual_seed(0)
    prior.initialise(x)
    assert torch.allclose(prior.pseudo_inputs(), 0.02 + 0.96 * chosen, atol=1e-5)
    restored = VampPrior(2, lambda u: None, components=3, init="data")
    restored.load_state_dict(prior.state_dict())  # as a resume restores it: it does not start over
    restored.initialise(torch.zeros(10, 1, 28, 28))
    assert torch.equal(restored.logits, prior.logits)
    with pytest.raises(Exception, match="prior.init='pretty' is not known"):
        VampPrior(2, lambda u: None, init="pretty")


class MixtureLinearGaussian(LinearGaussian):
    """z ~ (1/K) sum_k N(mu_k, diag(sigma_k^2)) (a VampPrior with fixed components), x = W z + b + sigma * noise:
    p(x) = (1/K) sum_k N(x; W mu_k + b, W diag(sigma_k^2) W^T + sigma^2 I)."""

    def __init__(self):
        super().__init__(inflate=3.0, shift=0.0)
        self.mu = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
        self.log_sigma_squared = torch.log(torch.tensor([[0.3, 0.2], [0.2, 0.4], [0.5, 0.3]]))
        self.prior = fixed_mixture(self.mu, self.log_sigma_squared)

    def log_p(self, x):
        W, b, s2 = self.decoder.weight, self.decoder.bias, self.sigma**2
        densities = [
            MultivariateNormal(W @ m + b, W @ torch.diag(v.exp()) @ W.T + s2 * torch.eye(len(b))).log_prob(x)
            for m, v in zip(self.mu, self.log_sigma_squared)
        ]
        return torch.logsumexp(torch.stack(densities), 0) - math.log(len(densities))

    def sample(self, n, generator):
        W, b = self.decoder.weight, self.decoder.bias
        k = torch.randint(len(self.mu), (n,), generator=generator)
        z = self.mu[k] + (0.5 * self.log_sigma_squared[k]).exp() * torch.randn(n, 2, generator=generator)
        return z @ W.T + b + self.sigma * torch.randn(n, len(b), generator=generator)


def test_evaluation_with_a_mixture_prior_reaches_the_exact_log_likelihood():
    """The importance weights use the prior's log-density: with K = 5000 the estimate is log p(x) of the closed form."""
    assert_converges_to_exact(MixtureLinearGaussian(), chunk_size=2000, one_sample_below=0.1)


@torch.no_grad()
def test_the_evaluations_elbo_uses_the_vamp_priors_own_kl():
    """With the VampPrior the KL term is E_q[log q(z | x) - log p(z)], not the closed form against N(0, I), and it
    does not split over the dimensions: no kl_per_dim."""
    from vae.maths.evaluation import evaluate

    model = make_model("vae", latent_dim=3, likelihood="bernoulli", seed=2, prior=VAMP)
    model.mu.bias += 2.0  # posteriors and pseudo-inputs' components around 2: near each other, far from N(0, I)
    x = images(6)
    metrics = evaluate(model, x, iw_samples=4000, chunk_size=4000, seed=1)
    assert "kl_per_dim" not in metrics and metrics["elbo"] <= metrics["log_likelihood"]
    q = model.posterior(x)
    mixture = model.prior.mixture()
    p_z = MixtureSameFamily(
        Categorical(torch.ones(7)), Independent(Normal(mixture.mu, (0.5 * mixture.log_sigma_squared).exp()), 1)
    )
    z = q.rsample(torch.randn(4000, *q.mu.shape, generator=torch.Generator().manual_seed(9)))
    reference = (q.log_prob(z) - p_z.log_prob(z)).mean().item()  # the same expectation, other samples
    assert metrics["elbo_kl"] == pytest.approx(reference, abs=0.05)
    assert kl_divergence(q.mu, q.log_sigma_squared).mean().item() > metrics["elbo_kl"] + 3  # not N(0, I)'s KL


@pytest.mark.parametrize(
    "options",
    [
        ["model=iwae"],
        ["prior=vamp", "prior.components=10"],
        ["model=iwae", "iwae.k=3", "prior=vamp", "prior.components=10", "prior.init=random"],
    ],
)
def test_every_new_option_trains_an_epoch_evaluates_and_draws(tiny_overrides, tmp_path, options):
    metrics = train_run(
        [*tiny_overrides, *options, "eval.iw_samples=5", "plots.every_n_epochs=0", "plots.grid_size=4"], tmp_path
    )
    assert metrics["status"] == "completed" and math.isfinite(metrics["test/log_likelihood"])
    assert metrics["test/log_likelihood"] >= metrics["test/elbo"] - 1.0  # K = 5 bound, up to its noise
    figures = {p.stem for p in (tmp_path / "figures").glob("*.png")}
    assert {"samples", "manifold", "latent", "reconstructions", "interpolation"} <= figures
    # the tools load it alone, from its checkpoint's hyperparameters: the same model, the same test loss
    from vae.files.saved import load_run

    run = load_run(tmp_path)
    assert type(run.model).__name__ == ("IWAE" if "model=iwae" in options else "VAE")
    assert run.model.prior.name == ("VampPrior" if "prior=vamp" in options else "N(0, I)")
    torch.manual_seed(0)
    x = run.datamodule().splits["test"][0]
    with torch.no_grad():
        loss = run.model(x)["loss"].mean().item()
    assert loss == pytest.approx(metrics["test/loss"], abs=5.0)  # one draw of the noise against another


def test_iwae_with_k_1_trains_exactly_as_the_vae(tiny_overrides, tmp_path):
    settings = [*tiny_overrides, *NO_FIGURES, "eval.iw_samples=5"]
    train_run([*settings, "model=vae"], tmp_path / "vae")
    train_run([*settings, "model=iwae", "iwae.k=1"], tmp_path / "iwae")
    assert metrics_without_timing(tmp_path / "vae") == metrics_without_timing(tmp_path / "iwae")


def test_the_standard_prior_is_the_default_and_old_checkpoints_have_it():
    vae = make_model("vae", latent_dim=2)
    assert isinstance(vae.prior, StandardNormal) and vae.hparams.prior == {
        "_target_": "vae.maths.priors.StandardNormal"
    }
    assert "prior" not in dict(vae.named_parameters()) and not list(vae.prior.parameters())
