"""The one matplotlib style of every figure (a run's in vae/results/figures.py, a sweep's in
vae/results/sweep_figures.py): the object API (no pyplot, no window; Agg renders PNGs and TensorBoard's images
whatever backend the session has), fixed sizes in inches at a fixed DPI, grey images on [0, 1], PDFs with
TrueType fonts."""

import math
from pathlib import Path

import matplotlib
import matplotlib.image
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 150  # sharp when a figure fills the width of a page


def figure(size: tuple[float, float], **kwargs) -> Figure:
    """A figure of `size` inches at DPI, laid out by matplotlib's constrained layout."""
    return Figure(figsize=size, dpi=DPI, layout="constrained", **kwargs)


def tile(images: torch.Tensor, columns: int, pad: int = 2) -> np.ndarray:
    """Images (N, 1, H, W) as one grey image, `columns` per row, separated by white lines."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float32)
    for i, image in enumerate(images[:, 0].numpy()):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad) : (r + 1) * (h + pad), pad + c * (w + pad) : (c + 1) * (w + pad)] = image
    return canvas


def show(ax, images: np.ndarray, title: str | None = None) -> None:
    ax.imshow(images, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def rendered(fig: Figure) -> np.ndarray:
    """The figure drawn by Agg at its own DPI, laid out and rendered in one pass: (height, width, 4) uint8 RGBA."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def save(fig: Figure, path: Path, **kwargs) -> Path:
    """PNG, or PDF with TrueType fonts (Type 42, as journals ask) and no creation date (a redraw gives the same
    file). A PNG without savefig options is written from one Agg pass: savefig would lay the figure out in a pass
    of its own first (the same bytes, in about two thirds of the time)."""
    path = Path(path)
    if path.suffix == ".png" and not kwargs:
        matplotlib.image.imsave(path, rendered(fig), format="png", origin="upper", dpi=fig.dpi)
        return path
    pdf = path.suffix == ".pdf"
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(path, metadata={"CreationDate": None} if pdf else None, **kwargs)
    return path


def focus(ax, lines: list[tuple[list[float], list[float]]]) -> None:
    """Y limits that show where curves settle: a first epoch that would take more than half the axis (160 nats
    beside a converged 95) is left above or below it, its value written at the edge; otherwise matplotlib's own."""
    points = [(x, y) for xs, ys in lines for x, y in zip(xs, ys) if math.isfinite(y)]
    if len({x for x, _ in points}) < 3:
        return
    first = min(x for x, _ in points)
    rest = [y for x, y in points if x > first]
    low, high = min(rest), max(rest)
    span = high - low or abs(high) * 0.1 or 1.0
    outside = [(x, y) for x, y in points if x == first and not low - span <= y <= high + span]
    if not outside:
        return
    inside = [y for x, y in points if x == first and low - span <= y <= high + span]
    low, high = min([low, *inside]), max([high, *inside])
    margin = 0.08 * (high - low or span)
    ax.set_ylim(low - margin, high + margin)
    for above in (True, False):  # one note per edge: the values the axis leaves out
        values = sorted((y for _, y in outside if (y > high) == above), reverse=above)
        if values:
            ax.annotate(
                f"epoch {first:g}: {', '.join(f'{y:.4g}' for y in values)} {'↑' if above else '↓'}",
                xy=(first, 1 if above else 0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3 if above else 3),
                textcoords="offset points",
                ha="left",
                va="top" if above else "bottom",
                fontsize="small",
                color="0.3",
            )
