"""vae/run/feature_network.py: the feature classifier of a data module, trained once and then loaded from the cache
(without training, without touching torch's global random state), trained again when its file is damaged; and the
recipe tied to the cache's version, so that a changed recipe trains again."""

import ast
import errno
import hashlib
import inspect
import logging

import pytest
import torch

import vae.run.feature_network as module
from helpers import TINY_DEV, make_mnist
from vae.data.mnist import MNISTDataModule
from vae.files.classifier_cache import CLASSIFIER_RECIPE, classifier_file, data_key, save
from vae.maths import classifier as recipe
from vae.run.feature_network import feature_network

# The fingerprint of each version of the recipe (vae/maths/classifier.py). Another fingerprint means a changed
# recipe: bump CLASSIFIER_RECIPE in vae/files/classifier_cache.py and record the new one here.
# (1 was "e0b47f189051ed8f" until `logits` was split out of `forward`: the same operations, the same weights.)
RECIPES = {1: "2cc2f4a157be6844"}
LOGGER = "vae.run.feature_network"


def fingerprint() -> str:
    """The recipe's constants and the code of its network and training, without docstrings, comments or layout."""
    tree = ast.parse(inspect.getsource(recipe))
    code = []
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name != "accuracy":
            for inner in ast.walk(node):
                body = getattr(inner, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                    if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                        inner.body = body[1:] or [ast.Pass()]
            code.append(ast.unparse(node))
    text = f"{recipe.EPOCHS} {recipe.BATCH_SIZE} {recipe.LR} {recipe.SHIFT}\n" + "\n".join(code)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def setup_data(root) -> MNISTDataModule:
    datamodule = MNISTDataModule(root=str(root), dev_size=TINY_DEV, download=False)
    datamodule.setup()
    return datamodule


class Trainings:
    """Stands in for train_classifier: one epoch, counted; `allowed = False` makes a training fail the test."""

    def __init__(self):
        self.count, self.allowed = 0, True

    def __call__(self, x, y):
        assert self.allowed, "the classifier was trained again instead of loaded from the cache"
        self.count += 1
        return recipe.train_classifier(x, y, epochs=1)


@pytest.fixture
def trainings(monkeypatch) -> Trainings:
    trainings = Trainings()
    monkeypatch.setattr(module, "train_classifier", trainings)
    return trainings


@pytest.fixture(scope="module")
def tiny(tiny_mnist) -> MNISTDataModule:
    return setup_data(tiny_mnist)


def same_weights(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_trained_once_then_loaded_from_the_cache(tiny, trainings, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        trained, accuracy = feature_network(tiny, tmp_path)
    assert trainings.count == 1
    path = classifier_file(tmp_path, data_key(*tiny.splits["train"]))
    assert path.is_file()
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "training the feature classifier of" in caplog.text and str(path) in caplog.text
    assert 0 <= accuracy <= 1 and accuracy == recipe.accuracy(trained, *tiny.splits["test"])
    assert not trained.training and all(p.device.type == "cpu" for p in trained.parameters())

    trainings.allowed = False
    caplog.clear()
    torch.manual_seed(3)
    before = torch.get_rng_state()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        loaded, cached_accuracy = feature_network(tiny, tmp_path)
    assert torch.equal(torch.get_rng_state(), before)
    assert caplog.records == []  # nothing to say
    assert cached_accuracy == accuracy and same_weights(loaded, trained) and not loaded.training


def test_binarised_test_images_share_the_classifier_not_its_accuracy(tiny, trainings, tmp_path):
    trained, _ = feature_network(tiny, tmp_path)
    binarised = MNISTDataModule(root=str(tiny.root), dev_size=TINY_DEV, download=False, binarize="dynamic")
    binarised.setup()  # the same grey training images (binarised as they are served), binarised test images
    trainings.allowed = False
    loaded, accuracy = feature_network(binarised, tmp_path)
    assert same_weights(loaded, trained) and accuracy == recipe.accuracy(trained, *binarised.splits["test"])


@pytest.mark.parametrize("damage", ["garbage", "foreign"])
def test_a_damaged_or_foreign_file_is_trained_again_with_one_warning(tiny, trainings, tmp_path, caplog, damage):
    trained, _ = feature_network(tiny, tmp_path)
    path = classifier_file(tmp_path, data_key(*tiny.splits["train"]))
    if damage == "garbage":
        path.write_bytes(path.read_bytes()[:200])
    else:  # another data's classifier under this one's name
        other = setup_data(make_mnist(tmp_path / "other", n_train=120))
        foreign = classifier_file(tmp_path, data_key(*other.splits["train"]))
        feature_network(other, tmp_path)
        path.write_bytes(foreign.read_bytes())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        again, _ = feature_network(tiny, tmp_path)
    assert trainings.count == (2 if damage == "garbage" else 3)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(path) in warnings[0].message and "trained again" in warnings[0].message
    assert same_weights(again, trained)  # the same recipe and data: the same classifier
    trainings.allowed = False
    feature_network(tiny, tmp_path)  # the new file loads


def test_weights_that_do_not_fit_the_network_are_trained_again(tiny, trainings, tmp_path, caplog):
    key = data_key(*tiny.splits["train"])
    save(tmp_path, key, torch.nn.Linear(2, 2).state_dict(), 0.5, 1.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _, accuracy = feature_network(tiny, tmp_path)
    assert trainings.count == 1 and accuracy != 0.5
    assert "does not fit the network" in caplog.text


def test_a_cache_that_cannot_be_written_is_one_warning(tiny, trainings, tmp_path, monkeypatch, caplog):
    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, "save", full_disk)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        classifier, _ = feature_network(tiny, tmp_path)
    assert trainings.count == 1 and not classifier.training
    assert len(caplog.records) == 1 and "could not be cached" in caplog.text and "No space left" in caplog.text


def test_the_default_folder_is_beside_the_data(trainings, tmp_path):
    datamodule = setup_data(make_mnist(tmp_path / "data"))
    feature_network(datamodule)
    assert classifier_file(tmp_path / "data" / "vae-lab-cache", data_key(*datamodule.splits["train"])).is_file()


def test_the_recipe_is_the_cached_version():
    assert RECIPES.get(CLASSIFIER_RECIPE) == fingerprint(), (
        "the classifier's recipe changed: bump CLASSIFIER_RECIPE in vae/files/classifier_cache.py and record "
        f"{fingerprint()!r} for it in RECIPES"
    )
