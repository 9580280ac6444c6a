"""What makes a checkpoint safe to resume from and to load alone: written atomically, with the random
state, tagged with the format it was written in and the model class it holds (its hyperparameters, which
Lightning saves beside the weights, rebuild the rest: vae/runs.py, `load_model`)."""

import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vae.errors import UserError

# Bump when a change to conf/ or the models makes older checkpoints unloadable.
# 2: the model's parts (networks, likelihood, optimiser) are hyperparameters of the checkpoint.
CHECKPOINT_FORMAT = 2


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<name>.tmp` and renames it: a kill during a save leaves the previous checkpoint whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        tmp = Path(f"{path}.tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


def check_format(checkpoint: dict) -> None:
    """A clear message for a checkpoint written by another version of the project."""
    found = checkpoint.get("vae_lab_format")
    if found != CHECKPOINT_FORMAT:
        raise UserError(
            f"the checkpoint was written by another version of vae-lab (checkpoint format {found}, "
            f"this version reads {CHECKPOINT_FORMAT}): retrain, or use the version that wrote it"
        )


def check_checkpoint(checkpoint: dict, model: torch.nn.Module) -> None:
    """A clear message, before loading, for a checkpoint of another format or of another model."""
    check_format(checkpoint)
    saved, own = checkpoint.get("state_dict", {}), model.state_dict()
    for name in sorted(set(saved) | set(own)):
        if name not in own or name not in saved or saved[name].shape != own[name].shape:
            found, here = (tuple(d[name].shape) if name in d else "absent" for d in (saved, own))
            raise UserError(
                f"the checkpoint holds another model than this config builds: {name} is "
                f"{found} in the checkpoint and {here} here; use the run's own config "
                "(resume=<run directory> reads it) or retrain"
            )


class RunState(L.Callback):
    """Saves torch's random state (the VAE's noise eps) with every checkpoint and restores it on
    resume, so that a resumed run continues exactly as an uninterrupted one would have."""

    def state_dict(self) -> dict:
        return {"torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch_rng"])
