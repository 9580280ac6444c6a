"""How good a trained model's generated pictures are (docs/evaluation.md, "Generation quality"): the feature
classifier of the run's data (trained once per dataset and cached, vae/run/feature_network.py), the test set's
reference numbers (cached beside it: they depend on the data and N only), and the measures of vae/maths/generation.py.

    metrics = measure_generation(model, datamodule, n=10000, seed=0)   # gen/fid_means, gen/precision_samples, ...
"""

import dataclasses
import logging

from omegaconf import DictConfig, OmegaConf

from vae.files.classifier_cache import cache_folder, data_key, load_reference, save_reference
from vae.maths.generation import Reference, generation_metrics, reference_of
from vae.run.feature_network import feature_network

log = logging.getLogger(__name__)
REFERENCE_SEED = 0  # the training images of the floor: the same for every run, so that the floor is cached once


def enabled(cfg: DictConfig) -> bool:
    """eval.generation.enabled; false for a run written before the measure existed."""
    return bool(OmegaConf.select(cfg, "eval.generation.enabled", default=False))


def measure_generation(model, datamodule, n: int, seed: int) -> dict:
    classifier, _ = feature_network(datamodule, measure=False)  # its accuracy on these test images: the reference's
    classifier.to(model.device)
    (x_train, y_train), (x_test, y_test) = datamodule.splits["train"], datamodule.splits["test"]
    # the reference: this test set's features (a binarised one differs from the grey) and N training images
    folder, key = cache_folder(datamodule.root), data_key(x_test, y_test, extra=data_key(x_train, y_train))
    saved = load_reference(folder, key, n)
    if saved is None or set(saved) != {field.name for field in dataclasses.fields(Reference)}:  # or an older one
        reference = reference_of(classifier, x_test, x_train, n, REFERENCE_SEED, y_test=y_test)
        save_reference(folder, key, n, reference.to_dict())
    else:
        reference = Reference.from_dict(saved)
    metrics = generation_metrics(model, classifier, reference, x_train, n=n, seed=seed)
    return {**metrics, "gen/classifier_accuracy": reference.accuracy}
