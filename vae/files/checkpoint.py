"""A checkpoint file of a run: the tags train.py adds to Lightning's checkpoint (the format it was written in, the
model class it holds; its hyperparameters, which Lightning saves beside the weights, rebuild the rest), and
reading one without running code (torch's weights_only loader)."""

from pathlib import Path

from vae.core.errors import Damaged, UserError, in_brief

# Bump when a change to conf/ or the models makes older checkpoints unloadable.
# 2: the model's parts (networks, likelihood, optimiser) are hyperparameters of the checkpoint.
CHECKPOINT_FORMAT = 2
FORMAT_KEY, MODEL_KEY = "vae_lab_format", "vae_lab_model"


def tags(model) -> dict:
    """What train.py adds to every checkpoint it writes."""
    return {FORMAT_KEY: CHECKPOINT_FORMAT, MODEL_KEY: f"{type(model).__module__}.{type(model).__qualname__}"}


def check_format(checkpoint: dict) -> None:
    """A clear message for a checkpoint written by another version of the project."""
    found = checkpoint.get(FORMAT_KEY)
    if found != CHECKPOINT_FORMAT:
        raise UserError(
            f"the checkpoint was written by another version of vae-lab (checkpoint format {found}, "
            f"this version reads {CHECKPOINT_FORMAT}): retrain, or use the version that wrote it"
        )


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents (tensors and plain values only), its format checked."""
    import torch  # here, not at the top: the tools that only read metrics start without it

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise Damaged(
            f"checkpoint {path} does not load (not a torch checkpoint, or a damaged one): {in_brief(error)}"
        ) from error
    check_format(saved)
    return saved


def model_of(saved: dict, path: Path) -> tuple[str, dict]:
    """(the model's class, its hyperparameters) as the checkpoint records them."""
    hparams, model_class = saved.get("hyper_parameters"), saved.get(MODEL_KEY)
    if not isinstance(hparams, dict) or not isinstance(model_class, str):
        raise UserError(f"checkpoint {path} does not say which model it holds: it was not written by train.py")
    return model_class, hparams
