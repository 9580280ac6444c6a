"""The benchmark's data and configs: MNIST's files (or random pixels in their layout), the configs of the two models
composed as train.py composes them, one data module for every pipeline, and torchvision's loaders of the same
images. What every measurement shares is one `Bench`."""

import argparse
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks.settings import MODELS, ROOT
from vae.core.errors import UserError
from vae.data.mnist import DATA_DIR_ENV, FILES, read_idx, split_indices
from vae.files.schema import CONF_DIR


@dataclass
class Bench:
    """What the measurements share: the options, the plan (FULL or QUICK), the data, the composed configs."""

    args: argparse.Namespace
    plan: dict
    rounds: int
    tmp: Path  # a temporary folder, removed at the end
    root: Path  # the folder holding MNIST/raw/
    kind: str  # "mnist" or "synthetic"
    dev_size: int
    data: list[str]  # train.py's overrides that point it at the data
    cfgs: dict = field(default_factory=dict)  # model name -> its composed config
    datamodule: object = None  # set up once, for every pipeline and round

    @property
    def cfg0(self):
        return next(iter(self.cfgs.values()))

    @property
    def x_train(self) -> torch.Tensor:
        return self.datamodule.splits["train"][0]

    @property
    def x_dev(self) -> torch.Tensor:
        return self.datamodule.splits["dev"][0]


def find_data(given: str | None, tmp: Path) -> tuple[Path, str]:
    """(root holding MNIST/raw/, "mnist" or "synthetic"). --data must hold the four files (uncompressed: torchvision
    reads them so); without --data, $VAE_DATA_DIR or ../shared/data are used if they do, else synthetic files."""
    candidates = [given] if given else [os.environ.get(DATA_DIR_ENV), ROOT.parent / "shared" / "data"]
    for root in (Path(c).expanduser() for c in candidates if c):
        raw = root / "MNIST" / "raw"
        missing = [name for name in FILES.values() if not (raw / name).is_file()]
        if not missing:
            return root, "mnist"
        if given:
            raise UserError(
                f"--data {root}: {raw} lacks {', '.join(missing)}; give the folder that holds MNIST/raw/ "
                "with the four uncompressed IDX files, or leave --data out to time synthetic data"
            )
    # Random pixels in MNIST's layout (60,000 + 10,000 images): both readers take them, and time is the same.
    raw = tmp / "synthetic" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (n,), dtype=torch.uint8, generator=generator)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.numpy().tobytes())
    return raw.parents[1], "synthetic"


def data_overrides(root: Path) -> tuple[int, list[str]]:
    """(dev images, train.py's overrides for the data in `root`)."""
    n_file = len(read_idx(root / "MNIST" / "raw" / FILES["train_labels"], ndim=1))
    dev_size = min(10_000, n_file // 6)  # the project's 50,000 + 10,000 on MNIST; a sixth of a smaller file
    return dev_size, [f"data.root={root}", "data.download=false", f"data.dev_size={dev_size}"]


def compose(bench: Bench) -> dict:
    """Each model's config as train.py composes it, on the CPU, without the progress bar and the evaluation."""
    import hydra

    threads = bench.args.threads
    common = [
        *bench.data,
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "eval.enabled=false",
        *([f"threads={threads}"] if threads else []),
    ]
    with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="bench"):
        return {name: hydra.compose("config", overrides=[*common, *overrides]) for name, overrides in MODELS.items()}


def load(bench: Bench):
    """One data module for all pipelines and rounds (its setup, reading the IDX files, is not an epoch's cost);
    with --quick, its train and dev splits cut to a few thousand images."""
    from hydra.utils import instantiate

    datamodule = instantiate(bench.cfg0.data)
    datamodule.setup("fit")
    if bench.args.quick:
        for split, n in (("train", bench.plan["train"]), ("dev", bench.plan["dev"])):
            datamodule.splits[split] = tuple(t[:n] for t in datamodule.splits[split])
    return datamodule


def torchvision_loaders(bench: Bench) -> tuple:
    """(train, dev) DataLoaders of pytorch/examples/vae: torchvision's MNIST, ToTensor, batch 128, the train loader
    shuffled. They read the same files; Subset takes the same train and dev images as vae/data/mnist.py's split."""
    import torchvision
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    cfg0, x_train, x_dev = bench.cfg0, bench.x_train, bench.x_dev
    mnist = torchvision.datasets.MNIST(str(bench.root), train=True, download=False, transform=transforms.ToTensor())
    train_index, dev_index = split_indices(len(mnist), bench.dev_size, cfg0.data.split_seed)
    train_index, dev_index = train_index[: len(x_train)], dev_index[: len(x_dev)]  # --quick keeps a few
    if not torch.equal(mnist.data[train_index[:256]].float().div(255), x_train[:256, 0]):
        raise RuntimeError(
            "vae/data/mnist.py splits train and dev differently from this benchmark: update benchmarks/data.py"
        )
    # pytorch/examples/vae: DataLoader(batch_size=128, shuffle=True), and its test loader the same batch size.
    tv_train = DataLoader(Subset(mnist, train_index.tolist()), batch_size=cfg0.batch_size, shuffle=True)
    tv_dev = DataLoader(Subset(mnist, dev_index.tolist()), batch_size=cfg0.batch_size)
    return tv_train, tv_dev
