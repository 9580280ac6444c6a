"""The ELBO, per image (Kingma & Welling, 2014, eq. 3 and appendix B):

    log p(x) >= ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z))
    loss = mean over the batch of [ rec + beta * kl ],  rec = -log p(x | z_1), z_1 ~ q(z | x)   (= -ELBO for beta = 1)

and the importance-weighted bound (Burda et al., 2016, eq. 8), tighter for every k > 1 and equal to log p(x)
as k grows, the IWAE's objective (vae/maths/models.py) and the evaluation's estimate of log p(x)
(vae/maths/evaluation.py):

    log p(x) >= L_k(x) = E[ log (1/k) sum_i w_i ],  w_i = p(x | z_i) p(z_i) / q(z_i | x),  z_1..z_k ~ q(z | x)

Why sum first, then average: `rec` is a sum over the 784 pixels (vae/maths/likelihoods.py) and `kl` a sum
over the n latent dimensions (below). Averaging over pixels as well (as `F.mse_loss` does by
default) would shrink the reconstruction term 784-fold against the KL, and the model would learn to
ignore x (posterior collapse). Summing both per image keeps their true proportion; the mean over the
batch (vae/maths/models.py, `LatentModel._step`) only makes the loss independent of the batch size.
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


def log_weights(model, x: torch.Tensor, q: DiagonalGaussian, eps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The parts of log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) for z_i = mu + sigma * eps_i ~ q(z | x),
    with the model's likelihood and prior: (log p(x | z_i), log p(z_i), log q(z_i | x)), each (k, B);
    x (B, ...), eps (k, B, n)."""
    k, B = eps.shape[:2]
    z = q.rsample(eps)  # the reparameterisation of training: gradients reach the encoder through z
    x_hat = model.decoder(z.flatten(0, 1)).unflatten(0, (k, B))  # (k, B, C, H, W)
    log_px_z = -model.likelihood.nll(x, x_hat)  # x broadcast over the k samples, not copied k times
    return log_px_z, model.prior.log_prob(z), q.log_prob(z)


def iw_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_i w_i per image from log w (k, B), by logsumexp (the w_i themselves under- or overflow)."""
    return torch.logsumexp(log_w, dim=0) - math.log(len(log_w))


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
