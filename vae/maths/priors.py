"""Distributions over the latent space: the VAE's prior p(z) (the `prior` config group), and what figures draw
z from.

    StandardNormal   p(z) = N(0, I), prior=standard (the default)
    VampPrior        p(z) = (1/K) sum_k q(z | u_k), a mixture of the encoder's posteriors at K learned
                     pseudo-inputs u_k (Tomczak & Welling, 2018), prior=vamp
    FittedGaussian   N(m, S) fitted to the codes of training images: an auto-encoder has no prior,
                     so its samples and manifold come from this stand-in

All answer `name`, `sample(n)`, `mean`, `stddev` (per dimension, for the manifold's grid), `log_prob(z)` and
`describe()` (words for titles); `fitted_to` is the number of codes behind a fitted one (None for a prior).
A prior of the VAE also answers `kl(q, z)`, the KL term of the loss (or `kl(q, log_qz=, log_pz=)` from the log
densities at the samples), `kl_per_dim(q)` (the KL of each latent dimension, or None when it does not split),
and `initialise(x_train)`, called when training starts (the VampPrior's pseudo-inputs may start as training
images). A new prior is one class here and one file in conf/prior/; it is built with the model's `latent_dim`
and `posterior` (x -> q(z | x)).
"""

import math

import torch
from torch import nn

from vae.core.errors import UserError
from vae.maths.elbo import DiagonalGaussian, kl_divergence, kl_per_dim, log_normal


class Prior(nn.Module):
    """p(z) in R^latent_dim: the contract every prior answers (a new prior subclasses this; the figures, the loss and
    the evaluation never ask for its class)."""

    fitted_to = None  # the number of codes behind a fitted stand-in; None for a true prior
    name = "p(z)"

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def initialise(self, x_train: torch.Tensor) -> None:
        """Called when training starts, with the training images: a prior that starts from the data does so here."""

    @property
    def mean(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> torch.Tensor:
        """Per dimension: the manifold's grid is spaced by it."""
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over latent dimensions: (..., n) -> (...)."""
        raise NotImplementedError

    def kl(self, q: DiagonalGaussian, z: torch.Tensor | None = None, log_qz=None, log_pz=None) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per image, the loss's KL term: in closed form where there is one, else estimated at
        the sampled z as log q(z | x) - log p(z) (from the log densities at z when the caller has them)."""
        log_qz = q.log_prob(z) if log_qz is None else log_qz
        return log_qz - (self.log_prob(z) if log_pz is None else log_pz)

    def kl_per_dim(self, q: DiagonalGaussian) -> torch.Tensor | None:
        """The KL of each latent dimension (B, n), or None where p(z) does not factorise over them."""
        return None

    def describe(self) -> str:
        raise NotImplementedError


class StandardNormal(Prior):
    """p(z) = N(0, I) in R^latent_dim."""

    name = "N(0, I)"

    def __init__(self, latent_dim: int, posterior=None):  # posterior: unused, N(0, I) does not depend on it
        super().__init__(latent_dim)

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

    def kl(self, q: DiagonalGaussian, z: torch.Tensor | None = None, **log_densities) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per image: in closed form for this prior (the sample z is not needed)."""
        return kl_divergence(q.mu, q.log_sigma_squared)

    def kl_per_dim(self, q: DiagonalGaussian) -> torch.Tensor:
        """The KL of each latent dimension (B, n): p(z) factorises, so the KL is their sum."""
        return kl_per_dim(q.mu, q.log_sigma_squared)

    def describe(self) -> str:
        return "z ~ N(0, I) from the prior"


class VampPrior(Prior):
    """p(z) = (1/K) sum_k q(z | u_k): the encoder's posterior at K learned pseudo-inputs u_k (Tomczak & Welling,
    2018, eq. 9), trained with the model. The prior that maximises the ELBO is the aggregate posterior
    (1/N) sum_n q(z | x_n); the VampPrior approximates it with K << N learned images.

    u_k = sigmoid(a_k), pixels in (0, 1) like the data's, with a_k the parameters. `init`: "data" starts the u_k as
    K training images (drawn with the run's seed, pixels squeezed into [0.02, 0.98] so that the sigmoid's
    gradient is not nil): the mixture starts as an aggregate posterior of real images; "random" starts them as
    grey noise, sigmoid(N(0, 1)) (the paper's choice, where training then has to find digit-like inputs).

    Its KL term has no closed form: `kl` is the Monte-Carlo estimate log q(z | x) - log p(z) at the sampled z.
    """

    name = "VampPrior"

    def __init__(self, latent_dim: int, posterior, components: int = 500, init: str = "data", image_shape=(1, 28, 28)):
        super().__init__(latent_dim)
        if init not in ("data", "random"):
            raise UserError(f"prior.init={init!r} is not known; choose data or random")
        self.init = init
        self.posterior = posterior  # x -> q(z | x): the model's own encoder (a method, not a submodule)
        self.logits = nn.Parameter(torch.randn(components, *image_shape))
        self.register_buffer("initialised", torch.tensor(init == "random"))  # saved: a resume does not start over

    @property
    def components(self) -> int:
        return len(self.logits)

    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)  # (K, 1, 28, 28)

    def initialise(self, x_train: torch.Tensor) -> None:
        if bool(self.initialised):
            return
        chosen = x_train[torch.randperm(len(x_train))[: self.components]].to(self.logits.device)
        with torch.no_grad():
            self.logits.copy_(torch.logit(0.02 + 0.96 * chosen.reshape(self.logits.shape)))
            self.initialised.fill_(True)

    def mixture(self) -> DiagonalGaussian:
        """The K components q(z | u_k): mu and log_sigma_squared of shape (K, n)."""
        return self.posterior(self.pseudo_inputs())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log (1/K) sum_k N(z; mu_k, diag(sigma_k^2)), summed over latent dimensions; z (..., B, n) -> (..., B).
        The squared distances come from matrix products, so memory holds (..., B, K) numbers, not (..., B, K, n)."""
        q = self.mixture()
        precision = torch.exp(-q.log_sigma_squared)  # (K, n)
        quadratic = (  # sum_j (z_j - mu_kj)^2 / sigma_kj^2, expanded
            (z * z) @ precision.T - 2 * z @ (q.mu * precision).T + (q.mu * q.mu * precision).sum(-1)
        )
        log_components = -0.5 * (self.latent_dim * math.log(2 * math.pi) + q.log_sigma_squared.sum(-1) + quadratic)
        return torch.logsumexp(log_components, dim=-1) - math.log(self.components)

    def sample(self, n: int) -> torch.Tensor:
        """A component k for each draw, uniformly, then z ~ q(z | u_k)."""
        q = self.mixture()
        k = torch.randint(self.components, (n,), device=q.mu.device)
        return DiagonalGaussian(q.mu[k], q.log_sigma_squared[k]).rsample(torch.randn_like(q.mu[k]))

    @property
    def mean(self) -> torch.Tensor:
        return self.mixture().mu.mean(0)

    @property
    def stddev(self) -> torch.Tensor:
        """Per dimension, of the whole mixture: E[var_k + mu_k^2] - (E[mu_k])^2 over the components."""
        q = self.mixture()
        second = (q.log_sigma_squared.exp() + q.mu**2).mean(0)
        return (second - q.mu.mean(0) ** 2).clamp_min(0).sqrt()

    def describe(self) -> str:
        return f"z ~ VampPrior, a mixture of q(z | u_k) at {self.components} learned pseudo-inputs u_k"


# Above this latent size an n x n covariance costs more memory and time than a figure is worth (4096: 128 MB in
# float64, and 50,000 codes to fit it); the fit falls back to a diagonal covariance, and says so.
FULL_COVARIANCE_MAX_DIM = 4096


class FittedGaussian(Prior):
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
            distribution = torch.distributions.MultivariateNormal(mean.float(), covariance.float())
        else:
            squares = products.diagonal() if products.dim() == 2 else products
            variance = (squares - count * mean * mean) / max(count - 1, 1) + 1e-6
            distribution = torch.distributions.Independent(
                torch.distributions.Normal(mean.float(), variance.sqrt().float()), 1
            )
        super().__init__(n)
        self.distribution = distribution
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
