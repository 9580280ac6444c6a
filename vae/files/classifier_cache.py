"""The cache of the feature classifiers (vae/maths/classifier.py) and of their reference numbers, keyed by the
content of the data they were trained on, so that each is trained once per dataset and machine, not once per run:

    folder = cache_folder(datamodule.root)      # <data root>/vae-lab-cache/, else outputs/vae-lab-cache/
    key = data_key(x_train, y_train)            # sha256 of the tensors, and of CLASSIFIER_RECIPE
    save(folder, key, state_dict, accuracy, seconds)
    load(classifier_file(folder, key), key)     # the saved dict; None when absent; Damaged
    save_reference(folder, key, n, data)        # a dict of tensors and numbers (Reference.to_dict())
    load_reference(folder, key, n)              # the dict; None when absent or damaged (a warning)

Files are written whole (a temporary file of their own, then renamed: parallel jobs of a sweep may write the same
one) and read with torch's weights_only loader, so a file from elsewhere runs no code. A file that does not read, or
that holds another data's or another recipe's classifier, is `Damaged`: one line naming it and saying that it will be
made again (`load_reference` logs that line as a warning and returns None). These files are no run directory's: they
belong to the data.
"""

import hashlib
import logging
import os
import pickle
import secrets
import tempfile
from pathlib import Path

import torch

from vae.core.errors import Damaged
from vae.files.writing import make_folder, replace

# Bump when the recipe of vae/maths/classifier.py changes (its network, initialisation, EPOCHS, BATCH_SIZE, LR, SHIFT,
# schedule): the key changes with it, so every cached classifier and reference is made again.
CLASSIFIER_RECIPE = 1
CACHE_FOLDER = "vae-lab-cache"
FALLBACK = Path("outputs") / CACHE_FOLDER  # relative to the working directory, as train.py's outputs are
REFUSED = "Weights only load failed"  # how torch's weights_only loader begins refusing a class or a function
log = logging.getLogger(__name__)


def data_key(x: torch.Tensor, y: torch.Tensor, extra: str = "") -> str:
    """The hex sha256 of the images' and labels' dtypes, shapes and bytes, of CLASSIFIER_RECIPE and of `extra`
    (e.g. the classifier's key, to key numbers of other images measured by it)."""
    digest = hashlib.sha256(f"vae-lab feature classifier, recipe {CLASSIFIER_RECIPE}; {extra}\n".encode())
    for tensor in (x, y):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cache_folder(data_root: Path) -> Path:
    """`<data root>/vae-lab-cache/` (made if missing) when it can be written, else `outputs/vae-lab-cache/`."""
    preferred = Path(data_root) / CACHE_FOLDER
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=preferred).close()  # writes a file: os.access says yes to root on a read-only disk
        return preferred
    except OSError:
        return make_folder(
            FALLBACK,
            f"the cache of feature classifiers ({preferred.parent} cannot be written)",
            "run from a folder you can write, or make the data's folder writable",
        )


def classifier_file(folder: Path, key: str) -> Path:
    return Path(folder) / f"classifier-{key[:16]}.pt"


def reference_file(folder: Path, key: str, n: int) -> Path:
    return Path(folder) / f"reference-{key[:16]}-{n}.pt"


def save(folder: Path, key: str, state_dict: dict, accuracy: float, seconds: float) -> Path:
    """The classifier's weights with its key, recipe, test accuracy and training seconds, written whole."""
    contents = {
        "key": key,
        "recipe": CLASSIFIER_RECIPE,
        "accuracy": float(accuracy),
        "seconds": float(seconds),
        "state_dict": {name: value.detach().cpu() for name, value in state_dict.items()},
    }
    return write_whole(classifier_file(folder, key), contents)


def load(path: Path, key: str) -> dict | None:
    """What `save` wrote for `key` (`state_dict`, `accuracy`, `seconds`, ...); None when there is no such file;
    `Damaged` when it does not read or belongs to other data or another recipe."""
    saved = read(Path(path), "feature classifier", "trained", key)
    if saved is None:
        return None
    state_dict = saved.get("state_dict")
    if not (
        isinstance(state_dict, dict)
        and all(isinstance(value, torch.Tensor) for value in state_dict.values())
        and all(isinstance(saved.get(name), float) for name in ("accuracy", "seconds"))
    ):
        raise Damaged(f"feature classifier {path} lacks its weights or its numbers: it will be trained again")
    return saved


def save_reference(folder: Path, key: str, n: int, data: dict) -> Path:
    """The reference numbers of the classifier of `key` (tensors and plain values), for `n`, written whole."""
    return write_whole(reference_file(folder, key, n), {"key": key, "recipe": CLASSIFIER_RECIPE, "n": n, "data": data})


def load_reference(folder: Path, key: str, n: int) -> dict | None:
    """What `save_reference` wrote for `key` and `n`; None when there is none to use: no such file, or one that does
    not read or belongs to other data, another recipe or another n (then one warning line says so)."""
    path = reference_file(folder, key, n)
    try:
        saved = read(path, "reference of the feature classifier", "computed", key)
        if saved is not None and (saved.get("n") != n or not isinstance(saved.get("data"), dict)):
            raise Damaged(
                f"reference of the feature classifier {path} is not one of n = {n} (it says n = {saved.get('n')!r}): "
                "it will be computed again"
            )
    except Damaged as damaged:
        log.warning(f"warning: {damaged}")
        return None
    return None if saved is None else saved["data"]


def read(path: Path, what: str, made: str, key: str) -> dict | None:
    """The file's contents (tensors and plain values only: torch's weights_only loader) when they are for `key` and
    this recipe; None when there is no file."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's messages run over many lines
        if isinstance(error, pickle.UnpicklingError) and str(error).startswith(REFUSED):
            why = "it holds objects other than tensors and plain values, which are not read (they could run code)"
        else:
            why = f"it is cut short or not a torch file ({type(error).__name__})"
        raise Damaged(f"{what} {path} does not load: {why}; it will be {made} again") from None
    if not isinstance(saved, dict):
        raise Damaged(f"{what} {path} holds a {type(saved).__name__}, not a dict: it will be {made} again")
    found = (saved.get("key"), saved.get("recipe"))
    if found != (key, CLASSIFIER_RECIPE):
        raise Damaged(
            f"{what} {path} belongs to other data or another recipe (its key {str(found[0])[:16]}, recipe {found[1]}; "
            f"here {key[:16]}, recipe {CLASSIFIER_RECIPE}): it will be {made} again"
        )
    return saved


def write_whole(path: Path, contents: dict) -> Path:
    """torch.save into a temporary file of this process's own beside `path`, then renamed over it: a kill or a full
    disk leaves the previous file, and two processes that write the same file leave one of theirs, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # not mkstemp: its files are 0600
    try:
        with open(tmp, "xb") as file:  # the umask's permissions: others who read the data read the cache
            torch.save(contents, file)
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
