"""A small CNN classifier of digits, trained once on the training split: its penultimate features measure generated
images (vae/maths/generation.py), as Inception's measure natural images in the FID, here without weights to
download and on 28 x 28 images.

    classifier = train_classifier(x_train, y_train)     # seeded, deterministic on the CPU, about a minute
    accuracy(classifier, x_test, y_test)                # 0.993 on MNIST
    classifier.features(x)                              # (B, feature_dim): the penultimate activations
    classifier.logits(features)                         # (B, 10): the logits of those features

Training draws from its own torch.Generator (the initial weights, the order of the images, their shifts), so it
neither depends on nor changes torch's global random state: a run that trains the classifier, or finds it cached,
draws the same numbers afterwards. A change to the recipe (the network, its initialisation, EPOCHS, BATCH_SIZE, LR,
SHIFT, the schedule) bumps CLASSIFIER_RECIPE in vae/files/classifier_cache.py, so that cached classifiers are trained
again.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# The recipe: 0.993 on MNIST's test set (trained on the 50,000 images of the training split) in 30 to 40 seconds on
# two CPU cores; with 3 epochs and no shifts 0.991, with 2 epochs 0.989.
EPOCHS, BATCH_SIZE, LR, SHIFT = 5, 128, 2e-3, 2


class DigitClassifier(nn.Module):
    """(B, 1, 28, 28) images in [0, 1] -> 10 logits. Two convolutions of stride 2, each with batch norm and ReLU
    (5 x 5 to 32 maps of 14 x 14, then 3 x 3 to 64 maps of 7 x 7), a fully connected layer of `feature_dim` units
    with batch norm and ReLU (the features), and a linear layer to the logits.

    Strides rather than max-pooling: a third of the time on a CPU for about the same accuracy (0.991 and 0.992 after 3
    epochs without shifts).
    """

    feature_dim = 128

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # the layers' own initialisation draws from the global state
            self.body = nn.Sequential(
                *block(1, 32, 5),  # (32, 14, 14)
                *block(32, 64, 3),  # (64, 7, 7)
                nn.Flatten(),
                nn.Linear(64 * 7 * 7, self.feature_dim, bias=False),
                nn.BatchNorm1d(self.feature_dim),
                nn.ReLU(),
            )
            self.head = nn.Linear(self.feature_dim, 10)
        self.initialise(generator if generator is not None else torch.Generator().manual_seed(0))

    @torch.no_grad()
    def initialise(self, generator: torch.Generator) -> None:
        """He-normal weights before each ReLU, a small uniform head, from `generator` alone."""
        for module in self.body:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
        bound = 1 / math.sqrt(self.feature_dim)
        nn.init.uniform_(self.head.weight, -bound, bound, generator=generator)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations, (B, feature_dim)."""
        return self.body(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The logits (B, 10) of features (B, feature_dim): what the features' users classify with, without a
        second pass through the convolutions."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits, (B, 10)."""
        return self.logits(self.body(x))


def block(in_channels: int, out_channels: int, size: int) -> list[nn.Module]:
    """A `size` x `size` convolution of stride 2 (no bias: the batch norm's shift is one), batch norm, ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, size, stride=2, padding=size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int = 0,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    shift: int = SHIFT,
) -> DigitClassifier:
    """A DigitClassifier trained on images x (N, 1, 28, 28) in [0, 1] and labels y (N,): Adam, its learning rate
    falling from `lr` to 0 along a half cosine, batches of `batch_size` index slices of a fresh permutation every
    epoch (the last, smaller batch of an epoch left out: another permutation serves its images next epoch), each
    image moved by up to `shift` pixels each way (0: as it is).

    Returned on the CPU in eval mode. The same data and seed give the same weights on the same machine with the same
    number of threads (torch.get_num_threads(): another number sums in another order)."""
    x, y = x.detach().cpu(), y.detach().cpu().long()
    n = len(x)
    if n < 2:
        raise ValueError(f"train_classifier needs at least 2 images, got {n}")
    generator = torch.Generator().manual_seed(seed)
    classifier = DigitClassifier(generator)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=lr)
    starts = range(0, max(n - batch_size, 0) + 1, batch_size)  # full batches only (all n when n < batch_size)
    total, step = epochs * len(starts), 0
    classifier.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in starts:
            index = order[start : start + batch_size]
            for group in optimiser.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            images = shifted(x[index], generator, shift) if shift else x[index]
            loss = F.cross_entropy(classifier(images), y[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
    return classifier.eval()


def shifted(x: torch.Tensor, generator: torch.Generator, most: int) -> torch.Tensor:
    """Each image moved by up to `most` pixels along each axis (its own draw; zeros come in at the edges)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (most, most, most, most))
    dy, dx = torch.randint(0, 2 * most + 1, (2, b, 1), generator=generator)
    rows, cols = dy + torch.arange(h), dx + torch.arange(w)  # (b, h), (b, w)
    return padded[torch.arange(b)[:, None, None], 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


@torch.no_grad()
def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """The fraction of images whose most likely class is their label, in eval mode (the classifier's mode is
    restored afterwards)."""
    if len(x) == 0:
        raise ValueError("accuracy of no images")
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    try:
        right = sum(
            int((classifier(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size].cpu()).sum())
            for i in range(0, len(x), batch_size)
        )
    finally:
        classifier.train(was_training)
    return right / len(x)
