"""The feature network of a run's data: the digit classifier (vae/maths/classifier.py) whose features measure generated
pictures, trained once per dataset on its training split and cached beside the data (vae/files/classifier_cache.py).

    classifier, accuracy = feature_network(datamodule)    # in eval mode on the CPU; accuracy on the test split
"""

import logging
import time
from pathlib import Path

from vae.core.errors import Damaged
from vae.files.classifier_cache import cache_folder, classifier_file, data_key, load, save
from vae.maths.classifier import DigitClassifier, accuracy, train_classifier

log = logging.getLogger(__name__)


def feature_network(
    datamodule, folder: Path | None = None, measure: bool = True
) -> tuple[DigitClassifier, float | None]:
    """The classifier of `datamodule`'s training split and its accuracy on its test split: the one cached in `folder`
    (by default `cache_folder(datamodule.root)`), or, when none is there or it does not load (one warning line),
    one trained now and cached (a file that cannot be written is one warning line too). Neither way draws from or
    changes torch's global random state. `measure=False`: a cached classifier comes without its accuracy (None),
    for a caller that has it already (vae/run/generation.py keeps it with the test set's reference)."""
    if not datamodule.splits:
        datamodule.setup()
    x, y = datamodule.splits["train"]
    key = data_key(x, y)
    folder = Path(folder) if folder is not None else cache_folder(datamodule.root)
    path = classifier_file(folder, key)
    try:
        cached = cached_classifier(path, key)
    except Damaged as damaged:
        log.warning(f"warning: {damaged}")
        cached = None
    if cached is not None:
        # Measured again (half a second): the same training images may come with other test images (data.binarize
        # =dynamic binarises the test split only), and the file's accuracy is the first data module's.
        return cached, accuracy(cached, *datamodule.splits["test"]) if measure else None
    log.info(
        f"training the feature classifier of {datamodule.raw_dir} ({len(x)} training images) once (about a minute); "
        f"cached in {path}"
    )
    began = time.perf_counter()
    classifier = train_classifier(x, y)
    seconds = time.perf_counter() - began
    measured = accuracy(classifier, *datamodule.splits["test"])
    try:
        save(folder, key, classifier.state_dict(), measured, seconds)
    except OSError as error:  # a full disk, a folder made read-only since: the run goes on, the next one trains again
        log.warning(
            f"warning: the feature classifier could not be cached in {path} ({error}); it will be trained again"
        )
    return classifier, measured


def cached_classifier(path: Path, key: str) -> DigitClassifier | None:
    """The classifier `path` holds for `key`, in eval mode; None when there is no file; `Damaged` when it does not
    load, belongs to other data or another recipe, or its weights do not fit the network."""
    saved = load(path, key)
    if saved is None:
        return None
    classifier = DigitClassifier()
    try:
        classifier.load_state_dict(saved["state_dict"])
    except RuntimeError as error:  # the network changed and CLASSIFIER_RECIPE was not bumped
        first = str(error).splitlines()[0]
        raise Damaged(
            f"feature classifier {path} does not fit the network ({first}): it will be trained again"
        ) from None
    return classifier.eval()
