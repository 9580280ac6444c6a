"""The models of the lab as LightningModules: a plain auto-encoder, the VAE and the IWAE.

Both wrap an encoder body, output projections to the latent space, a decoder (vae/networks.py) and a
likelihood p(x | z) (vae/likelihoods.py); they differ in the projections and the loss. Logged per
epoch, for train and val: `rec` = -log p(x | z) (nats per image), `kl` (VAE only) and `loss`.

What the rest of the project asks of a model (figures, evaluation, comparison; never its class):

    encode(x) -> z          a point per image: the AE's code, the VAE's posterior mean
    decode(z) -> E[x | z]   the decoder's mean image
    posterior(x)            q(z | x) as a DiagonalGaussian (vae/elbo.py), or None for a model without one
    prior                   p(z): the `prior` group's (vae/priors.py), N(0, I) or the VampPrior; None for the AE
    sampling_prior(x)       what figures draw z from: the prior, or (AE) a Gaussian fitted to the codes of x
    describe()              one line naming the model, its latent size and its likelihood
    terms                   the logged terms and what each is, for the learning curves
    code, codes             "posterior mean(s) E[z | x]" or "code(s) z", for titles

The networks, the likelihood and the optimiser arrive as config nodes (`_target_` dicts) and are built
here, so a checkpoint carries its hyperparameters and `VAE.load_from_checkpoint(path)` rebuilds the model
alone. A new model is one subclass here and one file in conf/model/.
"""

import ctypes
import inspect
import os

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn

from vae.checkpoints import CHECKPOINT_FORMAT, check_checkpoint
from vae.elbo import DiagonalGaussian, iw_bound, log_weights
from vae.errors import UserError
from vae.priors import FittedGaussian
from vae.targets import instantiate

FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")  # where torch has fused optimiser kernels


def skip_failing_nvml_check() -> None:
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (find GPUs through NVIDIA's library, so that the
    check does not initialise CUDA before DDP forks). Adam.step asks torch.cuda.is_available() at every step; with
    a CUDA build of torch (pip's default on Linux) on a machine without NVIDIA's driver, each of those calls then
    loads libnvidia-ml, fails and falls back to the ordinary check: 0.1 ms per step for nothing. Without the
    library both checks give the same answer, so the variable is dropped."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1":
        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError:
            del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


skip_failing_nvml_check()


def plain(node) -> dict:
    """A config node as a plain dict (interpolations resolved): what a checkpoint's hyperparameters hold."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


class LatentModel(L.LightningModule):
    """What the AE and the VAE share: building the parts, optimiser, steps and logging."""

    name = "latent model"
    code, codes = "code", "codes z"

    def __init__(self, encoder: dict, decoder: dict, likelihood: dict, optimizer: dict, latent_dim: int, **settings):
        super().__init__()
        parts = {
            "encoder": plain(encoder),
            "decoder": plain(decoder),
            "likelihood": plain(likelihood),
            "optimizer": plain(optimizer),
        }
        self.save_hyperparameters({**parts, "latent_dim": latent_dim, **settings}, logger=False)
        where = "the model's hyperparameters"
        self.encoder = instantiate(parts["encoder"], where)
        self.decoder = instantiate(parts["decoder"], where)
        self.likelihood = instantiate(parts["likelihood"], where)
        self.latent_dim = latent_dim
        self._totals: dict[str, tuple[list[str], torch.Tensor, int]] = {}  # stage: (names, sums, images) this epoch

    # --- the contract -------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms per image: {"rec": (B,), ..., "loss": (B,)}."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): the decoder's mean image."""
        return self.likelihood.mean(self.decoder(z))

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian | None:
        return None

    def sampling_prior(self, x_train: torch.Tensor):
        return self.prior

    def describe(self) -> str:
        return f"{self.name}, latent_dim = {self.latent_dim}, {self.likelihood.describe()}"

    @property
    def terms(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.hparams.optimizer["lr"]

    def logged_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-image values whose epoch means are logged: the loss terms (the VAE adds beta)."""
        return self(x)

    # --- training -----------------------------------------------------------------------------------

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        x, _ = batch
        terms = self.logged_terms(x)  # per image sums (see vae/elbo.py): {"rec": (B,), ..., "loss": (B,)}
        # The epoch's metric is the mean over its images: add up sums and counts here, as tensors (no
        # device sync, no logging call per step), and log the means once, at the end of the epoch.
        sums = torch.stack([value.detach().sum() for value in terms.values()])
        names, total, count = self._totals.get(stage) or (list(terms), 0, 0)
        self._totals[stage] = (names, total + sums, count + len(x))
        if stage == "train" and (self.trainer.is_last_batch or batch_idx + 1 == self.trainer.num_training_batches):
            # logged from the epoch's last step, so the callbacks' on_train_epoch_end see it
            self._log_epoch("train")
        return terms["loss"].mean()  # the loss of the batch: the mean over its images (sum, then mean)

    def _log_epoch(self, stage: str) -> None:
        """Logs the epoch's means of the terms as <stage>/<name>; with DDP, over all processes' images."""
        if stage not in self._totals:
            return
        names, sums, count = self._totals.pop(stage)
        count = torch.tensor(float(count), device=sums.device)
        sums, count = (self.trainer.strategy.reduce(t, reduce_op="sum") for t in (sums, count))
        self.log_dict(
            {f"{stage}/{name}": value for name, value in zip(names, sums / count)},
            on_step=False,
            on_epoch=True,
            prog_bar=stage != "test",
        )

    def training_step(self, batch, batch_idx):
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "test")

    def on_train_epoch_start(self):  # an interrupted epoch's sums must not carry over
        self._totals.pop("train", None)

    def on_validation_epoch_start(self):
        self._totals.pop("val", None)

    def on_test_epoch_start(self):
        self._totals.pop("test", None)

    def on_validation_epoch_end(self):
        self._log_epoch("val")

    def on_test_epoch_end(self):
        self._log_epoch("test")

    def configure_optimizers(self):
        """The `optimizer` config group's optimiser (a partial: everything but the parameters), with torch's fused
        kernel where it has one: one kernel updates every parameter instead of about ten tensor operations per
        parameter tensor; the same update up to rounding, and a third faster training steps on a 2-core CPU."""
        make = instantiate(self.hparams.optimizer, "the model's optimizer")
        parameters = list(self.parameters())
        extra = {}
        if "fused" in inspect.signature(make.func).parameters and "fused" not in make.keywords:
            extra["fused"] = all(p.device.type in FUSED_DEVICES for p in parameters) or None
        return make(parameters, **extra)

    def on_train_start(self):
        """The optimiser's settings are the config's, also on resume, where Lightning restores the checkpoint's
        (`resume=<run> lr=0.05` would otherwise train on at the old lr while the saved config says 0.05)."""
        settings = {key: tuple(v) if isinstance(v, list) else v for key, v in self.hparams.optimizer.items()}
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group.update({key: value for key, value in settings.items() if key in group})

    def on_save_checkpoint(self, checkpoint):
        checkpoint["vae_lab_format"] = CHECKPOINT_FORMAT
        checkpoint["vae_lab_model"] = f"{type(self).__module__}.{type(self).__qualname__}"  # for vae.runs.load_model

    def on_load_checkpoint(self, checkpoint):
        check_checkpoint(checkpoint, self)


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


STANDARD_PRIOR = {"_target_": "vae.priors.StandardNormal"}  # a checkpoint without a `prior` (before prior=)


class VAE(LatentModel):
    """q(z | x) = N(mu, diag(sigma^2)) with mu and log sigma^2 from two projections of shared layers; p(z) from the
    `prior` config group (N(0, I), or the VampPrior).

    loss = rec + beta * kl = -ELBO for beta = 1 (vae/elbo.py), with one reparameterised sample of z.
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
        self.prior = instantiate(prior, "the model's prior", latent_dim=latent_dim, posterior=self.posterior)

    def on_fit_start(self):  # a prior that learns from the data starts from it (not on resume: it is restored)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and getattr(datamodule, "splits", None):
            self.prior.initialise(datamodule.splits["train"][0])

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
    """The VAE's networks trained on the k-sample importance-weighted bound (Burda et al., 2016; vae/elbo.py):

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
