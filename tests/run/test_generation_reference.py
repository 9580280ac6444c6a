"""vae/run/generation.py: the test set's reference (features, moments, k-NN radii, floor) computed once per data and
N, cached beside the classifier, read back on the next run, and computed again (and cached anew) when the cached one
was written by a version that kept less."""

import pytest
import torch

import vae.run.generation as module
from helpers import TINY_DEV, make_model
from vae.data.mnist import MNISTDataModule
from vae.files.classifier_cache import cache_folder, data_key, load_reference, save_reference
from vae.maths import classifier as recipe
from vae.maths.generation import reference_of

N = 40


class Counted:
    """Stands in for reference_of and counts its calls."""

    def __init__(self):
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return reference_of(*args, **kwargs)


@pytest.fixture
def setting(tiny_mnist, tmp_path, monkeypatch):
    datamodule = MNISTDataModule(root=str(tiny_mnist), dev_size=TINY_DEV, download=False)
    datamodule.setup()
    datamodule.root = tmp_path  # the cache goes beside "the data": a folder of this test's own
    monkeypatch.setattr(
        "vae.run.feature_network.train_classifier", lambda x, y: recipe.train_classifier(x, y, epochs=1)
    )
    counted = Counted()
    monkeypatch.setattr(module, "reference_of", counted)
    (x_train, y_train), (x_test, y_test) = datamodule.splits["train"], datamodule.splits["test"]
    key = data_key(x_test, y_test, extra=data_key(x_train, y_train))
    return datamodule, counted, cache_folder(datamodule.root), key


def test_the_reference_is_computed_once_then_read_back(setting):
    datamodule, counted, folder, key = setting
    model = make_model("vae", latent_dim=2, width=16)
    first = module.measure_generation(model, datamodule, N, seed=0)
    assert counted.count == 1 and load_reference(folder, key, N) is not None
    classifier, _ = module.feature_network(datamodule)
    assert first["gen/classifier_accuracy"] == recipe.accuracy(classifier, *datamodule.splits["test"])
    assert module.measure_generation(model, datamodule, N, seed=0) == first and counted.count == 1


def test_a_reference_cached_without_the_radii_is_computed_again_and_cached_anew(setting):
    datamodule, counted, folder, key = setting
    model = make_model("vae", latent_dim=2, width=16)
    first = module.measure_generation(model, datamodule, N, seed=0)
    older = {name: value for name, value in load_reference(folder, key, N).items() if name != "squared_radii"}
    save_reference(folder, key, N, older)  # as the version before the radii were kept wrote it
    assert module.measure_generation(model, datamodule, N, seed=0) == first and counted.count == 2
    assert torch.is_tensor(load_reference(folder, key, N)["squared_radii"])
