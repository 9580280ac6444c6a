"""The two models of the lab as LightningModules: a plain auto-encoder and a VAE.

Both wrap an encoder body, output projections to the latent space, a decoder and a likelihood
p(x | z); they differ in the projections and the loss. Logged per epoch, for train and val:
`rec` = -log p(x | z) (nats per image), `kl` (VAE only) and `loss`.
"""

import ctypes
import os

import lightning as L
import torch
from torch import nn

from vae.checkpoints import CHECKPOINT_FORMAT, check_checkpoint
from vae.losses import kl_divergence

FUSED_ADAM_DEVICES = ("cpu", "cuda", "mps", "xpu")  # where torch has the fused Adam kernel


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


class LatentModel(L.LightningModule):
    """What the AE and the VAE share: optimiser, steps and logging."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module,
                 latent_dim: int, lr: float):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.latent_dim, self.lr = latent_dim, lr
        self._totals: dict[str, tuple[list[str], torch.Tensor, int]] = {}  # stage: (names, sums, images) this epoch

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms per image: {"rec": (B,), ..., "loss": (B,)}."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """A point in latent space for each image (AE: the code; VAE: the posterior mean)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): the decoder's mean image."""
        return self.likelihood.mean(self.decoder(z))

    def logged_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-image values whose epoch means are logged: the loss terms (the VAE adds beta)."""
        return self(x)

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        x, _ = batch
        terms = self.logged_terms(x)  # per image sums (see vae/losses.py): {"rec": (B,), ..., "loss": (B,)}
        # The epoch's metric is the mean over its images: add up sums and counts here, as tensors (no
        # device sync, no logging call per step), and log the means once, at the end of the epoch.
        sums = torch.stack([value.detach().sum() for value in terms.values()])
        names, total, count = self._totals.get(stage) or (list(terms), 0, 0)
        self._totals[stage] = (names, total + sums, count + len(x))
        if stage == "train" and (self.trainer.is_last_batch or batch_idx + 1 == self.trainer.num_training_batches):
            # logged from the epoch's last step, so the callbacks' on_train_epoch_end see it
            self._log_epoch("train")
        return terms["loss"].mean()  # the loss of the batch: the mean over its images

    def _log_epoch(self, stage: str) -> None:
        """Logs the epoch's means of the terms as <stage>/<name>; with DDP, over all processes' images."""
        if stage not in self._totals:
            return
        names, sums, count = self._totals.pop(stage)
        count = torch.tensor(float(count), device=sums.device)
        sums, count = (self.trainer.strategy.reduce(t, reduce_op="sum") for t in (sums, count))
        self.log_dict({f"{stage}/{name}": value for name, value in zip(names, sums / count)},
                      on_step=False, on_epoch=True, prog_bar=stage != "test")

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
        # fused: one kernel updates every parameter, instead of about ten tensor operations per parameter tensor;
        # the same Adam up to rounding, and a third faster training steps on a 2-core CPU (vae/bench.py).
        parameters = list(self.parameters())
        fused = all(p.device.type in FUSED_ADAM_DEVICES for p in parameters) or None
        return torch.optim.Adam(parameters, lr=self.lr, fused=fused)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["vae_lab_format"] = CHECKPOINT_FORMAT

    def on_load_checkpoint(self, checkpoint):
        check_checkpoint(checkpoint, self)


class AutoEncoder(LatentModel):
    """z = f(x), a point; loss = -log p(x | z) (the reconstruction error alone)."""

    def __init__(self, encoder, decoder, likelihood, latent_dim: int = 2, lr: float = 1e-3):
        super().__init__(encoder, decoder, likelihood, latent_dim, lr)
        self.z = nn.Linear(encoder.out_features, latent_dim)

    def encode(self, x):
        return self.z(self.encoder(x))

    def forward(self, x):
        rec = self.likelihood.nll(x, self.decoder(self.encode(x)))
        return {"rec": rec, "loss": rec}


class VAE(LatentModel):
    """q(z | x) = N(mu, diag(sigma^2)) with mu and log sigma^2 from two projections of shared layers.

    loss = rec + beta * kl = -ELBO for beta = 1, with one reparameterised sample of z.
    KL warm-up: while training, beta ramps linearly from 0 to `beta` over the first
    `kl_warmup_epochs` epochs (logged as train/beta); val and test always use `beta`.
    """

    def __init__(self, encoder, decoder, likelihood, latent_dim: int = 2, lr: float = 1e-3,
                 beta: float = 1.0, kl_warmup_epochs: float = 0):
        super().__init__(encoder, decoder, likelihood, latent_dim, lr)
        self.beta, self.kl_warmup_epochs = beta, kl_warmup_epochs
        self.mu = nn.Linear(encoder.out_features, latent_dim)
        self.log_sigma_squared = nn.Linear(encoder.out_features, latent_dim)

    def posterior(self, x):
        h = self.encoder(x)
        return self.mu(h), self.log_sigma_squared(h)

    def encode(self, x):
        return self.posterior(x)[0]

    def kl_weight(self) -> float:
        """beta, or during KL warm-up beta * (training steps so far) / (steps of kl_warmup_epochs)."""
        if not self.training or self.kl_warmup_epochs <= 0 or self._trainer is None:
            return self.beta
        warmup_steps = self.kl_warmup_epochs * self.trainer.num_training_batches
        return self.beta * min(1.0, self.global_step / warmup_steps)

    def forward(self, x, eps=None):
        mu, log_sigma_squared = self.posterior(x)
        # Reparameterisation: z = mu + sigma * eps, eps ~ N(0, I), so gradients flow into mu and sigma.
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + torch.exp(0.5 * log_sigma_squared) * eps
        x_hat = self.decoder(z)
        rec = self.likelihood.nll(x, x_hat)         # -log p(x | z), summed over pixels
        kl = kl_divergence(mu, log_sigma_squared)   # KL(q(z | x) || N(0, I)), summed over latent dims
        return {"rec": rec, "kl": kl, "loss": rec + self.kl_weight() * kl}

    def logged_terms(self, x):
        terms = self(x)
        if self.training and self.kl_warmup_epochs > 0:  # train/beta: its mean over the epoch's steps
            terms["beta"] = torch.full_like(terms["kl"], self.kl_weight())
        return terms
