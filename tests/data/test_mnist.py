"""The data module: IDX reading and its errors, the splits, batches as index slices."""

import pytest
import torch

from helpers import TINY_DEV, TINY_TEST, TINY_TRAIN, make_mnist, write_idx
from vae.core.errors import UserError
from vae.data import mnist as data_module
from vae.data.mnist import Batches, MNISTDataModule, read_idx


def test_splits_shapes_and_pixel_range(tiny_mnist):
    dm = MNISTDataModule(str(tiny_mnist), dev_size=TINY_DEV, download=False)
    dm.setup()
    sizes = {name: len(x) for name, (x, y) in dm.splits.items()}
    assert sizes == {"train": TINY_TRAIN - TINY_DEV, "dev": TINY_DEV, "test": TINY_TEST}
    x, y = dm.splits["train"]
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1


def test_split_is_fixed_by_split_seed_not_by_run_seed(tiny_mnist):
    def dev_images(**kwargs):
        dm = MNISTDataModule(str(tiny_mnist), dev_size=TINY_DEV, download=False, **kwargs)
        dm.setup()
        return dm.splits["dev"][0]

    assert torch.equal(dev_images(seed=0), dev_images(seed=1))
    assert not torch.equal(dev_images(split_seed=0), dev_images(split_seed=1))


def test_train_and_dev_are_disjoint_and_cover_the_training_file(tiny_mnist):
    dm = MNISTDataModule(str(tiny_mnist), dev_size=TINY_DEV, download=False)
    dm.setup()
    x_all = read_idx(tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte", ndim=3)
    together = torch.cat([dm.splits["train"][0], dm.splits["dev"][0]]).mul(255).round().to(torch.uint8).squeeze(1)
    key = lambda images: sorted(images.flatten(1).tolist())  # noqa: E731
    assert key(together) == key(x_all)


def test_batches_are_slices_reshuffled_every_pass():
    x, y = torch.arange(10).float().view(10, 1), torch.arange(10)
    batches = Batches(x, y, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3
    first, second = [torch.cat([b[1] for b in batches]) for _ in range(2)]
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for bx, by in batches:
        assert torch.equal(bx.view(-1).long(), by)  # images and labels stay together


def test_unshuffled_batches_keep_order():
    x, y = torch.arange(5).float(), torch.arange(5)
    assert torch.cat([b for _, b in Batches(x, y, batch_size=2)]).tolist() == [0, 1, 2, 3, 4]


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    make_mnist(tmp_path, n_train=30, n_test=10, folder="FashionMNIST")
    dm = MNISTDataModule(str(tmp_path), dataset="fashion_mnist", dev_size=10, download=False)
    dm.setup()
    assert len(dm.splits["test"][0]) == 10


def test_root_from_environment_variable(tiny_mnist, monkeypatch):
    monkeypatch.setenv("VAE_DATA_DIR", str(tiny_mnist))
    assert MNISTDataModule(None).raw_dir == tiny_mnist / "MNIST" / "raw"


def test_config_reads_environment_variable(tiny_mnist, monkeypatch, tmp_path):
    from helpers import compose_config

    monkeypatch.setenv("VAE_DATA_DIR", str(tiny_mnist))
    assert compose_config([], tmp_path).data.root == str(tiny_mnist)


def test_failed_download_gives_the_clear_message(tmp_path, monkeypatch):
    def offline(root, dataset):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -2] Name or service not known>"
        )

    monkeypatch.setattr(data_module, "download", offline)
    with pytest.raises(UserError) as error:
        MNISTDataModule(str(tmp_path)).setup()
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "Name or service not known" in message
    assert "data.root" in message and "VAE_DATA_DIR" in message and "t10k-labels-idx1-ubyte" in message


def test_download_is_used_when_files_are_missing(tmp_path, monkeypatch):
    calls = []

    def fake_download(root, dataset):
        calls.append((root, dataset))
        make_mnist(root, n_train=30, n_test=10)

    monkeypatch.setattr(data_module, "download", fake_download)
    dm = MNISTDataModule(str(tmp_path), dev_size=10)
    dm.setup()
    assert calls == [(tmp_path, "mnist")] and len(dm.splits["train"][0]) == 20


def test_gzipped_files_are_read(tmp_path):
    import gzip

    root = make_mnist(tmp_path, n_train=30, n_test=10)
    for path in (root / "MNIST" / "raw").iterdir():
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    dm = MNISTDataModule(str(root), dev_size=10, download=False)
    dm.setup()
    assert len(dm.splits["test"][0]) == 10


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda packed: b"this is not gzip" + packed, "not a complete gzip file (BadGzipFile"),
        (lambda packed: packed[: len(packed) // 2], "not a complete gzip file (EOFError"),
    ],
)
def test_damaged_gzip_files_are_named(tmp_path, damage, message):
    import gzip

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(gzip.compress(bytes(range(256)) * 64)))
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        read_idx(path, ndim=3)


@pytest.mark.parametrize("split,prefix", [("train", "train"), ("test", "t10k")])
def test_a_file_without_images_is_named(tmp_path, split, prefix):
    root = make_mnist(tmp_path, n_train=30, n_test=10)
    raw = root / "MNIST" / "raw"
    write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.zeros(0, 28, 28, dtype=torch.uint8).numpy())
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.zeros(0, dtype=torch.uint8).numpy())
    with pytest.raises(UserError, match=f"{prefix}-images-idx3-ubyte holds no images") as error:
        MNISTDataModule(str(root), dev_size=10, download=False).setup()
    assert str(raw / f"{prefix}-images-idx3-ubyte") in str(error.value)  # the file itself, not only its folder


def test_bad_magic_number_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, torch.zeros(3, 28, 28, dtype=torch.uint8).numpy())
    data = bytearray(path.read_bytes())
    data[2] = 0x0D  # float data instead of unsigned bytes
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="magic number 0x00000d03, expected 0x00000803"):
        read_idx(path, ndim=3)


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, torch.zeros(3, 28, 28, dtype=torch.uint8).numpy())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"truncated or corrupt"):
        read_idx(path, ndim=3)


def test_labels_that_do_not_match_images(tmp_path):
    root = make_mnist(tmp_path, n_train=30, n_test=10)
    write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", torch.zeros(9, dtype=torch.uint8).numpy())
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte holds 10 images but .*t10k-labels-idx1-ubyte 9 labels"):
        MNISTDataModule(str(root), dev_size=10, download=False).setup()


def test_dev_size_must_leave_training_images(tiny_mnist):
    with pytest.raises(UserError, match=f"data.dev_size={TINY_TRAIN}"):
        MNISTDataModule(str(tiny_mnist), dev_size=TINY_TRAIN, download=False).setup()
