"""The models of the lab as LightningModules: a plain auto-encoder, the VAE and the IWAE.

Both wrap an encoder body, output projections to the latent space, a decoder (vae/maths/networks.py) and a
likelihood p(x | z) (vae/maths/likelihoods.py); they differ in the projections and the loss. Logged per
epoch, for train and val: `rec` = -log p(x | z) (nats per image), `kl` (VAE only) and `loss`.

The contract every model answers, and what they share: vae/maths/model.py. A new model is one subclass here and
one file in conf/model/.
"""

import torch
from torch import nn

from vae.core.errors import UserError
from vae.core.targets import build
from vae.maths.elbo import DiagonalGaussian, iw_bound, log_weights
from vae.maths.model import LatentModel, plain
from vae.maths.priors import FittedGaussian


class AutoEncoder(LatentModel):
    """z = f(x), a point; loss = -log p(x | z) (the reconstruction error alone). It has no prior: figures draw z
    from a Gaussian fitted to the codes of the training images."""

    name = "auto-encoder"

    def __init__(self, encoder, decoder, likelihood, optimizer, latent_dim: int = 2):
        super().__init__(encoder, decoder, likelihood, optimizer, latent_dim)
        self.z = nn.Linear(self.encoder.out_features, latent_dim)
        self.prior = None

    def encode(self, x):
        return self.z(self.encoder(x))

    def forward(self, x):
        rec = self.likelihood.nll(x, self.decoder(self.encode(x)))
        return {"rec": rec, "loss": rec}

    def sampling_prior(self, x_train, batch_size: int = 5000):
        """N(m, S) fitted to the codes of x_train (their mean and covariance), encoded batch by batch."""
        with torch.no_grad():
            return FittedGaussian(
                self.encode(x_train[i : i + batch_size].to(self.device)).cpu()
                for i in range(0, len(x_train), batch_size)
            )

    @property
    def terms(self):
        return {"rec": "reconstruction error −log p(x | z)\n(the auto-encoder's loss)"}


STANDARD_PRIOR = {"_target_": "vae.maths.priors.StandardNormal"}  # a checkpoint without a `prior` (before prior=)


class VAE(LatentModel):
    """q(z | x) = N(mu, diag(sigma^2)) with mu and log sigma^2 from two projections of shared layers; p(z) from the
    `prior` config group (N(0, I), or the VampPrior).

    loss = rec + beta * kl = -ELBO for beta = 1 (vae/maths/elbo.py), with one reparameterised sample of z.
    KL warm-up: while training, beta ramps linearly from 0 to `beta` over the first
    `kl_warmup_epochs` epochs (logged as train/beta); val and test always use `beta`.
    """

    code, codes = "posterior mean", "posterior means E[z | x]"

    def __init__(
        self,
        encoder,
        decoder,
        likelihood,
        optimizer,
        latent_dim: int = 2,
        beta: float = 1.0,
        kl_warmup_epochs: float = 0,
        prior: dict | None = None,
        **settings,
    ):
        prior = plain(prior) if prior is not None else STANDARD_PRIOR
        super().__init__(
            encoder,
            decoder,
            likelihood,
            optimizer,
            latent_dim,
            beta=beta,
            kl_warmup_epochs=kl_warmup_epochs,
            prior=prior,
            **settings,
        )
        self.beta, self.kl_warmup_epochs = beta, kl_warmup_epochs
        self.mu = nn.Linear(self.encoder.out_features, latent_dim)
        self.log_sigma_squared = nn.Linear(self.encoder.out_features, latent_dim)
        self.prior = build(prior, "the model's prior", latent_dim=latent_dim, posterior=self.posterior)

    def start_from_data(self, x_train):  # a prior that learns from the data starts from it (a resume restores it)
        self.prior.initialise(x_train)

    @property
    def name(self) -> str:
        return "VAE" if self.beta == 1 else f"VAE (β = {self.beta:g})"

    def posterior(self, x):
        h = self.encoder(x)
        return DiagonalGaussian(self.mu(h), self.log_sigma_squared(h))

    def encode(self, x):
        return self.posterior(x).mu

    def kl_weight(self) -> float:
        """beta, or during KL warm-up beta * (training steps so far) / (steps of kl_warmup_epochs)."""
        if not self.training or self.kl_warmup_epochs <= 0 or self._trainer is None:
            return self.beta
        warmup_steps = self.kl_warmup_epochs * self.trainer.num_training_batches
        return self.beta * min(1.0, self.global_step / warmup_steps)

    def forward(self, x, eps=None):
        q = self.posterior(x)
        eps = torch.randn_like(q.mu) if eps is None else eps
        z = q.rsample(eps)
        rec = self.likelihood.nll(x, self.decoder(z))  # -log p(x | z), summed over pixels
        kl = self.prior.kl(q, z)  # KL(q(z | x) || p(z)), summed over latent dims
        return {"rec": rec, "kl": kl, "loss": rec + self.kl_weight() * kl}

    def logged_terms(self, x):
        terms = self(x)
        if self.training and self.kl_warmup_epochs > 0:  # train/beta: its mean over the epoch's steps
            terms["beta"] = torch.full_like(terms["kl"], self.kl_weight())
        return terms

    @property
    def terms(self):
        loss = "loss = rec + KL = −ELBO" if self.beta == 1 else f"loss = rec + {self.beta:g}·KL"
        return {"rec": "reconstruction term  −log p(x | z)", "kl": "KL(q(z | x) ‖ p(z))", "loss": loss}

    def describe(self) -> str:
        prior = "" if self.prior.name == "N(0, I)" else f", {self.prior.name} prior"
        return f"{self.name}, latent_dim = {self.latent_dim}{prior}, {self.likelihood.describe()}"


class IWAE(VAE):
    """The VAE's networks trained on the k-sample importance-weighted bound (Burda et al., 2016; vae/maths/elbo.py):

        loss = -L_k(x) = -log (1/k) sum_i w_i,  w_i = p(x | z_i) p(z_i) / q(z_i | x),  z_i = mu + sigma * eps_i

    L_k is at least the ELBO, and tighter as k grows: each image's k samples are weighted by how well they
    explain it, so q(z | x) is no longer pushed to cover p(z | x) alone. k = 1 is the ELBO, and then the loss is
    exactly the VAE's (its KL in closed form, the lower-variance estimate of the same bound). `rec` and `kl` are
    the ELBO's terms at the same samples (rec the mean of -log p(x | z_i); kl the prior's KL), logged so that
    IWAE and VAE runs compare; `loss` is -L_k. There is no beta: the bound has no KL term to weight.
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood,
        optimizer,
        latent_dim: int = 2,
        prior=None,
        k: int = 5,
        beta: float = 1.0,  # saved with the VAE's hyperparameters; the IW bound has no KL weight to set
        kl_warmup_epochs: float = 0,
    ):
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
            raise UserError(f"iwae.k={k!r} is not valid: iwae.k must be a positive integer (samples per image)")
        if beta != 1 or kl_warmup_epochs:
            raise UserError("the IWAE's bound has no KL term to weight: beta must be 1 and kl_warmup_epochs 0")
        super().__init__(encoder, decoder, likelihood, optimizer, latent_dim, prior=prior, k=k)
        self.k = k

    @property
    def name(self) -> str:
        return f"IWAE (k = {self.k})"

    def forward(self, x, eps=None):
        """eps (k, B, n): the noise of the k samples of each image."""
        q = self.posterior(x)
        eps = torch.randn(self.k, *q.mu.shape, device=q.mu.device, dtype=q.mu.dtype) if eps is None else eps
        if self.k == 1:
            return super().forward(x, eps[0])
        log_px_z, log_pz, log_qz = log_weights(self, x, q, eps)  # (k, B) each
        kl = self.prior.kl(q, log_qz=log_qz, log_pz=log_pz)  # (B,): N(0, I)'s closed form; (k, B): estimated
        return {
            "rec": -log_px_z.mean(0),
            "kl": kl.reshape(-1, len(x)).mean(0),
            "loss": -iw_bound(log_px_z + log_pz - log_qz),
        }

    @property
    def terms(self):
        return {
            "rec": "reconstruction term  −log p(x | z)",
            "kl": "KL(q(z | x) ‖ p(z))",
            "loss": f"loss = −L_k, the IW bound (k = {self.k})",
        }
