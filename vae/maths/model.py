"""What every model of the lab is (the contract the figures, the evaluation and the comparison ask of it; never
its class) and what they share: building their parts from config nodes, the optimiser, the epoch means.

    encode(x) -> z          a point per image: the AE's code, the VAE's posterior mean
    decode(z) -> E[x | z]   the decoder's mean image
    posterior(x)            q(z | x) as a DiagonalGaussian (vae/maths/elbo.py), or None for a model without one
    prior                   p(z): the `prior` group's (vae/maths/priors.py), N(0, I) or the VampPrior; None for the AE
    sampling_prior(x)       what figures draw z from: the prior, or (AE) a Gaussian fitted to the codes of x
    describe()              one line naming the model, its latent size and its likelihood
    terms                   the logged terms and what each is, for the learning curves
    code, codes             "posterior mean(s) E[z | x]" or "code(s) z", for titles

The networks, the likelihood and the optimiser arrive as plain `_target_` dicts and are built here, so a
checkpoint carries its hyperparameters and `VAE.load_from_checkpoint(path)` rebuilds the model alone.
"""

import torch

from vae.core.errors import UserError
from vae.core.targets import build
from vae.maths.elbo import DiagonalGaussian
from vae.maths.epoch_means import EpochMeans
from vae.maths.optimiser import build_optimiser


def plain(node) -> dict:
    """A part's node as a dict: what a checkpoint's hyperparameters hold (the run layer passes plain dicts)."""
    return dict(node)


class LatentModel(EpochMeans):
    """What the AE and the VAE share: their parts, the optimiser, and the contract."""

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
        self.encoder = build(parts["encoder"], where)
        self.decoder = build(parts["decoder"], where)
        self.likelihood = build(parts["likelihood"], where)
        self.latent_dim = latent_dim

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

    def start_from_data(self, x_train: torch.Tensor) -> None:
        """Called when training starts, with the training images (the VampPrior's pseudo-inputs start as some)."""

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

    def configure_optimizers(self):
        # mixed precision clips unscaled gradients, which a fused kernel (it unscales inside its step) refuses
        mixed = self._trainer is not None and "mixed" in str(self.trainer.precision)
        return build_optimiser(self.hparams.optimizer, list(self.parameters()), fused=not mixed)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A clear message, before the weights are loaded, for a checkpoint of another model."""
        saved, own = checkpoint.get("state_dict", {}), self.state_dict()
        for name in sorted(set(saved) | set(own)):
            if name not in own or name not in saved or saved[name].shape != own[name].shape:
                found, here = (tuple(d[name].shape) if name in d else "absent" for d in (saved, own))
                raise UserError(
                    f"the checkpoint holds another model than this config builds: {name} is "
                    f"{found} in the checkpoint and {here} here; use the run's own config "
                    "(resume=<run directory> reads it) or retrain"
                )
