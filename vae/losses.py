"""The terms of the ELBO, each per image (summed over pixels or latent dimensions).

    log p(x) >= ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))

    loss = mean over the batch of [ rec + beta * kl ]    (= -ELBO when beta = 1)

Why sum first, then average: the reconstruction term is a sum over 784 pixels and the KL a sum
over n latent dimensions. Averaging over pixels (as `F.mse_loss` does by default) would shrink
the reconstruction term 784-fold against the KL and the model would learn to ignore x
(posterior collapse). Summing both per image keeps their true proportion; the mean over the
batch only makes the loss independent of the batch size.

A likelihood turns the decoder's output x_hat (unconstrained numbers, one per pixel) into
p(x | z). Each one is a small nn.Module so that a learned parameter can join the optimiser.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae.errors import UserError


def kl_divergence(mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per image, summed over latent dimensions.

    Closed form (Kingma & Welling 2014, appendix B):
        KL = -0.5 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)
    """
    return kl_per_dim(mu, log_sigma_squared).sum(-1)


def kl_per_dim(mu: torch.Tensor, log_sigma_squared: torch.Tensor) -> torch.Tensor:
    """The terms of that sum: KL(q(z_j | x) || N(0, 1)) of each latent dimension j, shape of mu."""
    return -0.5 * (1 + log_sigma_squared - mu.pow(2) - log_sigma_squared.exp())


class GaussianLikelihood(nn.Module):
    """p(x | z) = prod_i N(x_i; mean_i, sigma^2) with a fixed standard deviation sigma.

    mean = sigmoid(x_hat), so that the mean image lies in the pixel range [0, 1].
    -log p(x | z) = sum_i (x_i - mean_i)^2 / (2 sigma^2) + D * log(sigma * sqrt(2 pi)),  D = 784:
    the summed squared error scaled by 1 / (2 sigma^2), plus a constant. A small sigma weighs
    reconstruction more against the KL (sharper images, a less regular latent space); a large
    sigma the reverse. sigma = 1/sqrt(2) gives exactly `MSE(sum) + KL` up to the constant.
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = float(sigma)

    def mean(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x_hat)

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        return self.mean(x_hat) + self.sigma * torch.randn_like(x_hat)

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image, in nats, summed over pixels."""
        squared_error = (x - self.mean(x_hat)).pow(2).flatten(1).sum(-1)
        log_normaliser = x[0].numel() * math.log(self.sigma * math.sqrt(2 * math.pi))
        return squared_error / (2 * self.sigma**2) + log_normaliser

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class LearnedGaussianLikelihood(nn.Module):
    """p(x | z) = prod_i N(x_i; mean_i, sigma_i^2) with sigma learned with the rest of the model.

    sigma = min_sigma + softplus(s), s an nn.Parameter (the optimiser trains it by maximum likelihood):
    one s per pixel (per_pixel=True, shape 1 x 28 x 28) or one shared by all pixels. The floor
    min_sigma keeps sigma from collapsing on pixels the model predicts exactly (MNIST's border is
    always 0), where -log p(x | z) would otherwise go to minus infinity.
    -log p(x | z) = sum_i [ (x_i - mean_i)^2 / (2 sigma_i^2) + log(sigma_i sqrt(2 pi)) ],  mean = sigmoid(x_hat).
    """

    def __init__(self, sigma: float = 0.2, min_sigma: float = 0.01, per_pixel: bool = False,
                 image_shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        if not 0 < min_sigma < sigma:
            raise UserError(f"likelihood.min_sigma={min_sigma} must be positive and below the initial "
                            f"likelihood.sigma={sigma}")
        self.min_sigma, self.per_pixel = float(min_sigma), per_pixel
        # inverse softplus, so that sigma starts at the configured value
        s = math.log(math.expm1(sigma - min_sigma))
        self.s = nn.Parameter(torch.full(tuple(image_shape) if per_pixel else (), s))

    @property
    def sigma(self) -> torch.Tensor:
        return self.min_sigma + F.softplus(self.s)

    def mean(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x_hat)

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        return self.mean(x_hat) + self.sigma * torch.randn_like(x_hat)

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image, in nats, summed over pixels."""
        sigma = self.sigma
        per_pixel = (x - self.mean(x_hat)).pow(2) / (2 * sigma**2) + torch.log(sigma) + 0.5 * math.log(2 * math.pi)
        return per_pixel.flatten(1).sum(-1)

    def extra_repr(self) -> str:
        return f"min_sigma={self.min_sigma}, per_pixel={self.per_pixel}"


class BernoulliLikelihood(nn.Module):
    """p(x | z) = prod_i Bernoulli(x_i; sigmoid(x_hat_i)); x_hat are the logits.

    -log p(x | z) = sum_i BCE(x_i, sigmoid(x_hat_i)), computed from the logits for stability.
    For grey-level x in [0, 1] this is the cross-entropy that pytorch/examples' VAE uses; it is a
    true log-likelihood only for binary x (see data.binarize).
    """

    def mean(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x_hat)

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(x_hat))

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image, in nats, summed over pixels."""
        bce = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
        return bce.flatten(1).sum(-1)
