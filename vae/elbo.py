"""The ELBO, per image (Kingma & Welling, 2014, eq. 3 and appendix B):

    log p(x) >= ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z))
    loss = mean over the batch of [ rec + beta * kl ],  rec = -log p(x | z_1), z_1 ~ q(z | x)   (= -ELBO for beta = 1)

Why sum first, then average: `rec` is a sum over the 784 pixels (vae/likelihoods.py) and `kl` a sum
over the n latent dimensions (below). Averaging over pixels as well (as `F.mse_loss` does by
default) would shrink the reconstruction term 784-fold against the KL, and the model would learn to
ignore x (posterior collapse). Summing both per image keeps their true proportion; the mean over the
batch (vae/models.py, `LatentModel._step`) only makes the loss independent of the batch size.
"""

import math

import torch

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """q(z | x) = N(mu, diag(exp(log_sigma_squared))), mu and log_sigma_squared of shape (B, n)."""

    def __init__(self, mu: torch.Tensor, log_sigma_squared: torch.Tensor):
        self.mu, self.log_sigma_squared = mu, log_sigma_squared

    def rsample(self, eps: torch.Tensor) -> torch.Tensor:
        """The reparameterisation z = mu + sigma * eps, eps ~ N(0, I): gradients reach mu and sigma.
        eps (B, n), or (K, B, n) for K samples per image."""
        return self.mu + torch.exp(0.5 * self.log_sigma_squared) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z | x), summed over latent dimensions; z (..., B, n) -> (..., B)."""
        return log_normal(z, self.mu, self.log_sigma_squared)


def log_normal(z: torch.Tensor, mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(log_sigma_squared))), summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_sigma_squared + (z - mu).pow(2) / log_sigma_squared.exp()).sum(-1)


def kl_divergence(mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per image, summed over latent dimensions (closed form, appendix B):

    KL = -0.5 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)
    """
    return kl_per_dim(mu, log_sigma_squared).sum(-1)


def kl_per_dim(mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> torch.Tensor:
    """The terms of that sum: KL(q(z_j | x) || N(0, 1)) of each latent dimension j, shape of mu."""
    return -0.5 * (1 + log_sigma_squared - mu.pow(2) - log_sigma_squared.exp())
