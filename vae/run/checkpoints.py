"""What makes a checkpoint safe to resume from and to load alone: written atomically, with the random
state, tagged with the format it was written in and the model class it holds (vae/files/checkpoint.py; its
hyperparameters, which Lightning saves beside the weights, rebuild the rest: vae/files/saved.py, `load_model`)."""

import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vae.core.errors import UserError
from vae.files.checkpoint import tags
from vae.files.writing import replace


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<name>.tmp` and renames it: a kill during a save leaves the previous checkpoint whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        tmp = Path(f"{path}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            replace(tmp, Path(path))
        except Exception as error:  # a full disk, a read-only folder: no half file left, a message that says so
            tmp.unlink(missing_ok=True)
            cause = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0] if str(error) else ""
            raise UserError(
                f"could not write the checkpoint {path} ({type(error).__name__}: {cause}); is the disk full or the "
                "folder read-only? The checkpoints written before are intact: fix it, then continue with "
                f"`python train.py resume={Path(path).parent.parent}`"
            ) from error


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (checkpoints/best.ckpt and last.ckpt) for a run directory that can be copied or
    moved and then resumed: the saved paths follow the directory, and no second generation (best-v1.ckpt) is ever
    written beside the first."""

    def __init__(self, **kwargs):
        super().__init__(enable_version_counter=False, **kwargs)

    @property
    def state_key(self) -> str:  # the key Lightning files this callback's state under: ModelCheckpoint's own
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and saved != self.dirpath:  # the run directory was moved or copied since

            def moved(path):
                return os.path.join(self.dirpath, os.path.basename(path)) if path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                **{key: moved(state_dict.get(key)) for key in ("best_model_path", "kth_best_model_path")},
                "last_model_path": moved(state_dict.get("last_model_path")),
                "best_k_models": {moved(path): value for path, value in state_dict.get("best_k_models", {}).items()},
            }
        super().load_state_dict(state_dict)


class CheckpointTags(L.Callback):
    """Tags every checkpoint with its format and the model class it holds (vae/files/checkpoint.py)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint.update(tags(pl_module))


class RunState(L.Callback):
    """Saves torch's random states (the VAE's noise eps: the CPU's, and a GPU's or Apple's MPS where the model trains
    there) with every checkpoint and restores them on resume, so that a resumed run continues exactly as an
    uninterrupted one would have."""

    def state_dict(self) -> dict:
        state = {"torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if torch.backends.mps.is_available():
            state["mps_rng"] = torch.mps.get_rng_state()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch_rng"])
        if "cuda_rng" in state_dict and torch.cuda.is_available():
            devices = min(len(state_dict["cuda_rng"]), torch.cuda.device_count())  # a resume on fewer GPUs
            for device, state in enumerate(state_dict["cuda_rng"][:devices]):
                torch.cuda.set_rng_state(state, device)
        if "mps_rng" in state_dict and torch.backends.mps.is_available():
            torch.mps.set_rng_state(state_dict["mps_rng"])
