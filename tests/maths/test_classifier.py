"""vae/maths/classifier.py: the feature classifier trains deterministically from its own generator (the same weights
twice, torch's global random state neither read nor changed), answers features of feature_dim columns, and learns.
Real MNIST's numbers (0.993 in about 40 s) are the recipe's comment's; here tiny data and one epoch."""

import pytest
import torch

from helpers import TINY_DEV
from vae.data.mnist import MNISTDataModule
from vae.maths.classifier import DigitClassifier, accuracy, shifted, train_classifier


@pytest.fixture(scope="module")
def tiny(tiny_mnist):
    datamodule = MNISTDataModule(root=str(tiny_mnist), dev_size=TINY_DEV, download=False)
    datamodule.setup()
    return datamodule.splits


def weights(module) -> dict:
    return {name: value.clone() for name, value in module.state_dict().items()}


def test_training_is_deterministic_and_leaves_the_global_random_state_alone(tiny):
    x, y = tiny["train"]
    trained = []
    for global_seed in (1, 2):  # another global state: the same weights, since training never draws from it
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        trained.append(weights(train_classifier(x, y, epochs=1)))
        assert torch.equal(torch.get_rng_state(), before)
    assert trained[0].keys() == trained[1].keys()
    for name in trained[0]:
        assert torch.equal(trained[0][name], trained[1][name]), name
    other = weights(train_classifier(x, y, seed=1, epochs=1))
    assert not all(torch.equal(other[name], trained[0][name]) for name in other)


def test_building_the_network_leaves_the_global_random_state_alone():
    before = torch.get_rng_state()
    first, second = DigitClassifier(), DigitClassifier()
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_features_have_feature_dim_columns_and_the_classifier_comes_back_ready(tiny):
    x, y = tiny["train"]
    classifier = train_classifier(x, y, epochs=1)
    assert not classifier.training
    assert all(p.device.type == "cpu" for p in classifier.parameters())
    with torch.no_grad():
        features, logits = classifier.features(x[:5]), classifier(x[:5])
    assert features.shape == (5, DigitClassifier.feature_dim) and logits.shape == (5, 10)
    assert (features >= 0).all()  # after the ReLU


def test_it_learns_the_tiny_digits(tiny):
    """The tiny data's 'digits' are discs whose place is the label: separable, learnt in one epoch of small batches."""
    x, y = tiny["train"]
    classifier = train_classifier(x, y, epochs=1, batch_size=32)
    assert accuracy(classifier, *tiny["test"]) >= 0.95
    assert accuracy(classifier, x, y, batch_size=7) == accuracy(classifier, x, y)  # batches do not matter


def test_accuracy_restores_the_mode():
    classifier = DigitClassifier().train()
    accuracy(classifier, torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    assert classifier.training


def test_shifts_move_each_image_within_reach():
    x = torch.zeros(50, 1, 28, 28)
    x[:, 0, 10, 12] = 1
    moved = shifted(x, torch.Generator().manual_seed(0), 2)
    places = moved[:, 0].flatten(1).argmax(1)
    rows, cols = places // 28, places % 28
    assert moved.shape == x.shape and (moved.sum((1, 2, 3)) == 1).all()
    assert set(rows.tolist()) == set(range(8, 13)) and set(cols.tolist()) == set(range(10, 15))
