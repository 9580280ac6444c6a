"""The figures of a lab report, drawn from a trained model: one function per figure, each a matplotlib Figure.

    samples          z ~ p(z) decoded two ways: the decoder means E[x | z] and samples x ~ p(x | z)
    reconstructions  dev images above their reconstructions (decoder mean at the posterior mean / code)
    latent           dev posterior means (AE: codes) coloured by digit; PCA to 2-D when latent_dim > 2
    manifold         decoder means on a grid of z = Phi^-1(p), p uniform on (0, 1)^2 (latent_dim 2 only)
    interpolation    decoder means on straight lines in latent space between dev images of different digits
    learning_curves  train and val rec, KL and loss per epoch, from history.csv

An auto-encoder has no prior: its p(z) is a Gaussian N(m, S) fitted to the codes of the training images.

`draw_all` writes them to <run dir>/figures/<name>.png (and .pdf); train.py calls it after testing, with
the best checkpoint's weights. `TensorBoardFigures` sends the same images to TensorBoard while training.
From a checkpoint, without retraining:

    python -m vae.plots outputs/<date>/<time> [--n-samples 100] [--grid-size 30] [--pdf]

Every random number (z, the noise of p(x | z), the pairs) comes from torch's CPU generator seeded with
the run's `seed` inside a fork of its state: a redraw gives the same figure, and training's random
numbers are left as they were.
"""

import argparse
import contextlib
import logging
import math
from pathlib import Path

import lightning as L
import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from omegaconf import OmegaConf
from torch.distributions import MultivariateNormal, Normal

from vae.callbacks import History
from vae.compare import read_history
from vae.config import validate
from vae.errors import UserError, exit_on_user_error
from vae.losses import GaussianLikelihood
from vae.module import VAE

log = logging.getLogger(__name__)

# Figures are built with matplotlib's object API (no pyplot, no window): Agg renders the PNGs and
# TensorBoard's images, whatever backend the session has. Fixed sizes (inches) at a fixed DPI give
# fixed pixel sizes: 150 dpi is sharp when a figure fills the width of a page.
DPI = 150
SIZES = {
    "samples": (10, 5.4),
    "reconstructions": (10, 3),
    "latent": (8, 6.4),
    "manifold": (8, 8.4),
    "interpolation": (10, 7),
    "learning_curves": (12, 4),
}
CLASS_NAMES = {  # data.dataset -> (what a label is, the ten names)
    "mnist": ("digit", [str(d) for d in range(10)]),
    "fashion_mnist": ("class", ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                "sneaker", "bag", "ankle boot"]),
}
SETTINGS = ("n_samples", "n_reconstructions", "grid_size", "n_interpolations", "interpolation_steps")
CONFIG = Path(__file__).resolve().parents[1] / "conf" / "config.yaml"


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
    return torch.cat([model.encode(x[i:i + batch_size].to(model.device)).cpu()
                      for i in range(0, len(x), batch_size)])


def decode(model, z: torch.Tensor) -> torch.Tensor:
    """Decoder means E[x | z] (the Gaussian's mean image, the Bernoulli's pixel probabilities), on the CPU."""
    return model.decode(z.to(model.device)).cpu()


def tile(images: torch.Tensor, columns: int, pad: int = 2) -> np.ndarray:
    """Images (N, 1, 28, 28) as one grey image, `columns` per row, separated by white lines."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float32)
    for i, image in enumerate(images[:, 0].numpy()):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad):(r + 1) * (h + pad), pad + c * (w + pad):(c + 1) * (w + pad)] = image
    return canvas


def show(ax, images: np.ndarray, title: str | None = None) -> None:
    ax.imshow(images, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def new_figure(name: str, **kwargs) -> Figure:
    return Figure(figsize=SIZES[name], dpi=DPI, layout="constrained", **kwargs)


def headline(fig: Figure, text: str, model) -> None:
    """The figure's title: what it shows, then a line that says which model drew it."""
    fig.suptitle(f"{text}\n{describe(model)}")


def describe(model) -> str:
    """One line that says which model drew a figure."""
    kind = f"VAE (β = {model.beta:g})" if isinstance(model, VAE) and model.beta != 1 else (
        "VAE" if isinstance(model, VAE) else "auto-encoder")
    likelihood = (f"Gaussian p(x | z), σ = {model.likelihood.sigma:g}" if is_gaussian(model)
                  else "Bernoulli p(x | z)")
    return f"{kind}, latent_dim = {model.latent_dim}, {likelihood}"


def is_gaussian(model) -> bool:
    return isinstance(model.likelihood, GaussianLikelihood)


def latent_distribution(model, train_x: torch.Tensor | None = None) -> MultivariateNormal:
    """p(z) to draw from: the VAE's prior N(0, I); for an AE, a Gaussian fitted to the training codes
    (their mean and full covariance)."""
    n = model.latent_dim
    if isinstance(model, VAE):
        return MultivariateNormal(torch.zeros(n), torch.eye(n))
    if train_x is None:
        raise ValueError("an auto-encoder has no prior: pass its training images to fit one to their codes")
    with drawing(model):
        codes = encode(model, train_x).double()
    # a jitter of 1e-6 on the diagonal keeps S positive definite should the codes lie on a line
    covariance = torch.atleast_2d(torch.cov(codes.T)) + 1e-6 * torch.eye(n, dtype=torch.float64)
    p_z = MultivariateNormal(codes.mean(0).float(), covariance.float())
    p_z.fitted_to = len(codes)  # the figures' titles say so
    return p_z


def prior_words(p_z: MultivariateNormal) -> str:
    fitted_to = getattr(p_z, "fitted_to", None)
    if fitted_to is None:
        return "z ~ N(0, I) from the prior"
    return (f"z ~ N(m, S), m and S the mean and covariance of the codes of the {fitted_to:,} training images\n"
            "(an AE has no prior)")


# --- the figures ----------------------------------------------------------------------------------

def samples(model, p_z: MultivariateNormal, n: int = 64, seed: int = 0) -> Figure:
    """The same n draws z ~ p(z) decoded two ways: decoder means E[x | z] beside samples x ~ p(x | z)."""
    with drawing(model, seed):
        z = p_z.sample((n,))
        x_hat = model.decoder(z.to(model.device)).cpu()
        means = model.likelihood.mean(x_hat)
        drawn = model.likelihood.sample(x_hat).clamp(0, 1)  # on the CPU: the same numbers on any device
    columns = math.ceil(math.sqrt(n))
    fig = new_figure("samples")
    left, right = fig.subplots(1, 2)
    if is_gaussian(model):
        mean_title = "decoder means E[x | z]\n(the mean images)"
        sample_title = (f"samples x ~ p(x | z) = N(mean, σ² I)\n(σ = {model.likelihood.sigma:g} noise per pixel, "
                        "clipped to [0, 1])")
    else:
        mean_title = "decoder means E[x | z]\n(the pixel probabilities)"
        sample_title = "samples x ~ p(x | z) = Bernoulli(probabilities)\n(pixels drawn 0 or 1)"
    show(left, tile(means, columns), mean_title)
    show(right, tile(drawn, columns), sample_title)
    headline(fig, f"{n} draws {prior_words(p_z)}, each decoded two ways: the same z in both panels", model)
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
    where = "posterior mean" if isinstance(model, VAE) else "code"
    bottom.set_ylabel(f"E[x | z],\nz = {where} of x", rotation=0, ha="right", va="center")
    headline(fig, f"Dev images x and their reconstructions: the decoder mean at z = the {where} of x", model)
    return fig


def latent(model, x: torch.Tensor, y: torch.Tensor, dataset: str = "mnist") -> Figure:
    """Dev posterior means (AE: codes) coloured by label; a PCA projection to 2-D when latent_dim > 2."""
    with drawing(model):
        z = encode(model, x).numpy()
    what = "posterior means E[z | x]" if isinstance(model, VAE) else "codes z"
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
            ax.scatter(*points[chosen].T, s=3, alpha=0.6, color=colours[d], label=names[d], linewidths=0,
                       rasterized=True)
    if isinstance(model, VAE) and n == 2:
        angle = np.linspace(0, 2 * np.pi, 200)
        for radius, style in ((1, "--"), (2, ":")):
            ax.plot(radius * np.cos(angle), radius * np.sin(angle), style, color="black", lw=1.2,
                    label=f"prior N(0, I): {radius}σ circle")
    if n >= 2:
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(title=label_kind, loc="upper left", bbox_to_anchor=(1.01, 1), markerscale=4, frameon=False)
    ax.grid(alpha=0.3)
    headline(fig, text, model)
    return fig


def manifold(model, p_z: MultivariateNormal, grid_size: int = 20) -> Figure:
    """Decoder means on a grid_size x grid_size grid of z = m + s * Phi^-1(p), p = (i + 1/2) / grid_size
    (Kingma & Welling, figure 4); m, s = 0, 1 for the VAE's prior, the fitted Gaussian's for an AE."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold is drawn for latent_dim 2, not {model.latent_dim}")
    p = (torch.arange(grid_size) + 0.5) / grid_size
    quantiles = Normal(0.0, 1.0).icdf(p)
    m, s = p_z.mean, p_z.covariance_matrix.diagonal().sqrt()
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
    if getattr(p_z, "fitted_to", None) is None:
        grid = (f"z = Φ⁻¹(p), p = (i + ½)/{grid_size}:\n"
                "steps of equal probability under the prior N(0, I) on each axis")
    else:
        grid = (f"z = m + s·Φ⁻¹(p), p = (i + ½)/{grid_size}:\n"
                "steps of equal probability on each axis under N(m, s²), the Gaussian\n"
                f"fitted to the {p_z.fitted_to:,} training codes (an AE has no prior)")
    headline(fig, f"Decoder means E[x | z] on a {grid_size} × {grid_size} grid of {grid}", model)
    return fig


def interpolation(model, x: torch.Tensor, y: torch.Tensor, n: int = 8, steps: int = 10, seed: int = 0,
                  dataset: str = "mnist") -> Figure:
    """Decoder means at z_a + t (z_b - z_a), t = 0 ... 1, for n pairs of dev images of different labels,
    between their posterior means (AE: codes); the two images beside each row."""
    with drawing(model, seed):
        order = torch.randperm(len(x))
        a, b = order[:len(order) // 2 * 2].view(-1, 2).T
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
    show(middle, tile(path, steps), f"decoder means E[x | z] at z = (1 − t)·z_a + t·z_b, "
                                    f"t = 0, 1/{steps - 1}, …, 1")
    show(right, tile(x[b], 1), "image b")
    centres = 2 + 14 + 30 * np.arange(len(a))
    left.set_yticks(centres, [f"{names[int(y[i])]} → {names[int(y[j])]}" for i, j in zip(a, b)])
    where = "posterior means" if isinstance(model, VAE) else "codes"
    headline(fig, f"Straight lines in latent space between the {where} z_a, z_b of {len(a)} pairs of dev images "
               "with different labels", model)
    return fig


def learning_curves(history: list[dict], model) -> Figure:
    """Train (mean over the epoch's batches) and val (dev set at the epoch's end) losses against epochs."""
    panels = [("rec", "reconstruction term  −log p(x | z)")]
    if isinstance(model, VAE):
        beta = model.beta
        panels += [("kl", "KL(q(z | x) ‖ p(z))"),
                   ("loss", "loss = rec + KL = −ELBO" if beta == 1 else f"loss = rec + {beta:g}·KL")]
    else:
        panels[0] = ("rec", "reconstruction error −log p(x | z)\n(the auto-encoder's loss)")
    fig = new_figure("learning_curves")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    epochs = [row["epoch"] for row in history]
    for ax, (term, heading) in zip(axes, panels):
        for stage, style, label in (("train", "o-", "train (mean over the epoch)"),
                                    ("val", "s--", "val (dev set, end of epoch)")):
            values = [row.get(f"{stage}/{term}", math.nan) for row in history]
            ax.plot(epochs, values, style, ms=4, label=label)
        ax.set_title(heading)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend()
    headline(fig, "Learning curves", model)
    return fig


# --- all of them, to files and to TensorBoard -------------------------------------------------------

def check_settings(plots) -> dict:
    """The figure settings of a `plots` config block, checked by the rules of vae/config.py."""
    validate(OmegaConf.create({"plots": {key: value for key, value in dict(plots).items() if key != "pdf"}}))
    return {key: plots[key] for key in SETTINGS}


def figures(model, datamodule, history: list[dict] | None, seed: int, plots) -> dict[str, Figure]:
    """Every figure that applies to the model: the manifold only for latent_dim 2, the learning curves
    when there is a history."""
    settings = check_settings(plots)
    x_dev, y_dev = datamodule.splits["dev"]
    dataset = getattr(datamodule, "dataset", "mnist")
    p_z = latent_distribution(model, datamodule.splits["train"][0])
    drawn = {
        "samples": samples(model, p_z, settings["n_samples"], seed),
        "reconstructions": reconstructions(model, x_dev, settings["n_reconstructions"]),
        "latent": latent(model, x_dev, y_dev, dataset),
    }
    if model.latent_dim == 2:
        drawn["manifold"] = manifold(model, p_z, settings["grid_size"])
    drawn["interpolation"] = interpolation(model, x_dev, y_dev, settings["n_interpolations"],
                                           settings["interpolation_steps"], seed, dataset)
    if history:
        drawn["learning_curves"] = learning_curves(history, model)
    return drawn


def draw_all(model, datamodule, run_dir: str | Path, seed: int, plots, out: str | Path | None = None) -> list[Path]:
    """Writes every figure to <out or run_dir/figures>/<name>.png (and .pdf when plots.pdf); returns the paths."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    history = read_history(run_dir / "history.csv")  # [] when there is none
    paths = []
    for name, fig in figures(model, datamodule, history, seed, plots).items():
        for suffix in ((".png", ".pdf") if plots.get("pdf") else (".png",)):
            path = out / f"{name}{suffix}"
            # PDF: TrueType fonts (Type 42, as journals ask) and no creation date, so a redraw gives the same file
            with matplotlib.rc_context({"pdf.fonttype": 42}):
                fig.savefig(path, metadata={"CreationDate": None} if suffix == ".pdf" else None)
            paths.append(path)
    log.info(f"figures: {out} ({', '.join(sorted({p.stem for p in paths}))})")
    return paths


def to_rgb(fig: Figure) -> np.ndarray:
    """The figure rendered by Agg as the PNG would be: (height, width, 3) uint8."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class TensorBoardFigures(L.Callback):
    """Sends the figures to TensorBoard's image tab (tags figures/<name>) every `plots.every_n_epochs`
    epochs and after the last one, on rank zero, so the manifold can be watched as it forms."""

    def __init__(self, plots, seed: int = 0):
        self.plots = OmegaConf.to_container(plots, resolve=True) if OmegaConf.is_config(plots) else dict(plots)
        self.every_n_epochs = self.plots["every_n_epochs"]
        check_settings(self.plots)
        self.seed = seed

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if (not self.every_n_epochs or trainer.sanity_checking or not trainer.is_global_zero
                or (epoch % self.every_n_epochs and epoch != trainer.max_epochs)):
            return
        experiment = getattr(trainer.logger, "experiment", None)
        datamodule = trainer.datamodule
        if not hasattr(experiment, "add_image") or not getattr(datamodule, "splits", None):
            return
        history = next((c.rows for c in trainer.callbacks if isinstance(c, History)), None)
        for name, fig in figures(pl_module, datamodule, history, self.seed, self.plots).items():
            experiment.add_image(f"figures/{name}", to_rgb(fig), trainer.global_step, dataformats="HWC")


# --- python -m vae.plots ----------------------------------------------------------------------------

def run_settings(cfg) -> dict:
    """The run's `plots` block over the defaults of conf/config.yaml (runs older than the block have none)."""
    defaults = OmegaConf.load(CONFIG).plots
    return OmegaConf.to_container(OmegaConf.merge(defaults, cfg.get("plots") or {}), resolve=True)


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(
        prog="python -m vae.plots",
        description="Redraw the figures of a run from its checkpoint, with the config saved in the run "
                    "(options override its `plots` block).")
    parser.add_argument("run", help="a run directory (outputs/<date>/<time>; its best.ckpt, else last.ckpt) "
                                    "or a .ckpt file inside one")
    parser.add_argument("--n-samples", type=int, metavar="N", help="draws of z in the samples figure")
    parser.add_argument("--n-reconstructions", type=int, metavar="N", help="dev images in the reconstructions figure")
    parser.add_argument("--grid-size", type=int, metavar="N", help="the manifold's grid is grid-size x grid-size")
    parser.add_argument("--n-interpolations", type=int, metavar="N", help="pairs of dev images in the interpolation figure")
    parser.add_argument("--interpolation-steps", type=int, metavar="N", help="images per interpolation row, ends included")
    parser.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=None,
                        help="also write PDFs (default: the run's plots.pdf)")
    parser.add_argument("--out", metavar="DIR", help="folder for the figures (default: <run dir>/figures; for a checkpoint "
                                      "file other than best.ckpt, <run dir>/figures-<its name>)")
    parser.add_argument("--data-root", metavar="DIR", help="folder holding MNIST/raw/, if not where the run found it")
    args = parser.parse_args(argv)

    from vae.runs import load_run

    run = load_run(args.run)
    plots = run_settings(run.cfg)
    plots.update({key: value for key in (*SETTINGS, "pdf") if (value := getattr(args, key)) is not None})
    check_settings(plots)
    out = args.out
    if out is None and Path(args.run).is_file() and run.checkpoint.name != "best.ckpt":
        out = run.dir / f"figures-{run.checkpoint.stem}"  # figures/ keeps the best checkpoint's
    datamodule = run.datamodule(**({"root": args.data_root} if args.data_root else {}))
    paths = draw_all(run.model, datamodule, run.dir, run.cfg.seed, plots, out=out)
    print(f"{run.checkpoint} -> {paths[0].parent}: {', '.join(p.name for p in paths)}")
    return paths


if __name__ == "__main__":
    main()
