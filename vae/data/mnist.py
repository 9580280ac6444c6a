"""MNIST (or Fashion-MNIST) as tensors in memory, served as batches of index slices.

The four IDX files of torchvision's layout, `<root>/<MNIST|FashionMNIST>/raw/`, are read once into
float tensors of shape (N, 1, 28, 28) with pixels in [0, 1]. The 60,000 training images are split
into train and dev (a fixed permutation from `split_seed`); the official 10,000 test images are
the test split. Missing files are downloaded with torchvision when `download` is on.

`binarize` turns grey levels into the binary pixels a Bernoulli likelihood models, each pixel 1 with
probability its grey level: `dynamic` draws the training images afresh every time they are served
(every epoch sees new binary images), `static` draws them once. Dev and test are drawn once in
both cases, from a generator seeded with `split_seed`: the same binary images for every run, so
runs compare on identical data.
"""

import contextlib
import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import lightning as L
import torch

from vae.core.errors import UserError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # config name -> torchvision class
DATA_DIR_ENV = "VAE_DATA_DIR"
BINARIZE = (None, "dynamic", "static")


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (magic 0x0801 for labels, 0x0803 for images)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:  # not gzip (BadGzipFile), or cut short (EOFError)
            raise UserError(
                f"{path} is not a complete gzip file ({type(error).__name__}: {error}): it is damaged or was cut "
                "short; delete it and download it again"
            ) from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(
            f"{path} is {len(data)} bytes, too short for an IDX header: the file is truncated; "
            "delete it and download it again"
        )
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x0800 + ndim:
        raise UserError(
            f"{path} has magic number 0x{magic:08x}, expected 0x{0x0800 + ndim:08x} "
            f"(an IDX file of unsigned bytes with {ndim} dimension{'s' if ndim > 1 else ''}): "
            "it is not this MNIST file or it is corrupt; delete it and download it again"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise UserError(
            f"{path} is {len(data)} bytes, but its header announces shape {tuple(shape)} "
            f"({expected} bytes): the file is truncated or corrupt; delete it and download it again"
        )
    if math.prod(shape) == 0:  # torch.frombuffer refuses an empty buffer; load_split names the empty file
        return torch.zeros(shape, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def find_file(raw: Path, name: str) -> Path | None:
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(raw: Path) -> list[str]:
    return [name for name in FILES.values() if find_file(raw, name) is None]


def download(root: Path, dataset: str) -> None:
    """Fetch the missing files with torchvision (its mirrors and checksums)."""
    import torchvision  # imported only here: it is slow to import and needed only online

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        getattr(torchvision.datasets, DATASETS[dataset])(str(root), train=True, download=True)


def load_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 (N, 1, 28, 28) in [0, 1] and labels as int64 (N,)."""
    images_file, labels_file = find_file(raw, FILES[f"{split}_images"]), find_file(raw, FILES[f"{split}_labels"])
    images, labels = read_idx(images_file, ndim=3), read_idx(labels_file, ndim=1)
    if len(images) == 0:
        raise UserError(f"{images_file} holds no images (its header says 0): download it again")
    if images.shape[1:] != (28, 28):
        raise UserError(f"{images_file}: its images are {tuple(images.shape[1:])} pixels, expected 28 x 28")
    if len(images) != len(labels):
        raise UserError(
            f"{images_file} holds {len(images)} images but {labels_file} {len(labels)} labels: "
            "the files do not belong together; download them again"
        )
    if labels.numel() and int(labels.max()) > 9:
        raise UserError(
            f"{labels_file}: its labels go up to {int(labels.max())}, expected digits 0-9: the file is corrupt"
        )
    return images.unsqueeze(1).float().div_(255), labels.long()


def split_indices(n: int, dev_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, dev) indices of the n training-file images: a fixed permutation from split_seed, dev its last
    dev_size."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return order[:-dev_size], order[-dev_size:]


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel 1 with probability its grey level, else 0."""
    return torch.bernoulli(x, generator=generator)


class Batches:
    """Batches (x, y) of in-memory tensors as index slices; a fresh permutation at every pass if shuffled;
    with `binarize_batches`, each batch's images are binarised afresh as they are served.

    With DDP (`world_size` processes) each process takes every world_size-th index of the same permutation,
    from its `rank` on: disjoint shares of equal size (the last few images of an epoch may be left out).
    Only the shuffled (training) pass is shared out; val and test pass over everything in every process.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        binarize_batches: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.x, self.y, self.batch_size, self.shuffle, self.generator = x, y, batch_size, shuffle, generator
        self.binarize_batches, self.rank, self.world_size = binarize_batches, rank, world_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) // self.world_size / self.batch_size)

    def __iter__(self):
        n, b = len(self.x), self.batch_size
        if not self.shuffle:
            for i in range(0, n, b):
                yield self.serve(self.x[i : i + b]), self.y[i : i + b]
            return
        order = torch.randperm(n, generator=self.generator)
        order = order[: n - n % self.world_size][self.rank :: self.world_size]  # this process's share
        for i in range(0, len(order), b):
            index = order[i : i + b]
            yield self.serve(self.x[index]), self.y[index]

    def serve(self, x: torch.Tensor) -> torch.Tensor:
        return binarize(x, self.generator) if self.binarize_batches else x


class MNISTDataModule(L.LightningDataModule):
    def __init__(
        self,
        root: str | None = None,
        dataset: str = "mnist",
        dev_size: int = 10_000,
        split_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        download: bool = True,
        seed: int = 0,
        binarize: str | None = None,
    ):
        super().__init__()
        if dataset not in DATASETS:
            raise UserError(f"data.dataset={dataset!r} is not known; choose one of {', '.join(DATASETS)}")
        if binarize not in BINARIZE:
            raise UserError(f"data.binarize={binarize!r} is not known; choose null (grey levels), dynamic or static")
        self.binarize = binarize
        self.root = Path(root or os.environ.get(DATA_DIR_ENV) or "data").expanduser()
        self.dataset, self.dev_size, self.split_seed = dataset, dev_size, split_seed
        self.batch_size, self.eval_batch_size, self.download = batch_size, eval_batch_size, download
        self.generator = torch.Generator().manual_seed(seed)  # shuffling order, part of the checkpoint
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def raw_dir(self) -> Path:
        return self.root / DATASETS[self.dataset] / "raw"

    def prepare_data(self) -> None:
        if not missing_files(self.raw_dir):
            return
        reason = "downloading is off (data.download=false)"
        if self.download:
            try:
                download(self.root, self.dataset)
            except Exception as error:  # offline, a proxy, a checksum: all end in the same advice
                last_line = ([line for line in str(error).splitlines() if line.strip()] or [type(error).__name__])[-1]
                reason = f"downloading them failed ({last_line.strip()})"
        missing = missing_files(self.raw_dir)
        if missing:
            raise UserError(
                f"{DATASETS[self.dataset]} not found: {self.raw_dir} lacks {', '.join(missing)} "
                f"(the four IDX files, plain or .gz) and {reason}. "
                f"Point data.root (or the {DATA_DIR_ENV} environment variable) at the folder that holds "
                f"{DATASETS[self.dataset]}/raw/, e.g. `python train.py data.root=/path/to/data`."
            )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.prepare_data()
        x, y = load_split(self.raw_dir, "train")
        if not 0 < self.dev_size < len(x):
            raise UserError(
                f"data.dev_size={self.dev_size} must be between 1 and {len(x) - 1}: "
                f"the training file holds {len(x)} images and both train and dev need some"
            )
        train, dev = split_indices(len(x), self.dev_size, self.split_seed)
        self.splits = {"train": (x[train], y[train]), "dev": (x[dev], y[dev]), "test": load_split(self.raw_dir, "test")}
        if self.binarize:
            # One fixed draw of dev and test (and of train when static), the same for every run.
            fixed = torch.Generator().manual_seed(self.split_seed)
            for name in ("dev", "test") + (("train",) if self.binarize == "static" else ()):
                x, y = self.splits[name]
                self.splits[name] = (binarize(x, fixed), y)

    def train_dataloader(self) -> Batches:
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return Batches(
            *self.splits["train"],
            self.batch_size,
            shuffle=True,
            generator=self.generator,
            binarize_batches=self.binarize == "dynamic",
            rank=rank,
            world_size=world_size,
        )

    def val_dataloader(self) -> Batches:
        return Batches(*self.splits["dev"], self.eval_batch_size)

    def test_dataloader(self) -> Batches:
        return Batches(*self.splits["test"], self.eval_batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
