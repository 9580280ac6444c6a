"""p(x | z): what a likelihood makes of the decoder's output x_hat (unconstrained numbers, one per pixel).

Every likelihood answers the same four questions (the `Likelihood` contract):

    nll(x, x_hat)     -log p(x | z) per image, in nats, summed over pixels (see vae/maths/elbo.py for why summed);
                      x_hat (..., B, C, H, W) may hold several samples per image of x (B, C, H, W): x is broadcast
    mean(x_hat)       E[x | z], the decoder's mean image
    sample(x_hat)     a draw x ~ p(x | z)
    describe()        one line for titles and tables, e.g. "Gaussian p(x | z), σ = 0.2"

and says in words what its mean and samples are (`mean_words`, `sample_words`, for the figures), and
whether it is a probability of discrete pixels (`discrete`: then -log p(x) in bits per pixel means
something), and whether images lie outside what it models (`unmodelled(x)`: then -nll is no log-probability).
Each is an nn.Module, so that a learned parameter (the Gaussian's sigma) joins the optimiser.
A new likelihood is one subclass here and one file in conf/likelihood/.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae.core.errors import UserError


def summed_over_pixels(x: torch.Tensor, per_pixel: torch.Tensor) -> torch.Tensor:
    """per_pixel (..., B, *image) -> (..., B): summed over the image dimensions of x (B, *image)."""
    return per_pixel.flatten(1 - x.dim()).sum(-1)


class Likelihood(nn.Module):
    discrete = False  # True: p(x | z) is a probability of discrete pixels (bits per dimension apply)
    mean_words = "the mean images"

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def unmodelled(self, x: torch.Tensor) -> str | None:
        """None when p(x | z) is a probability (or density) of images like x; else why not, in words."""
        return None

    def mean(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x_hat)

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def sample_words(self) -> str:
        """What `sample` draws, for a figure's panel title."""
        raise NotImplementedError


class GaussianLikelihood(Likelihood):
    """p(x | z) = prod_i N(x_i; mean_i, sigma_i^2), mean = sigmoid(x_hat), so the mean image lies in [0, 1].

    Fixed sigma (learn_sigma=False): one standard deviation for every pixel, and
        -log p(x | z) = sum_i (x_i - mean_i)^2 / (2 sigma^2) + D * log(sigma * sqrt(2 pi)),  D = 784:
    the summed squared error scaled by 1 / (2 sigma^2), plus a constant. A small sigma weighs
    reconstruction more against the KL (sharper images, a less regular latent space); a large sigma
    the reverse. sigma = 1/sqrt(2) gives exactly `MSE(sum) + KL` up to the constant.

    Learned sigma (learn_sigma=True): sigma = min_sigma + softplus(s), s an nn.Parameter trained by
    maximum likelihood with the rest of the model, starting at `sigma`; one s per pixel (per_pixel,
    shape 1 x 28 x 28) or one shared by all. The floor min_sigma keeps sigma from collapsing on pixels
    the model predicts exactly (MNIST's border is always 0), where -log p(x | z) would go to minus infinity.
        -log p(x | z) = sum_i [ (x_i - mean_i)^2 / (2 sigma_i^2) + log(sigma_i sqrt(2 pi)) ]
    """

    def __init__(
        self,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        min_sigma: float = 0.01,
        per_pixel: bool = False,
        image_shape: tuple[int, ...] = (1, 28, 28),
    ):
        super().__init__()
        self.learn_sigma, self.per_pixel = learn_sigma, per_pixel
        if not learn_sigma:
            self.fixed_sigma = float(sigma)
            return
        if not 0 < min_sigma < sigma:
            raise UserError(
                f"likelihood.min_sigma={min_sigma} must be positive and below the initial likelihood.sigma={sigma}"
            )
        self.min_sigma = float(min_sigma)
        s = math.log(math.expm1(sigma - min_sigma))  # inverse softplus: sigma starts at the configured value
        self.s = nn.Parameter(torch.full(tuple(image_shape) if per_pixel else (), s))

    @property
    def sigma(self) -> float | torch.Tensor:
        return self.min_sigma + F.softplus(self.s) if self.learn_sigma else self.fixed_sigma

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        mean = self.mean(x_hat)  # a new tensor
        # without autograd (the evaluation's chunks of 8,100 x 784 pixels) in mean's own memory: no temporaries
        squared = (x - mean).pow(2) if mean.requires_grad else mean.sub_(x).square_()
        if not self.learn_sigma:
            log_normaliser = x[0].numel() * math.log(self.fixed_sigma * math.sqrt(2 * math.pi))
            return summed_over_pixels(x, squared) / (2 * self.fixed_sigma**2) + log_normaliser
        sigma = self.sigma
        per_pixel = squared / (2 * sigma**2) + torch.log(sigma) + 0.5 * math.log(2 * math.pi)
        return summed_over_pixels(x, per_pixel)

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        return self.mean(x_hat) + self.sigma * torch.randn_like(x_hat)

    def sigma_words(self) -> str:
        if not self.learn_sigma:
            return f"σ = {self.fixed_sigma:g}"
        sigma = self.sigma.detach()
        if self.per_pixel:
            return f"learned σ per pixel, {sigma.min().item():.3g} to {sigma.max().item():.3g}"
        return f"learned σ = {sigma.item():.3g}"

    def describe(self) -> str:
        return f"Gaussian p(x | z), {self.sigma_words()}"

    def sample_words(self) -> str:
        sigma = "learned σ" if self.learn_sigma else f"σ = {self.fixed_sigma:g}"  # the values: describe()
        return f"samples x ~ p(x | z) = N(mean, σ² I)\n({sigma} noise per pixel, clipped to [0, 1])"

    def extra_repr(self) -> str:
        if self.learn_sigma:
            return f"learn_sigma=True, min_sigma={self.min_sigma}, per_pixel={self.per_pixel}"
        return f"sigma={self.fixed_sigma}"


class BernoulliLikelihood(Likelihood):
    """p(x | z) = prod_i Bernoulli(x_i; sigmoid(x_hat_i)); x_hat are the logits.

    -log p(x | z) = sum_i BCE(x_i, sigmoid(x_hat_i)), computed from the logits for stability.
    For grey-level x in [0, 1] this is the cross-entropy that pytorch/examples' VAE uses; it is a
    true log-likelihood only for binary x (see data.binarize).
    """

    discrete = True
    mean_words = "the pixel probabilities"

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(x_hat, x.expand_as(x_hat), reduction="none")  # a view: no copy
        return summed_over_pixels(x, bce)

    def unmodelled(self, x: torch.Tensor) -> str | None:
        if bool(((x == 0) | (x == 1)).all()):
            return None
        return (
            "the pixels are grey levels, of which a Bernoulli p(x | z) is no probability "
            "(data.binarize=dynamic makes them binary)"
        )

    def sample(self, x_hat: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(x_hat))

    def describe(self) -> str:
        return "Bernoulli p(x | z)"

    def sample_words(self) -> str:
        return "samples x ~ p(x | z) = Bernoulli(probabilities)\n(pixels drawn 0 or 1)"
