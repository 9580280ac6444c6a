"""vae/maths/generation.py: the Fréchet distance against closed forms for Gaussians and against scipy on features, the
improved precision and recall against a brute-force count and on point clouds of known overlap, the class histogram
and its entropy, the reference, and the measures of a tiny model's pictures with a stand-in classifier."""

import io
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from helpers import make_model
from vae.maths.generation import (
    NEIGHBOURS,
    Reference,
    class_histogram,
    entropy_bits,
    features_of,
    frechet_distance,
    frechet_from_moments,
    generation_metrics,
    knn_radii,
    precision_recall,
    rare_classes,
    reference_of,
    summary_lines,
)

KEYS = {
    "gen/fid_means",
    "gen/fid_samples",
    "gen/precision_means",
    "gen/recall_means",
    "gen/precision_samples",
    "gen/recall_samples",
    "gen/class_entropy_bits",
    "gen/class_histogram",
    "gen/class_histogram_test",
    "gen/rare_classes",
    "gen/fid_floor",
    "gen/n",
}


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_covariance(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=generator(seed), dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def gaussian_sample(mean: torch.Tensor, covariance: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    noise = torch.randn(n, len(mean), generator=generator(seed), dtype=torch.float64)
    return mean + noise @ torch.linalg.cholesky(covariance).T


# --- the Fréchet distance -------------------------------------------------------------------------


def test_frechet_of_diagonal_gaussians_is_the_closed_form():
    """S_a, S_b diagonal: (S_a S_b)^{1/2} = diag(sqrt(a_i b_i)), so
    d² = ||mu_a - mu_b||² + sum_i (sqrt a_i - sqrt b_i)²."""
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0, 3.0]), torch.tensor([1.0, 1.0, 0.5, -1.0])
    a, b = torch.tensor([1.0, 4.0, 0.25, 9.0]), torch.tensor([4.0, 1.0, 1.0, 9.0])
    expected = (mu_a - mu_b).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum()  # 1 + 6.25 + 16 + 1 + 1 + 0.25
    assert float(expected) == pytest.approx(25.5)
    assert frechet_from_moments(mu_a, torch.diag(a), mu_b, torch.diag(b)) == pytest.approx(25.5, rel=1e-12)


@pytest.mark.parametrize("c", [0.5, 2.0, 3.0])
def test_frechet_of_scaled_covariances_is_the_closed_form_from_moments_and_from_samples(c):
    """S_b = c² S_a: (S_a S_b)^{1/2} = c S_a, so d² = ||mu_a - mu_b||² + (1 - c)² Tr S_a; from large samples of the
    two Gaussians the estimate comes within a few per cent."""
    d = 5
    cov_a = random_covariance(d, seed=1)
    cov_b = c**2 * cov_a
    mu_a = torch.randn(d, generator=generator(2), dtype=torch.float64)
    mu_b = mu_a + torch.tensor([1.0, -0.5, 0.0, 0.25, 0.5], dtype=torch.float64)
    expected = float((mu_a - mu_b).pow(2).sum() + (1 - c) ** 2 * torch.trace(cov_a))
    assert frechet_from_moments(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-10)
    a, b = gaussian_sample(mu_a, cov_a, 40_000, seed=3), gaussian_sample(mu_b, cov_b, 40_000, seed=4)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected, rel=0.05, abs=0.02)


def test_frechet_matches_scipy_and_the_eigenvalue_form_on_random_features():
    """Features whose covariances do not commute: the test's own numpy/scipy computation, and Tr (S_a S_b)^{1/2} as the
    sum of the square roots of the eigenvalues of the symmetric S_a^{1/2} S_b S_a^{1/2} (no sqrtm of a product)."""
    a = torch.randn(300, 12, generator=generator(5)) @ torch.randn(12, 12, generator=generator(6))
    b = torch.randn(400, 12, generator=generator(7)).pow(2) + 0.3
    fa, fb = a.double().numpy(), b.double().numpy()
    mu_a, mu_b, cov_a, cov_b = fa.mean(0), fb.mean(0), np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    base = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
    by_sqrtm = base - 2 * np.trace(np.real(scipy.linalg.sqrtm(cov_a @ cov_b)))
    root_a = scipy.linalg.sqrtm(cov_a).real
    by_eigenvalues = base - 2 * np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)))
    assert by_sqrtm == pytest.approx(by_eigenvalues, rel=1e-8)
    assert frechet_distance(a, b) == pytest.approx(by_sqrtm, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(by_sqrtm, rel=1e-8)


def test_a_set_against_itself_scores_about_zero():
    a = torch.randn(500, 16, generator=generator(8)) * 3 + 1
    assert abs(frechet_distance(a, a)) < 1e-8 * float(a.var(0).sum())
    assert frechet_distance(a, a + 0.5) == pytest.approx(16 * 0.25, rel=1e-6)  # a shift moves only the means


def test_fewer_points_than_features_still_give_a_finite_distance():
    a, b = torch.randn(10, 32, generator=generator(9)), torch.randn(12, 32, generator=generator(10))
    assert math.isfinite(frechet_distance(a, b))


# --- improved precision and recall ----------------------------------------------------------------


def brute_force_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al. (2019) point by point, in float64."""
    real, fake = real.double().numpy(), fake.double().numpy()

    def radii(points):  # the sorted distances start with 0, the point itself: [k] is the k-th neighbour
        return np.array([np.sort(np.linalg.norm(points - p, axis=1))[k] for p in points])

    def inside(points, centres, centre_radii):
        return np.mean([np.any(np.linalg.norm(centres - p, axis=1) <= centre_radii) for p in points])

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_match_a_brute_force_count(k):
    """Chunks of 7 rows (with a remainder) against the loop; real and fake of different sizes, overlapping."""
    real = torch.randn(60, 5, generator=generator(11))
    fake = 1.5 * torch.randn(45, 5, generator=generator(12)) + 1.5
    expected = brute_force_precision_recall(real, fake, k)
    assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95  # a case where the count decides
    assert precision_recall(real, fake, k=k, chunk=7) == pytest.approx(expected, abs=1e-12)
    points = real.double().numpy()
    brute_radii = [np.sort(np.linalg.norm(points - p, axis=1))[k] for p in points]
    assert knn_radii(real, k, chunk=7).double().numpy() == pytest.approx(brute_radii, rel=1e-5)
    given = torch.tensor(brute_radii, dtype=torch.float32) ** 2  # the real radii computed once, as a Reference holds
    assert precision_recall(real, fake, k=k, chunk=7, real_squared_radii=given) == pytest.approx(expected, abs=1e-12)


def clusters(which, per_cluster: int, seed: int) -> torch.Tensor:
    """Points around the centres (50 c, 0) of the clusters c in `which`, standard deviation 1: far apart."""
    centres = torch.tensor([[50.0 * c, 0.0] for c in which]).repeat_interleave(per_cluster, 0)
    return centres + torch.randn(len(centres), 2, generator=generator(seed))


def test_identical_clouds_score_one_and_one():
    real = clusters(range(10), 50, seed=13)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)


def test_two_samples_of_one_distribution_score_near_one():
    precision, recall = precision_recall(clusters(range(10), 100, seed=14), clusters(range(10), 100, seed=15))
    assert precision > 0.85 and recall > 0.85


def test_disjoint_clouds_score_zero_and_zero():
    real = clusters(range(10), 30, seed=16)
    assert precision_recall(real, real + torch.tensor([0.0, 1000.0])) == (0.0, 0.0)


def test_dropped_modes_keep_precision_and_lose_recall():
    """Fake = the real points of 2 of the 10 clusters: every fake point is real (precision 1), 2/10 of the real
    points are covered (recall 0.2). Fresh draws from those 2 clusters: about the same."""
    real = clusters(range(10), 100, seed=17)
    assert precision_recall(real, real[:200]) == pytest.approx((1.0, 0.2))
    precision, recall = precision_recall(real, clusters([0, 1], 100, seed=18))
    assert precision > 0.85 and 0.15 < recall <= 0.2


def test_made_up_modes_lose_precision_and_keep_recall():
    """The reverse: real from 2 clusters, fake from 10: 2/10 of the fake points are realistic, all real covered."""
    real = clusters([0, 1], 100, seed=19)
    assert precision_recall(real, clusters(range(10), 100, seed=19)) == pytest.approx((0.2, 1.0))
    precision, recall = precision_recall(real, clusters(range(10), 100, seed=20))
    assert 0.15 < precision <= 0.2 and recall > 0.85


def test_k_must_leave_neighbours():
    with pytest.raises(ValueError, match="nearest neighbours"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2), k=3)


# --- classes --------------------------------------------------------------------------------------


def test_class_histogram_counts_shares():
    histogram = class_histogram(torch.tensor([0, 0, 3, 9, 3, 3, 0, 0]))
    assert histogram.tolist() == [0.5, 0, 0, 0.375, 0, 0, 0, 0, 0, 0.125]
    assert class_histogram(torch.tensor([1, 2]), n_classes=3).tolist() == [0, 0.5, 0.5]
    with pytest.raises(ValueError):
        class_histogram(torch.tensor([10]))


def test_entropy_in_bits():
    assert entropy_bits(torch.full((10,), 0.1)) == pytest.approx(math.log2(10))
    assert math.log2(10) == pytest.approx(3.3219, abs=1e-4)
    assert entropy_bits(torch.tensor([0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0])) == 0
    assert entropy_bits(torch.tensor([0.5, 0.5] + [0] * 8)) == pytest.approx(1)
    assert entropy_bits(torch.tensor([0.5, 0.25, 0.25])) == pytest.approx(1.5)


def test_rare_classes_are_those_under_a_share_of_the_uniform():
    histogram = torch.tensor([0.04, 0.05, 0.0, 0.11, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2])  # sums to 1
    assert rare_classes(histogram) == [0, 2]  # under 0.05; class 1 at exactly 0.05 is not
    assert rare_classes(histogram, below=1.0) == [0, 1, 2]
    assert rare_classes(torch.full((10,), 0.1)) == []


# --- features, the reference and a model's pictures ------------------------------------------------


class StandInClassifier(nn.Module):
    """The classifier's contract with fixed random weights: features = tanh of a projection of the pixels (d = 16),
    logits = a linear map of the features. Records the mode it ran in."""

    def __init__(self, d: int = 16, seed: int = 0):
        super().__init__()
        self.project = nn.Parameter(3 * torch.randn(784, d, generator=generator(seed)) / 28, requires_grad=False)
        self.head = nn.Parameter(torch.randn(d, 10, generator=generator(seed + 1)), requires_grad=False)
        self.modes = set()

    def features(self, x):
        self.modes.add(self.training)
        return torch.tanh((x.flatten(1) - 0.3) @ self.project)

    def logits(self, features):
        return features @ self.head

    def forward(self, x):
        return self.logits(self.features(x))


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=generator(seed)) ** 3  # dark, like MNIST


def test_features_of_runs_in_eval_mode_batch_by_batch():
    classifier, x = StandInClassifier(), images(50, seed=21)
    features, classes = features_of(classifier, x, batch_size=7)
    assert classifier.modes == {False} and classifier.training  # eval inside, its mode restored
    assert torch.allclose(features, classifier.features(x), atol=1e-6)
    assert torch.equal(classes, classifier(x).argmax(1))
    assert torch.equal(features_of(classifier, x, batch_size=1000)[1], classes)


def test_the_reference_holds_the_test_set_and_the_floor_of_n_training_images():
    classifier, x_test, x_train = StandInClassifier(), images(80, seed=22), images(120, seed=23)
    reference = reference_of(classifier, x_test, x_train, n=60, seed=4, batch_size=32)
    test_features = classifier.features(x_test)
    assert reference.n == 60 and reference.features.shape == (80, 16)
    assert torch.allclose(reference.mean, test_features.double().mean(0), atol=1e-6)
    assert reference.mean.dtype == reference.covariance.dtype == torch.float64
    assert reference.covariance.numpy() == pytest.approx(np.cov(test_features.double().numpy().T), abs=1e-6)
    counts = torch.bincount(classifier(x_test).argmax(1), minlength=10)
    assert reference.histogram.tolist() == pytest.approx((counts.double() / 80).tolist(), abs=1e-12)
    chosen = torch.randperm(120, generator=generator(4))[:60]
    floor = frechet_distance(classifier.features(x_train[chosen]), test_features)
    assert reference.fid_floor == pytest.approx(floor, rel=1e-5)
    points = test_features.double().numpy()  # each test point's squared distance to its 3rd neighbour, by brute force
    brute = [np.sort(((points - p) ** 2).sum(1))[NEIGHBOURS] for p in points]
    assert reference.squared_radii.double().numpy() == pytest.approx(brute, rel=1e-4)
    assert math.isnan(reference.accuracy)  # no labels given
    labels = torch.randint(0, 10, (80,), generator=generator(5))
    labelled = reference_of(classifier, x_test, x_train, n=60, seed=4, batch_size=32, y_test=labels)
    assert labelled.accuracy == int((classifier(x_test).argmax(1) == labels).sum()) / 80
    everything = reference_of(classifier, x_test, x_test, n=1000, seed=0)  # n above the images: all of them
    assert everything.n == 80 and abs(everything.fid_floor) < 1e-6


def test_the_reference_round_trips_through_a_weights_only_load():
    reference = reference_of(StandInClassifier(), images(40, seed=24), images(30, seed=25), n=20, seed=0)
    buffer = io.BytesIO()
    torch.save(reference.to_dict(), buffer)
    buffer.seek(0)
    loaded = Reference.from_dict(torch.load(buffer, weights_only=True))
    for name in ("features", "mean", "covariance", "histogram"):
        assert torch.equal(getattr(loaded, name), getattr(reference, name))
    assert (loaded.fid_floor, loaded.n) == (reference.fid_floor, reference.n)
    assert torch.equal(loaded.squared_radii, reference.squared_radii) and math.isnan(loaded.accuracy)


@pytest.fixture(scope="module")
def setting():
    classifier, x_test, x_train = StandInClassifier(), images(80, seed=26), images(100, seed=27)
    return classifier, x_train, x_test, reference_of(classifier, x_test, x_train, n=48, seed=0, batch_size=32)


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_generation_metrics_are_complete_finite_repeatable_and_leave_the_random_stream(kind, setting):
    classifier, x_train, _, reference = setting
    model = make_model(kind, latent_dim=2, width=16)
    state = torch.get_rng_state()
    metrics = generation_metrics(model, classifier, reference, x_train, n=48, seed=3, batch_size=20)
    assert torch.equal(torch.get_rng_state(), state) and model.training
    assert set(metrics) == KEYS
    assert metrics["gen/n"] == 48 and isinstance(metrics["gen/n"], int)
    scalars = [value for value in metrics.values() if isinstance(value, float)]
    assert len(scalars) == 8 and all(math.isfinite(value) for value in scalars)
    for name in ("gen/class_histogram", "gen/class_histogram_test"):
        assert len(metrics[name]) == 10 and sum(metrics[name]) == pytest.approx(1)
    assert metrics["gen/class_histogram_test"] == pytest.approx(reference.histogram.tolist())
    assert metrics["gen/fid_floor"] == reference.fid_floor
    assert metrics["gen/rare_classes"] == rare_classes(torch.tensor(metrics["gen/class_histogram"]))
    assert all(0 <= metrics[f"gen/{m}_{w}"] <= 1 for m in ("precision", "recall") for w in ("means", "samples"))
    assert generation_metrics(model, classifier, reference, x_train, n=48, seed=3, batch_size=20) == metrics
    other = generation_metrics(model, classifier, reference, x_train, n=48, seed=4, batch_size=20)
    assert other["gen/fid_samples"] != metrics["gen/fid_samples"]
    same_z = generation_metrics(model, classifier, reference, x_train, n=48, seed=3, batch_size=7)
    assert same_z["gen/fid_means"] == pytest.approx(metrics["gen/fid_means"], rel=1e-5)  # means: z alone decides


def test_generation_metrics_measure_the_decoder_means_and_the_samples_of_the_same_z(setting):
    """The pictures remade here as the samples figure makes them (z, then the noise of p(x | z), from the CPU
    generator seeded with the seed) and measured with the classifier directly."""
    classifier, x_train, x_test, reference = setting
    model = make_model("vae", latent_dim=2, width=16, likelihood="bernoulli").eval()
    metrics = generation_metrics(model, classifier, reference, x_train, n=48, seed=5, batch_size=48)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.random.default_generator.manual_seed(5)
        z = torch.randn(48, 2)
        x_hat = model.decoder(z)
        means, drawn = torch.sigmoid(x_hat), torch.bernoulli(torch.sigmoid(x_hat))
        test_features = classifier.features(x_test)
        for way, pictures in (("means", means), ("samples", drawn)):
            features = classifier.features(pictures)
            assert metrics[f"gen/fid_{way}"] == pytest.approx(frechet_distance(features, test_features), rel=1e-5)
            expected = precision_recall(test_features, features)
            assert (metrics[f"gen/precision_{way}"], metrics[f"gen/recall_{way}"]) == pytest.approx(expected)
        histogram = torch.bincount(classifier(drawn).argmax(1), minlength=10) / 48
    assert metrics["gen/class_histogram"] == pytest.approx(histogram.tolist())
    assert metrics["gen/class_entropy_bits"] == pytest.approx(
        -sum(p * math.log2(p) for p in histogram.tolist() if p > 0)
    )


def test_summary_lines_read_the_numbers():
    metrics = {
        "gen/fid_means": 12.34,
        "gen/fid_samples": 45.6,
        "gen/fid_floor": 0.81,
        "gen/precision_means": 0.9,
        "gen/recall_means": 0.41,
        "gen/precision_samples": 0.7,
        "gen/recall_samples": 0.55,
        "gen/class_entropy_bits": 3.2901,
        "gen/class_histogram": [0.1] * 8 + [0.16, 0.04],
        "gen/class_histogram_test": [0.1] * 10,
        "gen/rare_classes": [9],
        "gen/n": 10000,
    }
    text = "\n".join(summary_lines(metrics))
    assert (
        "FID (MNIST classifier features), N = 10000 vs the test set: means 12.3, samples 45.6; "
        "floor (training images) 0.8" in text
    )
    assert "means 0.90 / 0.41, samples 0.70 / 0.55" in text
    assert "3.29 bits of log2 10 = 3.32" in text
    assert "rare digits" in text and text.split("rare digits")[1].split("\n")[0].endswith(": 9")
    assert "9: 4.0% (10.0%)" in text
    assert "none" in "\n".join(summary_lines({**metrics, "gen/rare_classes": []}))
