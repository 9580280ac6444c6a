"""The digits a model generates: the feature classifier's classes of its samples beside those of the test set, from
the run's metrics.json (gen/class_histogram, gen/class_histogram_test; vae/maths/generation.py)."""

import numpy as np
from matplotlib.figure import Figure

from vae.data.classes import CLASS_NAMES
from vae.results.drawing import figure

NAME = "digits"
SIZE = (8, 3.6)  # inches


def digits(metrics: dict, dataset: str = "mnist", describe: str = "") -> Figure | None:
    """Bars of the two histograms (fractions); None for a run without the generation measures."""
    samples, test = metrics.get("gen/class_histogram"), metrics.get("gen/class_histogram_test")
    if not isinstance(samples, list) or not isinstance(test, list) or len(samples) != len(test):
        return None
    kind, names = CLASS_NAMES.get(dataset, CLASS_NAMES["mnist"])
    fig = figure(SIZE)
    ax = fig.subplots()
    where, width = np.arange(len(samples)), 0.4
    ax.bar(where - width / 2, samples, width, label=f"samples x ~ p(x | z) (N = {metrics.get('gen/n', '?'):,})")
    ax.bar(where + width / 2, test, width, label="test set", color="0.6")
    ax.axhline(1 / len(samples), color="0.3", linestyle=":", linewidth=1, label="evenly")
    ax.set_xticks(where, names[: len(samples)], rotation=0 if kind == "digit" else 30)
    ax.set_xlabel(f"{kind}, as the feature classifier reads it")
    ax.set_ylabel("fraction of images")
    ax.legend(fontsize="small")
    entropy = metrics.get("gen/class_entropy_bits")
    title = f"Which {kind}s the model generates" + (f": {entropy:.2f} bits of log2 10 = 3.32" if entropy else "")
    fig.suptitle(title + (f"\n{describe}" if describe else ""))
    return fig
