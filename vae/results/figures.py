"""The figures of a lab report, drawn from a trained model: one function per figure, each a matplotlib Figure.

    samples          z ~ p(z) decoded two ways: the decoder means E[x | z] and samples x ~ p(x | z)
    reconstructions  dev images above their reconstructions (decoder mean at the posterior mean / code)
    latent           dev posterior means (AE: codes) coloured by digit; PCA to 2-D when latent_dim > 2
    manifold         decoder means on a grid of z = Phi^-1(p), p uniform on (0, 1)^2 (latent_dim 2 only)
    interpolation    decoder means on straight lines in latent space between dev images of different digits
    learning_curves  train and val rec, KL and loss per epoch, from history.csv

z is drawn from the model's `sampling_prior` (vae/maths/priors.py): the VAE's prior (N(0, I) or the VampPrior); an
auto-encoder has no prior, so a Gaussian N(m, S) fitted to the codes of the training images stands in.

`draw_all` writes them to <run dir>/figures/<name>.png (and .pdf); train.py calls it after testing, with
the best checkpoint's weights; `LoggedFigures` (vae/run/callbacks.py) sends the same images to TensorBoard (and MLflow)
while training. From a checkpoint, without retraining (vae/plots.py):

    python -m vae.plots outputs/<date>/<time> [--n-samples 100] [--grid-size 30] [--pdf]

Every random number (z, the noise of p(x | z), the pairs) comes from torch's CPU generator seeded with
the run's `seed` inside a fork of its state: a redraw gives the same figure, and training's random
numbers are left as they were.
"""

import contextlib
import copy
import functools
import logging
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch.distributions import Normal

from vae.core.errors import Damaged, in_brief
from vae.data.classes import CLASS_NAMES
from vae.files.history import read_history
from vae.files.layout import RunFiles
from vae.files.metrics import read_metrics
from vae.files.schema import PLOT_SETTINGS, validate
from vae.results.drawing import figure, focus, rendered, save, show, tile
from vae.results.generation_figure import NAME as DIGITS
from vae.results.generation_figure import digits

log = logging.getLogger(__name__)

SIZES = {  # inches, at vae/results/drawing.py's DPI
    "samples": (10, 5.4),
    "reconstructions": (10, 3),
    "latent": (8, 6.4),
    "manifold": (8, 8.4),
    "interpolation": (10, 7),
    "learning_curves": (12, 4),
}


# --- helpers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def drawing(model: torch.nn.Module, seed: int | None = None):
    """Eval mode and no gradients for the duration; with a seed, the CPU random numbers drawn inside come
    from a fork of the generator seeded with it (the caller's stream is restored on exit)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.random.default_generator.manual_seed(seed)
            yield
    finally:
        model.train(was_training)


def encode(model, x: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
    """Posterior means (AE: codes) of images x, on the CPU."""
    return torch.cat([model.encode(x[i : i + batch_size].to(model.device)).cpu() for i in range(0, len(x), batch_size)])


def decode(model, z: torch.Tensor) -> torch.Tensor:
    """Decoder means E[x | z] (the Gaussian's mean image, the Bernoulli's pixel probabilities), on the CPU."""
    return model.decode(z.to(model.device)).cpu()


def new_figure(name: str, **kwargs) -> Figure:
    return figure(SIZES[name], **kwargs)


def headline(fig: Figure, text: str, model) -> None:
    """The figure's title: what it shows, then a line that says which model drew it."""
    fig.suptitle(f"{text}\n{model.describe()}")


# --- the figures ----------------------------------------------------------------------------------


def samples(model, p_z, n: int = 64, seed: int = 0) -> Figure:
    """The same n draws z ~ p(z) decoded two ways: decoder means E[x | z] beside samples x ~ p(x | z).
    p_z: the model's `sampling_prior` (vae/maths/priors.py)."""
    with drawing(model, seed):
        z = p_z.sample(n)
        x_hat = model.decoder(z.to(model.device)).cpu()
        likelihood = copy.deepcopy(model.likelihood).cpu()  # a learned sigma too: noise and sigma on the CPU
        means = likelihood.mean(x_hat)
        drawn = likelihood.sample(x_hat).clamp(0, 1)  # on the CPU: the same numbers on any device
    columns = math.ceil(math.sqrt(n))
    fig = new_figure("samples")
    left, right = fig.subplots(1, 2)
    mean_title = f"decoder means E[x | z]\n({model.likelihood.mean_words})"
    sample_title = model.likelihood.sample_words()
    show(left, tile(means, columns), mean_title)
    show(right, tile(drawn, columns), sample_title)
    headline(fig, f"{n} draws {p_z.describe()}, each decoded two ways: the same z in both panels", model)
    return fig


def reconstructions(model, x: torch.Tensor, n: int = 10) -> Figure:
    """The first n dev images above their reconstructions: the decoder mean at the posterior mean (AE: code)."""
    x = x[:n]
    with drawing(model):
        x_rec = decode(model, encode(model, x))
    fig = new_figure("reconstructions")
    top, bottom = fig.subplots(2, 1)
    show(top, tile(x, len(x)))
    show(bottom, tile(x_rec, len(x)))
    top.set_ylabel("dev image x", rotation=0, ha="right", va="center")
    where = model.code
    bottom.set_ylabel(f"E[x | z],\nz = {where} of x", rotation=0, ha="right", va="center")
    headline(fig, f"Dev images x and their reconstructions: the decoder mean at z = the {where} of x", model)
    return fig


def latent(model, x: torch.Tensor, y: torch.Tensor, dataset: str = "mnist") -> Figure:
    """Dev posterior means (AE: codes) coloured by label; a PCA projection to 2-D when latent_dim > 2."""
    with drawing(model):
        z = encode(model, x).numpy()
    what = model.codes
    fig = new_figure("latent")
    ax = fig.subplots()
    n = model.latent_dim
    if n > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(z)
        points = pca.transform(z)
        ratio = pca.explained_variance_ratio_
        ax.set_xlabel(f"PC 1 of the {n}-D {what} ({100 * ratio[0]:.1f}% of the variance)")
        ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.1f}% of the variance)")
        text = f"Latent space: PCA projection of the {what} of {len(z):,} dev images"
    elif n == 2:
        points = z
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        text = f"Latent space: {what} of {len(z):,} dev images"
    else:  # one dimension: the code against the label, spread vertically
        points = np.stack([z[:, 0], y.numpy() + np.random.default_rng(0).uniform(-0.3, 0.3, len(z))], 1)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel(CLASS_NAMES[dataset][0])
        text = f"Latent space: {what} of {len(z):,} dev images, by label"
    label_kind, names = CLASS_NAMES[dataset]
    colours = [f"C{d}" for d in range(10)]  # tab10, matplotlib's default cycle
    for d in range(10):
        chosen = (y == d).numpy()
        if chosen.any():
            ax.scatter(
                *points[chosen].T, s=3, alpha=0.6, color=colours[d], label=names[d], linewidths=0, rasterized=True
            )
    if model.prior is not None and n == 2:  # the prior's 1- and 2-sigma circles around its mean
        (m1, m2), (s1, s2) = model.prior.mean.tolist(), model.prior.stddev.tolist()
        angle = np.linspace(0, 2 * np.pi, 200)
        for radius, style in ((1, "--"), (2, ":")):
            ax.plot(
                m1 + radius * s1 * np.cos(angle),
                m2 + radius * s2 * np.sin(angle),
                style,
                color="black",
                lw=1.2,
                label=f"prior {model.prior.name}: {radius}σ circle",
            )
    if n >= 2:
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(title=label_kind, loc="upper left", bbox_to_anchor=(1.01, 1), markerscale=4, frameon=False)
    ax.grid(alpha=0.3)
    headline(fig, text, model)
    return fig


def manifold(model, p_z, grid_size: int = 20) -> Figure:
    """Decoder means on a grid_size x grid_size grid of z = m + s * Phi^-1(p), p = (i + 1/2) / grid_size
    (Kingma & Welling, figure 4); m, s = 0, 1 for the VAE's prior, the fitted Gaussian's for an AE."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold is drawn for latent_dim 2, not {model.latent_dim}")
    p = (torch.arange(grid_size) + 0.5) / grid_size
    quantiles = Normal(0.0, 1.0).icdf(p)
    m, s = p_z.mean.cpu(), p_z.stddev.cpu()  # a VampPrior's lie on the model's device
    z1, z2 = m[0] + s[0] * quantiles, m[1] + s[1] * quantiles.flip(0)  # z_2 grows upwards
    z = torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], -1).reshape(-1, 2)  # rows of z_2, columns of z_1
    with drawing(model):
        means = decode(model, z)
    pad, size = 2, 28
    fig = new_figure("manifold")
    ax = fig.subplots()
    show(ax, tile(means, grid_size, pad))
    centres = pad + size / 2 + (size + pad) * np.arange(grid_size)
    every = max(1, math.ceil(grid_size / 20))  # at most twenty tick labels per axis
    shown = np.arange(0, grid_size, every)
    spacing = min(z1.diff().abs().min(), z2.diff().abs().min()).item() if grid_size > 1 else 1.0
    decimals = min(6, max(2, math.ceil(-math.log10(spacing)) + 1))  # enough for neighbours to differ
    ax.set_xticks(centres[shown], [f"{v:.{decimals}f}" for v in z1[shown].tolist()], rotation=90)
    ax.set_yticks(centres[shown], [f"{v:.{decimals}f}" for v in z2[shown].tolist()])
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if p_z.fitted_to is None:
        grid = (
            f"z = Φ⁻¹(p), p = (i + ½)/{grid_size}:\nsteps of equal probability under the prior {p_z.name} on each axis"
        )
    else:
        grid = (
            f"z = m + s·Φ⁻¹(p), p = (i + ½)/{grid_size}:\n"
            "steps of equal probability on each axis under N(m, s²), the Gaussian\n"
            f"fitted to the {p_z.fitted_to:,} training codes (an AE has no prior)"
        )
    headline(fig, f"Decoder means E[x | z] on a {grid_size} × {grid_size} grid of {grid}", model)
    return fig


def interpolation(
    model, x: torch.Tensor, y: torch.Tensor, n: int = 8, steps: int = 10, seed: int = 0, dataset: str = "mnist"
) -> Figure:
    """Decoder means at z_a + t (z_b - z_a), t = 0 ... 1, for n pairs of dev images of different labels,
    between their posterior means (AE: codes); the two images beside each row."""
    with drawing(model, seed):
        order = torch.randperm(len(x))
        a, b = order[: len(order) // 2 * 2].view(-1, 2).T
        keep = y[a] != y[b]
        a, b = a[keep][:n], b[keep][:n]
        z_a, z_b = encode(model, x[a]), encode(model, x[b])
        t = torch.linspace(0, 1, steps)
        z = z_a[:, None] + t[None, :, None] * (z_b - z_a)[:, None]  # (pairs, steps, latent_dim)
        path = decode(model, z.reshape(-1, model.latent_dim))
    names = CLASS_NAMES[dataset][1]
    fig = new_figure("interpolation")
    left, middle, right = fig.subplots(1, 3, width_ratios=[1, steps, 1])
    show(left, tile(x[a], 1), "image a")
    show(middle, tile(path, steps), f"decoder means E[x | z] at z = (1 − t)·z_a + t·z_b, t = 0, 1/{steps - 1}, …, 1")
    show(right, tile(x[b], 1), "image b")
    centres = 2 + 14 + 30 * np.arange(len(a))
    left.set_yticks(centres, [f"{names[int(y[i])]} → {names[int(y[j])]}" for i, j in zip(a, b)])
    headline(
        fig,
        f"Straight lines in latent space between the {model.code}s z_a, z_b of {len(a)} pairs of dev images "
        "with different labels",
        model,
    )
    return fig


def warmup_epochs(history: list[dict], model) -> list[int]:
    """The epochs of KL warm-up: those whose mean train/beta (logged only while warming up) is below the model's beta
    (1 for a model without one)."""
    beta = float(model.hparams.get("beta", 1.0))
    return [int(row["epoch"]) for row in history if row.get("train/beta", beta) < beta * (1 - 1e-6)]


def learning_curves(history: list[dict], model) -> Figure:
    """Train (mean over the epoch's batches) and val (dev set at the epoch's end) losses against epochs. The KL
    warm-up's epochs are shaded: their train loss is rec + beta_t * KL, not the objective the val line shows. The axes
    show where the curves settle: a first epoch far off is written at the edge (vae/results/drawing.py `focus`)."""
    panels = list(model.terms.items())  # (term, what it is)
    beta = float(model.hparams.get("beta", 1.0))
    warmup = warmup_epochs(history, model)
    fig = new_figure("learning_curves")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    epochs = [row["epoch"] for row in history]
    for ax, (term, heading) in zip(axes, panels):
        if warmup:
            betas = [row["train/beta"] for row in history if int(row["epoch"]) in warmup]
            ax.axvspan(
                min(warmup) - 0.5,
                max(warmup) + 0.5,
                color="0.9",
                label=f"KL warm-up: mean β_t {betas[0]:.2g}"
                + (f" to {betas[-1]:.2g}" if len(betas) > 1 else "")
                + f" (β = {beta:g} after)",
            )
        lines = []
        for stage, style, label in (
            ("train", "o-", "train (mean over the epoch)"),
            ("val", "s--", "val (dev set, end of epoch)"),
        ):
            values = [row.get(f"{stage}/{term}", math.nan) for row in history]
            if stage == "train" and term == "loss" and warmup:
                label = "train (mean over the epoch;\nrec + β_t·KL in warm-up)"
            ax.plot(epochs, values, style, ms=4, label=label)
            lines.append((epochs, values))
        focus(ax, lines)
        ax.set_title(heading)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if term == "loss" or len(panels) == 1:
            ax.legend(fontsize="small")
    headline(fig, "Learning curves", model)
    return fig


# --- all of them, to files and to TensorBoard -------------------------------------------------------


def check_settings(plots) -> dict:
    """The figure settings of a `plots` config block, checked by the rules of vae/files/schema.py."""
    validate({"plots": dict(plots)})
    return {key: plots[key] for key in PLOT_SETTINGS}


def figures(model, datamodule, history: list[dict] | None, seed: int, plots) -> dict[str, Figure]:
    """Every figure that applies to the model: the manifold only for latent_dim 2, the learning curves
    when there is a history. A figure that cannot be drawn (too large for memory: plots.grid_size=100000) is left
    out with a warning; the others are drawn."""
    settings = check_settings(plots)
    x_dev, y_dev = datamodule.splits["dev"]
    dataset = getattr(datamodule, "dataset", "mnist")

    @functools.cache
    def p_z():
        with drawing(model):
            return model.sampling_prior(datamodule.splits["train"][0])

    makers = {
        "samples": lambda: samples(model, p_z(), settings["n_samples"], seed),
        "reconstructions": lambda: reconstructions(model, x_dev, settings["n_reconstructions"]),
        "latent": lambda: latent(model, x_dev, y_dev, dataset),
    }
    if model.latent_dim == 2:
        makers["manifold"] = lambda: manifold(model, p_z(), settings["grid_size"])
    makers["interpolation"] = lambda: interpolation(
        model, x_dev, y_dev, settings["n_interpolations"], settings["interpolation_steps"], seed, dataset
    )
    if history:
        makers["learning_curves"] = lambda: learning_curves(history, model)
    drawn = {}
    for name, make in makers.items():
        try:
            drawn[name] = make()
        except (MemoryError, RuntimeError, ValueError) as error:
            log.warning(
                f"warning: the figure {name} was left out ({in_brief(error)}); smaller plots.* settings may draw it"
            )
    return drawn


def draw_all(
    model, datamodule, run_dir: str | Path, seed: int, plots, out: str | Path | None = None, digits_too: bool = True
) -> list[Path]:
    """Writes every figure to <out or run_dir/figures>/<name>.png (and .pdf when plots.pdf); returns the paths.
    `digits_too`: also the digits the run's metrics.json says the model generates (its best checkpoint's)."""
    run_dir = Path(run_dir)
    out = Path(out) if out else RunFiles(run_dir).figures
    out.mkdir(parents=True, exist_ok=True)
    history = read_history(RunFiles(run_dir).history)  # [] when there is none
    drawn = figures(model, datamodule, history, seed, plots)
    measured = digits(metrics_or_none(run_dir), datamodule.dataset, model.describe()) if digits_too else None
    if measured is not None:
        drawn[DIGITS] = measured
    paths = []
    for name, fig in drawn.items():
        for suffix in (".png", ".pdf") if plots.get("pdf") else (".png",):
            paths.append(save(fig, out / f"{name}{suffix}"))
    log.info(f"figures: {out} ({', '.join(sorted({p.stem for p in paths}))})")
    return paths


def metrics_or_none(run_dir: Path) -> dict:
    try:
        return read_metrics(run_dir)
    except Damaged:
        return {}


def to_rgb(fig: Figure, dpi: float | None = None) -> np.ndarray:
    """The figure rendered by Agg as the PNG would be (at `dpi`, by default the figure's own): (height, width, 3)
    uint8."""
    if dpi is not None:
        fig.set_dpi(dpi)
    return rendered(fig)[..., :3].copy()
