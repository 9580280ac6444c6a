"""How good a model's generated pictures are, measured in the features of a small MNIST classifier (issue #23).

The classifier is any module that answers `features(x) -> (B, d)` (its penultimate layer) and `logits(features) ->
(B, 10)`, x of shape (B, 1, 28, 28) in [0, 1] (vae/maths/classifier.py's DigitClassifier is one). n draws z from
the model's `sampling_prior` are decoded two ways, as the samples figure does (vae/results/figures.py): the decoder
means E[x | z] and samples x ~ p(x | z); each set of pictures is compared with the test set:

    Fréchet distance   a Gaussian N(mu, S) fitted to each set's features, and the Fréchet (2-Wasserstein) distance
                       between the two (Heusel et al., 2017: FID, there in Inception features; Dowson & Landau, 1982):
                           d² = ||mu_a - mu_b||² + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})
                       lower is better; n training images score `fid_floor` (the estimate's own bias at this n)
    precision, recall  Kynkäänniemi et al. (2019): a ball around each point of a set, of radius its distance to
                       its k-th nearest neighbour in that set; precision = the share of generated points inside
                       some test point's ball (how realistic), recall = the share of test points inside some
                       generated point's ball (how much of the data is covered)
    classes            the classifier's digit for each sample: its histogram, the histogram's entropy in bits
                       (log2 10 = 3.32 when every digit is as frequent; the H(y) of the Inception Score,
                       Salimans et al., 2016) and the rare digits (a missing mode)

`reference_of` computes what the samples are compared with once per data and classifier (a `Reference`);
`generation_metrics` measures a model against it.
"""

import contextlib
import copy
import dataclasses
import logging
import math
import warnings

import numpy as np
import scipy.linalg
import torch

log = logging.getLogger("vae.maths.generation")

NEIGHBOURS = 3  # k of the k-NN balls (Kynkäänniemi et al., 2019, use k = 3)
CHUNK = 1000  # rows of a distance matrix held at once: 1000 x 10,000 float32 distances, 40 MB
JITTER = 1e-6  # added to both covariances' diagonals when (S_a S_b)^{1/2} comes out non-finite (pytorch-fid does so)


# --- the Fréchet distance -------------------------------------------------------------------------


def moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean (d,) and covariance (d, d) of features (N, d) in float64; the covariance divides by N - 1."""
    features = features.detach().cpu().double()
    return features.mean(0), torch.cov(features.T).reshape(features.shape[1], features.shape[1])


def _array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    """The Fréchet distance between N(mu_a, S_a) and N(mu_b, S_b) (Heusel et al., 2017, eq. 6), in float64:

        d² = ||mu_a - mu_b||² + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2})

    (S_a S_b)^{1/2} from scipy.linalg.sqrtm (Schur method, Deadman, Higham & Ralha, 2013), as pytorch-fid and
    the original TTUR code compute it; its real part is kept (S_a S_b is similar to the positive semi-definite
    S_a^{1/2} S_b S_a^{1/2}, so its eigenvalues are real and >= 0: an imaginary part is rounding).
    Not torchmetrics' FrechetInceptionDistance: it wants 3-channel uint8 images for its feature extractor (or a
    module with `num_features`), keeps its own sums and computes the distance itself; here the test set's moments
    are computed once and cached (a Reference), so the formula on moments is the unit.
    """
    mu_a, cov_a, mu_b, cov_b = (_array(value) for value in (mu_a, cov_a, mu_b, cov_b))
    difference = mu_a - mu_b
    with warnings.catch_warnings():  # a singular product (dead feature units) warns; its root is still finite
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # a singular product (fewer points than features): nudge both, as pytorch-fid
        offset = JITTER * np.eye(len(cov_a))
        log.warning(f"Fréchet distance: (S_a S_b)^(1/2) is not finite; {JITTER:g} added to the covariances' diagonals")
        root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(np.real(root))
    return float(difference @ difference + trace)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features (N_a, d) and (N_b, d)."""
    return frechet_from_moments(*moments(features_a), *moments(features_b))


# --- improved precision and recall ----------------------------------------------------------------


def squared_distances(a: torch.Tensor, b: torch.Tensor, b_norms: torch.Tensor | None = None) -> torch.Tensor:
    """||a_i - b_j||² for a (M, d) and b (N, d): (M, N), as ||a_i||² + ||b_j||² - 2 a_i.b_j, one matrix product
    (the NVlabs code of Kynkäänniemi et al. does the same). torch.cdist takes twice as long on two CPU cores
    (its square root, and its own copy of the operands): 7 s instead of 3 for 10,000 x 10,000 points in d = 128."""
    b_norms = (b * b).sum(1) if b_norms is None else b_norms
    return torch.addmm(b_norms[None, :], a, b.T, alpha=-2).add_((a * a).sum(1, keepdim=True)).clamp_(min=0)


def _squared_radii(points: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Each point's squared distance to its k-th nearest neighbour in `points`, itself excluded, `chunk` rows at a
    time. (Blocks of chunk x chunk, each used twice as distances are symmetric, halve the products but took longer:
    torch's top-k is as costly as the product, and slower on a block's columns.)"""
    if not 0 < k < len(points):
        raise ValueError(f"k = {k} nearest neighbours need more than k points; there are {len(points)}")
    norms = (points * points).sum(1)
    radii = torch.empty(len(points), dtype=points.dtype, device=points.device)
    for start in range(0, len(points), chunk):
        distances = squared_distances(points[start : start + chunk], points, norms)
        rows = torch.arange(len(distances), device=points.device)
        distances[rows, start + rows] = math.inf  # itself is no neighbour
        radii[start : start + len(distances)] = distances.topk(k, dim=1, largest=False).values[:, -1]
    return radii


def knn_radii(points: torch.Tensor, k: int = NEIGHBOURS, chunk: int = CHUNK) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in `points` (N, d), itself excluded: (N,). Memory holds
    chunk x N distances at a time."""
    return _squared_radii(points.detach().float(), k, chunk).sqrt()


def precision_recall(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int = NEIGHBOURS,
    chunk: int = CHUNK,
    real_squared_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019, eq. 1-2) of fake points (M, d) against real (N, d).

        r_i = ||phi_i - NN_k(phi_i)||, the distance to the k-th nearest neighbour within the same set
        precision = (1/M) sum_j [ exists i: ||fake_j - real_i|| <= r_i(real) ]
        recall    = (1/N) sum_i [ exists j: ||real_i - fake_j|| <= r_j(fake) ]

    Compared squared (the same order); the fake-to-real distances are computed once, `chunk` fake rows at a time,
    and serve both. `real_squared_radii`: the r_i(real)² of these real points and k, computed once (a Reference
    holds them) rather than at every call.
    """
    real, fake = real.detach().float(), fake.detach().float().to(real.device)
    real_radii = _squared_radii(real, k, chunk) if real_squared_radii is None else real_squared_radii.to(real.device)
    fake_radii = _squared_radii(fake, k, chunk)
    real_norms = (real * real).sum(1)
    realistic = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for start in range(0, len(fake), chunk):
        distances = squared_distances(fake[start : start + chunk], real, real_norms)  # (chunk, N)
        realistic[start : start + len(distances)] = (distances <= real_radii[None, :]).any(1)
        covered |= (distances <= fake_radii[start : start + len(distances), None]).any(0)
    return realistic.sum().item() / len(fake), covered.sum().item() / len(real)


# --- classes --------------------------------------------------------------------------------------


def class_histogram(classes: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """The share of each class among `classes` (N,) of 0 .. n_classes - 1: (n_classes,) float64, summing to 1."""
    classes = classes.detach().cpu().long()
    if len(classes) == 0 or classes.min() < 0 or classes.max() >= n_classes:
        raise ValueError(f"class_histogram needs classes in 0 .. {n_classes - 1}, at least one")
    return torch.bincount(classes, minlength=n_classes).double() / len(classes)


def entropy_bits(histogram: torch.Tensor) -> float:
    """H = -sum_c p_c log2 p_c (0 log 0 = 0): log2 C bits when the C classes are equally frequent, 0 for one class."""
    p = torch.as_tensor(histogram, dtype=torch.float64)
    p = p[p > 0]
    return float(-(p * torch.log2(p)).sum()) + 0.0  # + 0.0: one class gives 0.0, not -0.0


def rare_classes(histogram: torch.Tensor, below: float = 0.5) -> list[int]:
    """The classes generated at less than `below` times the uniform share 1/C."""
    p = torch.as_tensor(histogram, dtype=torch.float64)
    return [int(c) for c in torch.nonzero(p < below / len(p)).flatten()]


# --- features -------------------------------------------------------------------------------------


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def _through(classifier, x: torch.Tensor, batch_size: int, classify: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """features_of, the forward pass (the classes) only where asked for: the decoder means need no classes."""
    if len(x) == 0:
        raise ValueError("features_of needs at least one image")
    device, was_training = _device_of(classifier), classifier.training
    classifier.eval()
    features, classes = [], []
    try:
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size].to(device=device, dtype=torch.float32)
            hidden = classifier.features(batch)
            features.append(hidden.float().cpu())
            if classify:  # the logits from the same features: the convolutions run once
                classes.append(classifier.logits(hidden).argmax(-1).cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(features), torch.cat(classes) if classify else None


def features_of(classifier, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's features (N, d) of images x (N, 1, 28, 28) and its predicted classes (N,) (argmax of
    the logits), on the CPU; in eval mode (its mode is restored after), no gradients, batch by batch on its device."""
    return _through(classifier, x, batch_size, classify=True)


# --- the reference --------------------------------------------------------------------------------


@dataclasses.dataclass
class Reference:
    """What generated pictures are compared with, computed once per data and classifier (`reference_of`).

    features     (N_test, d) float32: the test set's classifier features (precision and recall need the points)
    mean, covariance  (d,), (d, d) float64: their moments (the Fréchet distance needs only these)
    squared_radii  (N_test,) float32: each test feature's squared distance to its NEIGHBOURS-th nearest neighbour
                 (precision needs them)
    histogram    (10,) float64: the test set's classes, as the classifier predicts them
    accuracy     the classifier's accuracy on these test images (nan when no labels were given)
    fid_floor    the Fréchet distance of n training images to the test set: what a generator that draws
                 real digits scores with n pictures (the distance's bias at finite n, and the train/test gap)
    n            how many training images `fid_floor` used
    """

    features: torch.Tensor
    mean: torch.Tensor
    covariance: torch.Tensor
    squared_radii: torch.Tensor
    histogram: torch.Tensor
    accuracy: float
    fid_floor: float
    n: int

    def to_dict(self) -> dict:
        """Tensors and plain numbers only: `torch.load(..., weights_only=True)` reads it back."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Reference":
        return cls(
            features=d["features"],
            mean=d["mean"],
            covariance=d["covariance"],
            squared_radii=d["squared_radii"],
            histogram=d["histogram"],
            accuracy=float(d["accuracy"]),
            fid_floor=float(d["fid_floor"]),
            n=int(d["n"]),
        )


def reference_of(
    classifier,
    x_test: torch.Tensor,
    x_train: torch.Tensor,
    n: int,
    seed: int,
    batch_size: int = 1000,
    y_test: torch.Tensor | None = None,
) -> Reference:
    """The test set's features, moments, class histogram and, given its labels y_test, the classifier's accuracy on
    it (from the same pass), and the Fréchet distance of n training images (drawn without replacement by a generator
    seeded with `seed`; all of them when n > len(x_train)) to the test set."""
    features, classes = features_of(classifier, x_test, batch_size)
    accuracy = math.nan if y_test is None else int((classes == y_test.to(classes.device)).sum()) / len(classes)
    mean, covariance = moments(features)
    n = min(n, len(x_train))
    chosen = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]
    train_features, _ = _through(classifier, x_train[chosen], batch_size, classify=False)
    return Reference(
        features=features,
        mean=mean,
        covariance=covariance,
        squared_radii=_squared_radii(features, NEIGHBOURS, CHUNK),
        histogram=class_histogram(classes),
        accuracy=accuracy,
        fid_floor=frechet_from_moments(*moments(train_features), mean, covariance),
        n=n,
    )


# --- a model's pictures ---------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """The random numbers drawn inside come from forks of the CPU generator (and of the model's GPU's, where z is
    drawn on a GPU) seeded with `seed`; the caller's streams are as they were on exit."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


@torch.no_grad()
def generated_features(model, classifier, x_train: torch.Tensor, n: int, seed: int, batch_size: int = 1000) -> dict:
    """n draws z ~ model.sampling_prior(x_train), decoded two ways, batch by batch, in the classifier's features:
    {"means": features of E[x | z], "samples": features of x ~ p(x | z) clamped to [0, 1], "classes": the
    samples' predicted classes}. The noise of p(x | z) is drawn on the CPU (the same numbers on any device)."""
    was_training = model.training
    model.eval()
    device = _device_of(model)
    means, samples, classes = [], [], []
    try:
        with _seeded(seed, device):
            z = model.sampling_prior(x_train).sample(n)
            likelihood = copy.deepcopy(model.likelihood).cpu()  # a learned sigma too: noise and sigma on the CPU
            for start in range(0, n, batch_size):
                x_hat = model.decoder(z[start : start + batch_size].to(device)).cpu()
                means.append(_through(classifier, likelihood.mean(x_hat), batch_size, classify=False)[0])
                drawn = likelihood.sample(x_hat).clamp(0, 1)  # on the CPU: the same numbers on any device
                drawn_features, drawn_classes = features_of(classifier, drawn, batch_size)
                samples.append(drawn_features)
                classes.append(drawn_classes)
    finally:
        model.train(was_training)
    return {"means": torch.cat(means), "samples": torch.cat(samples), "classes": torch.cat(classes)}


def generation_metrics(
    model,
    classifier,
    reference: Reference,
    x_train: torch.Tensor,
    n: int = 10000,
    seed: int = 0,
    batch_size: int = 1000,
) -> dict:
    """The measures of n generated pictures against the reference (the test set), as metrics.json keys `gen/...`:
    the Fréchet distance and precision / recall of the decoder means and of the samples, the samples' class
    histogram, its entropy and rare classes, the test set's histogram, the floor and n."""
    if n != reference.n:
        log.warning(f"{n} generated pictures against a floor of {reference.n} training images: not comparable")
    generated = generated_features(model, classifier, x_train, n, seed, batch_size)
    histogram = class_histogram(generated["classes"], len(reference.histogram))
    metrics = {}
    for way in ("means", "samples"):
        features = generated[way]
        metrics[f"gen/fid_{way}"] = frechet_from_moments(*moments(features), reference.mean, reference.covariance)
        precision, recall = precision_recall(reference.features, features, real_squared_radii=reference.squared_radii)
        metrics[f"gen/precision_{way}"], metrics[f"gen/recall_{way}"] = precision, recall
    return {
        **metrics,
        "gen/class_entropy_bits": entropy_bits(histogram),
        "gen/class_histogram": histogram.tolist(),
        "gen/class_histogram_test": torch.as_tensor(reference.histogram, dtype=torch.float64).tolist(),
        "gen/rare_classes": rare_classes(histogram),
        "gen/fid_floor": float(reference.fid_floor),
        "gen/n": int(n),
    }


def summary_lines(metrics: dict) -> list[str]:
    """The measures as a few readable lines, for the run's printed summary."""
    m = metrics
    classes = len(m["gen/class_histogram"])
    rare = ", ".join(str(c) for c in m["gen/rare_classes"]) or "none"
    shares = "  ".join(
        f"{c}: {100 * p:.1f}% ({100 * q:.1f}%)"
        for c, (p, q) in enumerate(zip(m["gen/class_histogram"], m["gen/class_histogram_test"], strict=True))
    )
    return [
        f"FID (MNIST classifier features), N = {m['gen/n']} vs the test set: means {m['gen/fid_means']:.1f}, "
        f"samples {m['gen/fid_samples']:.1f}; floor (training images) {m['gen/fid_floor']:.1f}",
        f"precision / recall (k = {NEIGHBOURS}): means {m['gen/precision_means']:.2f} / {m['gen/recall_means']:.2f}, "
        f"samples {m['gen/precision_samples']:.2f} / {m['gen/recall_samples']:.2f}",
        f"classes of the samples: entropy {m['gen/class_entropy_bits']:.2f} bits of log2 {classes} = "
        f"{math.log2(classes):.2f}; rare digits (under half the share 1/{classes}): {rare}",
        f"share per digit, samples (test set): {shares}",
    ]
