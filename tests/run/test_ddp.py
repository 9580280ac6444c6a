"""trainer=ddp: two processes (CPU, gloo) train one run on disjoint halves of every epoch."""

import json
import math
import os
from pathlib import Path

import lightning as L
import pytest
import torch

from helpers import ROOT, run_train
from vae.data.mnist import Batches, MNISTDataModule


class RecordBatches(L.Callback):
    """Saves the training images each process was given, per epoch, to <folder>/rank<r>.pt."""

    def __init__(self, folder: str):
        self.folder, self.epochs = Path(folder), []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.epochs[-1].append(batch[0].detach().clone())

    def on_fit_end(self, trainer, pl_module):
        torch.save([torch.cat(batches) for batches in self.epochs], self.folder / f"rank{trainer.global_rank}.pt")


def rows(images: torch.Tensor) -> list[bytes]:
    """Each image as bytes, to compare sets of images."""
    return [bytes(row) for row in images.mul(255).round().to(torch.uint8).flatten(1).numpy()]


def test_batches_give_each_process_a_disjoint_equal_share():
    x, y = torch.arange(103).float().unsqueeze(1), torch.arange(103)
    shares = [
        list(
            Batches(
                x, y, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0), rank=rank, world_size=3
            )
        )
        for rank in range(3)
    ]
    seen = [torch.cat([batch_y for _, batch_y in share]) for share in shares]
    assert [len(s) for s in seen] == [34, 34, 34]
    assert len(set(torch.cat(seen).tolist())) == 102  # disjoint; one image of the 103 left out this epoch
    assert [len(share) for share in shares] == [len(Batches(x, y, 10, shuffle=True, world_size=3))] * 3 == [4] * 3


@pytest.mark.slow
def test_ddp_on_cpu_trains_two_processes_on_disjoint_halves(tiny_overrides, tiny_mnist, tmp_path):
    run_dir, record = tmp_path / "run", tmp_path / "record"
    record.mkdir()
    result = run_train(
        *tiny_overrides,
        "epochs=2",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "+callbacks.record._target_=test_ddp.RecordBatches",
        f"+callbacks.record.folder={record}",
        f"hydra.run.dir={run_dir}",
        env={"PYTHONPATH": os.pathsep.join(str(ROOT / "tests" / folder) for folder in ("run", ""))},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    datamodule = MNISTDataModule(root=str(tiny_mnist), dev_size=40, download=False)
    datamodule.setup()
    train = rows(datamodule.splits["train"][0])
    seen = [torch.load(record / f"rank{rank}.pt") for rank in (0, 1)]
    for epoch in range(2):
        first, second = rows(seen[0][epoch]), rows(seen[1][epoch])
        assert len(first) == len(second) == len(train) // 2
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted(train)
    assert rows(seen[0][0]) != rows(seen[0][1])  # a new permutation every epoch
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["steps"] == 2 * math.ceil(len(train) // 2 / 32)  # each process: half the batches
    assert len((run_dir / "history.csv").read_text().splitlines()) == 3
