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


# Above this latent size an n x n covariance costs more memory and time than a figure is worth (4096: 128 MB in
# float64, and 50,000 codes to fit it); the fit falls back to a diagonal covariance, and says so.
FULL_COVARIANCE_MAX_DIM = 4096


class FittedGaussian:
    """N(m, S): m and S the mean and covariance of codes (N, n), e.g. an AE's training codes. S is the full
    covariance, or its diagonal when n is above FULL_COVARIANCE_MAX_DIM or not below N (a full one would be
    singular). The codes may come in batches (an iterable of (N_i, n) tensors): only sums are kept."""

    def __init__(self, codes):
        batches = [codes] if isinstance(codes, torch.Tensor) else codes
        count, total, products, full = 0, None, None, None
        for batch in batches:
            batch = batch.double()
            if total is None:
                n = batch.shape[1]
                full = n <= FULL_COVARIANCE_MAX_DIM
                total = torch.zeros(n, dtype=torch.float64)
                products = torch.zeros((n, n) if full else (n,), dtype=torch.float64)
            count += len(batch)
            total += batch.sum(0)
            products += batch.T @ batch if full else (batch * batch).sum(0)
        mean = total / count
        full = full and total.numel() < count
        n = len(mean)
        if full:
            covariance = (products - count * torch.outer(mean, mean)) / (count - 1)
            # a jitter of 1e-6 on the diagonal keeps S positive definite should the codes lie on a line
            covariance = covariance + 1e-6 * torch.eye(n, dtype=torch.float64)
            self.distribution = torch.distributions.MultivariateNormal(mean.float(), covariance.float())
        else:
            squares = products.diagonal() if products.dim() == 2 else products
            variance = (squares - count * mean * mean) / max(count - 1, 1) + 1e-6
            self.distribution = torch.distributions.Independent(
                torch.distributions.Normal(mean.float(), variance.sqrt().float()), 1
            )
        self.full = full
        self.fitted_to = count
        self.name = "N(m, S)" if full else "N(m, diag s²)"

    @property
    def mean(self) -> torch.Tensor:
        return self.distribution.mean

    @property
    def stddev(self) -> torch.Tensor:
        return self.distribution.covariance_matrix.diagonal().sqrt() if self.full else self.distribution.stddev

    def sample(self, n: int) -> torch.Tensor:
        return self.distribution.sample((n,))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(z)

    def describe(self) -> str:
        what = "covariance" if self.full else "per-dimension variances"
        return (
            f"z ~ {self.name}, the mean and {what} of the codes of the {self.fitted_to:,} training "
            "images\n(an AE has no prior)"
        )
