"""--generation: what the generated pictures' measures cost (vae/maths/generation.py, docs/evaluation.md).

In this process, on the bench's data: the feature classifier trained once (what a first run on new data pays),
the test set's reference (its features, their moments and k-NN radii, the floor: computed once, then cached), and
then, with the reference cached, what every run pays for N = eval.generation.n draws of the lab's model: the
features of N decoder means and N samples, the two Fréchet distances and the two precision / recall pairs.
The model has fresh weights: the arithmetic, and so the time, does not depend on them.
"""

import sys
import time

import torch

from benchmarks.data import Bench


def timed(what: str, timings: dict, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    timings[what] = time.perf_counter() - start
    print(f"generation measures: {what:28} {timings[what]:6.2f} s", file=sys.stderr, flush=True)
    return result


def measure_generation(bench: Bench) -> dict:
    from hydra.utils import instantiate

    from vae.maths import generation
    from vae.maths.classifier import train_classifier

    cfg = bench.cfgs["lab"]
    n = bench.plan.get("generation_n") or cfg.eval.generation.n
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    (x_train, y_train), (x_test, y_test) = datamodule.splits["train"], datamodule.splits["test"]
    if bench.args.quick:
        x_train, y_train, x_test, y_test = x_train[:2560], y_train[:2560], x_test[:n], y_test[:n]
    seconds: dict[str, float] = {}
    classifier = timed("classifier training", seconds, train_classifier, x_train, y_train)
    reference = timed(
        "reference (once per data)", seconds, generation.reference_of, classifier, x_test, x_train, n, 0, y_test=y_test
    )
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model).eval()
    generated = timed(
        "features of 2 N generated", seconds, generation.generated_features, model, classifier, x_train, n, cfg.seed
    )
    for way in ("means", "samples"):
        timed(
            f"Fréchet distance, {way}",
            seconds,
            generation.frechet_from_moments,
            *generation.moments(generated[way]),
            reference.mean,
            reference.covariance,
        )
        timed(
            f"precision/recall, {way}",
            seconds,
            generation.precision_recall,
            reference.features,
            generated[way],
            real_squared_radii=reference.squared_radii,
        )
    timed(
        "all, as a run does", seconds, generation.generation_metrics, model, classifier, reference, x_train, n, cfg.seed
    )
    return {
        "n": n,
        "test_images": len(x_test),
        "features": classifier.feature_dim,
        "classifier_accuracy": reference.accuracy,
        "seconds": seconds,
    }


def generation_lines(result: dict) -> list[str]:
    lines = [
        f"generation measures, N = {result['n']} against {result['test_images']} test images, "
        f"{result['features']} features (classifier test accuracy {result['classifier_accuracy']:.4f}):"
    ]
    lines += [f"  {what:36} {seconds:7.2f} s" for what, seconds in result["seconds"].items()]
    return lines
