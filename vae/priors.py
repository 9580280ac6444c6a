"""Distributions over the latent space that figures draw z from.

    StandardNormal   the VAE's prior p(z) = N(0, I)
    FittedGaussian   N(m, S) fitted to the codes of training images: an auto-encoder has no prior,
                     so its samples and manifold come from this stand-in

Both answer `name`, `sample(n)`, `mean`, `stddev` (per dimension, for the manifold's grid), `log_prob(z)` and
`describe()` (words for titles); `fitted_to` is the number of codes behind a fitted one (None for a prior).
"""

import torch
from torch import nn

from vae.elbo import DiagonalGaussian, kl_divergence, log_normal


class StandardNormal(nn.Module):
    """p(z) = N(0, I) in R^latent_dim."""

    fitted_to = None
    name = "N(0, I)"

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    @property
    def mean(self) -> torch.Tensor:
        return torch.zeros(self.latent_dim)

    @property
    def stddev(self) -> torch.Tensor:
        return torch.ones(self.latent_dim)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I), summed over latent dimensions."""
        zeros = torch.zeros_like(z)
        return log_normal(z, zeros, zeros)

    def kl(self, q: DiagonalGaussian, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per image: in closed form for this prior (z, the sample, is not needed)."""
        return kl_divergence(q.mu, q.log_sigma_squared)

    def describe(self) -> str:
        return "z ~ N(0, I) from the prior"


class FittedGaussian:
    """N(m, S): m and S the mean and full covariance of codes (N, n), e.g. an AE's training codes."""

    def __init__(self, codes: torch.Tensor):
        codes = codes.double()
        n = codes.shape[1]
        # a jitter of 1e-6 on the diagonal keeps S positive definite should the codes lie on a line
        covariance = torch.atleast_2d(torch.cov(codes.T)) + 1e-6 * torch.eye(n, dtype=torch.float64)
        self.distribution = torch.distributions.MultivariateNormal(codes.mean(0).float(), covariance.float())
        self.fitted_to = len(codes)
        self.name = "N(m, S)"

    @property
    def mean(self) -> torch.Tensor:
        return self.distribution.mean

    @property
    def stddev(self) -> torch.Tensor:
        return self.distribution.covariance_matrix.diagonal().sqrt()

    def sample(self, n: int) -> torch.Tensor:
        return self.distribution.sample((n,))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(z)

    def describe(self) -> str:
        return (
            f"z ~ N(m, S), m and S the mean and covariance of the codes of the {self.fitted_to:,} training "
            "images\n(an AE has no prior)"
        )
