"""The report's figures (vae/results/figures.py): files, sizes, content, determinism, titles for every model and
likelihood, TensorBoard and the redraw CLI (python -m vae.plots)."""

import io
from statistics import NormalDist

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from PIL import Image

from helpers import LIKELIHOODS, TINY_DEV, make_model, plot_defaults
from vae.data.mnist import MNISTDataModule
from vae.files.history import read_history
from vae.results import figures as plots
from vae.results.drawing import DPI, save
from vae.results.generation_figure import NAME as DIGITS
from vae.results.generation_figure import SIZE as DIGITS_SIZE
from vae.run.callbacks import LoggedFigures
from vae.tools import plots as plots_cli

PLOTS = plot_defaults()
ALL = {"samples", "reconstructions", "latent", "manifold", "interpolation", "learning_curves"}
HISTORY = (
    "epoch,step,seconds,train/kl,train/loss,train/rec,val/kl,val/loss,val/rec\n"
    "1,8,0.5,5.0,15.0,10.0,4.0,12.0,8.0\n"
    "2,16,0.5,6.0,9.0,3.0,5.0,7.0,2.0\n"
)


@pytest.fixture(scope="module")
def datamodule(tiny_mnist):
    datamodule = MNISTDataModule(root=str(tiny_mnist), dev_size=TINY_DEV, download=False)
    datamodule.setup()
    return datamodule


GRIDS = {"samples", "reconstructions", "manifold", "interpolation"}  # figures of image grids; the others draw in colour


def is_drawn(name: str, rgb: np.ndarray) -> bool:
    """Not blank: pixel variance above a floor, and more than text and frames: image grids cover a quarter
    of the figure or more; scatters and curves leave coloured pixels (text and frames are black and grey)."""
    if rgb.var() < 0.005:
        return False
    if name in GRIDS:
        return (rgb < 0.99).all(-1).mean() > 0.25
    return (rgb.std(-1) > 0.05).mean() > 0.001


def test_a_figure_of_text_and_frames_alone_counts_as_blank():
    for name in plots.SIZES:
        fig = plots.new_figure(name)
        fig.suptitle("a title of about the usual length, on two lines\nthe model, its latent_dim and likelihood")
        for ax in fig.subplots(1, 3):
            ax.set(title="an axis title", xlabel="an axis label", ylabel="another axis label")
        assert not is_drawn(name, plots.to_rgb(fig) / 255), name


@pytest.mark.parametrize(
    "kind,latent_dim,likelihood",
    [("vae", 8, "gaussian"), ("ae", 2, "bernoulli")],  # the 2-D VAE: vae_run's, below
)
def test_every_figure_is_written_at_its_size_and_not_blank(kind, latent_dim, likelihood, datamodule, tmp_path):
    (tmp_path / "history.csv").write_text(HISTORY)
    paths = plots.draw_all(make_model(kind, latent_dim, likelihood), datamodule, tmp_path, 0, PLOTS)
    names = {path.stem for path in paths}
    assert names == (ALL if latent_dim == 2 else ALL - {"manifold"})  # the manifold only for latent_dim 2
    assert {path.suffix for path in paths} == {".png"}  # plots.pdf is off by default
    for path in paths:
        assert path.parent == tmp_path / "figures"
        image = imread(path)
        width, height = plots.SIZES[path.stem]
        assert image.shape[:2] == (round(height * DPI), round(width * DPI)), path.name
        assert is_drawn(path.stem, image[..., :3]), f"{path.name} is (nearly) blank"


def test_a_figure_too_large_for_memory_is_left_out_with_a_warning(datamodule, caplog):
    """A 10^6 x 10^6 manifold would need terabytes: it is left out, and every other figure is drawn."""
    with caplog.at_level("WARNING", logger="vae.results.figures"):
        drawn = plots.figures(make_model(), datamodule, None, 0, {**PLOTS, "grid_size": 10**6})
    assert set(drawn) == {"samples", "reconstructions", "latent", "interpolation"}
    assert "the figure manifold was left out" in caplog.text


def test_pdf_beside_png_when_asked(datamodule, tmp_path):
    small = {**PLOTS, "pdf": True, "n_samples": 4, "grid_size": 3, "n_interpolations": 2, "interpolation_steps": 3}
    paths = plots.draw_all(make_model(), datamodule, tmp_path, 0, small)
    pdfs = sorted(p.stem for p in paths if p.suffix == ".pdf")
    assert pdfs == sorted(p.stem for p in paths if p.suffix == ".png") == sorted(ALL - {"learning_curves"})
    assert all(p.read_bytes().startswith(b"%PDF") for p in paths if p.suffix == ".pdf")


def test_latent_uses_pca_exactly_beyond_two_dimensions(datamodule):
    x, y = datamodule.splits["dev"]
    for latent_dim in (1, 2):
        ax = plots.latent(make_model(latent_dim=latent_dim), x, y).axes[0]
        assert "PC" not in ax.get_xlabel() + ax.get_ylabel()
    model = make_model(latent_dim=8)
    ax = plots.latent(model, x, y).axes[0]
    # the explained variance ratios, computed here from the singular values of the centred posterior means
    with torch.no_grad():
        mu = model.posterior(x).mu.double()
    s = torch.linalg.svdvals(mu - mu.mean(0))
    ratio = (s**2 / (s**2).sum()).tolist()
    assert ax.get_xlabel().startswith("PC 1") and f"({100 * ratio[0]:.1f}% of the variance)" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("PC 2") and f"({100 * ratio[1]:.1f}% of the variance)" in ax.get_ylabel()


def test_latent_scatter_holds_every_dev_image_with_a_legend_and_the_prior_circles(datamodule):
    x, y = datamodule.splits["dev"]
    ax = plots.latent(make_model(), x, y).axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(x)
    labels = ax.get_legend_handles_labels()[1]
    assert set(labels) >= {str(int(d)) for d in y.unique()}
    circles = [line for line in ax.get_lines() if "circle" in line.get_label()]
    assert [np.hypot(*line.get_xydata().T).mean() for line in circles] == pytest.approx([1, 2])
    ae_ax = plots.latent(make_model("ae"), x, y).axes[0]
    assert not any("circle" in line.get_label() for line in ae_ax.get_lines())  # an AE has no prior


def test_manifold_grid_is_the_inverse_gaussian_cdf_and_only_for_two_dimensions(datamodule):
    model = make_model()
    fig = plots.manifold(model, model.prior, grid_size=20)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (20 * 30 + 2, 20 * 30 + 2)  # 20 x 20 images of 28 + 2 pixels
    quantiles = [NormalDist().inv_cdf((i + 0.5) / 20) for i in range(20)]
    assert [float(t.get_text()) for t in ax.get_xticklabels()] == pytest.approx(quantiles, abs=0.006)
    assert [float(t.get_text()) for t in ax.get_yticklabels()] == pytest.approx(quantiles[::-1], abs=0.006)  # z_2 up
    assert "z_1" in ax.get_xlabel() and "z_2" in ax.get_ylabel()
    with pytest.raises(ValueError, match="latent_dim 2"):
        plots.manifold(make_model(latent_dim=8), make_model(latent_dim=8).prior)


def test_autoencoder_draws_from_a_gaussian_fitted_to_its_training_codes(datamodule):
    model = make_model("ae", likelihood="bernoulli")
    train_x = datamodule.splits["train"][0]
    p_z = model.sampling_prior(train_x)
    with torch.no_grad():
        codes = model.encode(train_x).numpy()
    assert p_z.mean.numpy() == pytest.approx(codes.mean(0), abs=1e-5)
    assert p_z.distribution.covariance_matrix.numpy() == pytest.approx(np.cov(codes.T), abs=1e-4)
    fig = plots.samples(model, p_z, n=16)
    assert f"the mean and covariance of the codes of the {len(train_x)} training images" in fig.get_suptitle()
    assert "an AE has no prior" in fig.get_suptitle()
    means, drawn = (ax.images[0].get_array() for ax in fig.axes)
    assert set(np.unique(drawn)) <= {0.0, 1.0}  # Bernoulli samples: pixels 0 or 1
    assert not set(np.unique(means)) <= {0.0, 1.0}  # the probabilities themselves
    assert "decoder means" in fig.axes[0].get_title() and "samples" in fig.axes[1].get_title()


def test_gaussian_samples_are_the_means_plus_noise_clipped(datamodule):
    model = make_model()
    fig = plots.samples(model, model.prior, n=64, seed=3)
    means, drawn = (np.asarray(ax.images[0].get_array()) for ax in fig.axes)
    assert "N(0, I)" in fig.get_suptitle()
    assert drawn.min() >= 0 and drawn.max() <= 1 and (drawn == 0).any() and (drawn == 1).any()
    inside = (drawn > 0) & (drawn < 1)  # where not clipped, sample - mean is the N(0, sigma^2) noise
    noise = (drawn - means)[inside]
    assert noise.std() == pytest.approx(0.2, rel=0.15) and abs(noise.mean()) < 0.05


def test_interpolation_pairs_have_different_labels_and_end_at_their_reconstructions(datamodule):
    x, y = datamodule.splits["dev"]
    model = make_model(latent_dim=4)
    fig = plots.interpolation(model, x, y, n=5, steps=7, seed=1)
    left, middle, right = fig.axes
    pairs = [t.get_text().split(" → ") for t in left.get_yticklabels()]
    assert len(pairs) == 5 and all(a != b for a, b in pairs)
    path = np.asarray(middle.images[0].get_array())
    assert path.shape == (5 * 30 + 2, 7 * 30 + 2)
    # the first image of each row is the decoder mean at the posterior mean of image a
    image_a = torch.from_numpy(np.asarray(left.images[0].get_array())[2:30, 2:30].copy()).view(1, 1, 28, 28)
    with torch.no_grad():
        start = model.decode(model.encode(image_a))[0, 0].numpy()
    assert path[2:30, 2:30] == pytest.approx(start, abs=1e-5)


def test_learning_curves_show_the_history(tmp_path):
    (tmp_path / "history.csv").write_text(HISTORY)
    history = read_history(tmp_path / "history.csv")
    vae = plots.learning_curves(history, make_model())
    assert [ax.get_title().split()[0] for ax in vae.axes] == ["reconstruction", "KL(q(z", "loss"]
    lines = {
        (ax.get_title().split()[0], line.get_label().split()[0]): list(line.get_ydata())
        for ax in vae.axes
        for line in ax.get_lines()
    }
    assert lines[("reconstruction", "train")] == [10.0, 3.0] and lines[("loss", "val")] == [12.0, 7.0]
    assert lines[("KL(q(z", "val")] == [4.0, 5.0]
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() == "nats per image" for ax in vae.axes)
    assert len(plots.learning_curves(history, make_model("ae")).axes) == 1  # an AE's loss is its rec


def test_figures_are_deterministic_and_leave_the_random_stream_alone(datamodule, tmp_path):
    model = make_model()
    x, y = datamodule.splits["dev"]
    torch.manual_seed(123)
    first = {name: plots.to_rgb(fig) for name, fig in plots.figures(model, datamodule, None, 0, PLOTS).items()}
    after_drawing = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after_drawing)  # drawing consumed none of the caller's random numbers
    second = {name: plots.to_rgb(fig) for name, fig in plots.figures(model, datamodule, None, 0, PLOTS).items()}
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    other_seed = plots.to_rgb(plots.samples(model, model.prior, 64, seed=1))
    assert not np.array_equal(first["samples"], other_seed)
    assert model.training  # put back in training mode


def test_png_written_in_one_pass_is_savefigs_file_byte_for_byte(datamodule, tmp_path):
    """vae/results/drawing.py's save draws a PNG once where savefig lays it out first: the same file."""
    model = make_model("vae", latent_dim=2)
    ours, theirs = (plots.figures(model, datamodule, None, seed=0, plots=plot_defaults()) for _ in range(2))
    for name, fig in ours.items():  # fresh figures each: a layout done once already moves on a second pass
        saved = save(fig, tmp_path / f"{name}.png").read_bytes()
        theirs[name].savefig(tmp_path / f"{name}-savefig.png")
        assert saved == (tmp_path / f"{name}-savefig.png").read_bytes(), name


def test_bad_settings_are_one_clear_error():
    from vae.core.errors import UserError

    with pytest.raises(UserError, match=r"plots.grid_size=0 is not valid: plots.grid_size must be a positive integer"):
        plots.check_settings({**PLOTS, "grid_size": 0})
    with pytest.raises(UserError, match="plots.interpolation_steps=1 is not valid: .* at least 2"):
        plots.check_settings({**PLOTS, "interpolation_steps": 1})
    with pytest.raises(UserError, match="plots.every_n_epochs=-1"):
        LoggedFigures({**PLOTS, "every_n_epochs": -1})


def test_cli_on_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plots_cli.main([str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: ") and "is not a run of train.py" in err


# --- end to end: a run draws the figures and sends them to TensorBoard; the CLI redraws them -------------


def test_training_writes_the_figures_and_sends_them_to_tensorboard(vae_run):
    """vae_run: plots.every_n_epochs=1, plots.grid_size=8 (tests/conftest.py); PDFs: test_pdf_beside_png_when_asked."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    figures = vae_run / "figures"
    assert {p.name for p in figures.iterdir()} == {f"{name}.png" for name in [*ALL, DIGITS]}  # digits: metrics.json's
    for path in figures.iterdir():  # each at its size and not blank (the 2-D Gaussian VAE of the lab)
        image = imread(path)
        width, height = plots.SIZES[path.stem] if path.stem != DIGITS else DIGITS_SIZE
        assert image.shape[:2] == (round(height * DPI), round(width * DPI)), path.name
        assert is_drawn(path.stem, image[..., :3]), f"{path.name} is (nearly) blank"
    events = EventAccumulator(str(vae_run), size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {f"figures/{name}" for name in [*ALL, DIGITS]}
    latent = events.Images("figures/latent")
    assert len(latent) == 2  # epoch 1 (plots.every_n_epochs=1), then the end's figures/ (drawn once, for both)
    assert len(events.Images("figures/learning_curves")) == 1  # the end's: while training, the SCALARS tab plots them
    width, height = plots.SIZES["latent"]
    logged_dpi = PLOTS["logged_dpi"]  # while training: drawn at plots.logged_dpi, cheaper
    assert (latent[0].width, latent[0].height) == (round(width * logged_dpi), round(height * logged_dpi))
    assert (latent[-1].width, latent[-1].height) == (width * DPI, height * DPI)
    assert latent[-1].step == latent[0].step * 2  # the last epoch's step
    shown = np.asarray(Image.open(io.BytesIO(latent[-1].encoded_image_string)).convert("RGB"))
    assert np.array_equal(shown, (imread(figures / "latent.png")[..., :3] * 255).round().astype(np.uint8))


def test_redraw_from_the_checkpoint_gives_the_same_figures(vae_run, tmp_path):
    trained_run = vae_run
    redrawn = tmp_path / "redrawn"
    plots_cli.main([str(trained_run), "--out", str(redrawn), "--no-pdf"])
    assert {p.name for p in redrawn.iterdir()} == {f"{name}.png" for name in [*ALL, DIGITS]}
    for name in [*ALL, DIGITS]:  # the latent scatter first of all, and the rest: same checkpoint, seed and settings
        assert np.array_equal(imread(redrawn / f"{name}.png"), imread(trained_run / "figures" / f"{name}.png")), name
    # another checkpoint's figures go beside figures/, not over it; the options change what is drawn
    plots_cli.main([str(trained_run / "checkpoints" / "last.ckpt"), "--n-samples", "4", "--no-pdf"])
    assert {p.name for p in (trained_run / "figures-last").iterdir()} == {f"{name}.png" for name in ALL}
    assert not np.array_equal(imread(trained_run / "figures-last" / "samples.png"), imread(redrawn / "samples.png"))
    with pytest.raises(SystemExit):
        plots_cli.main([str(trained_run), "--grid-size", "0", "--out", str(tmp_path / "bad")])


@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_every_model_and_likelihood_draws_its_figures_under_a_title_naming_its_likelihood(kind, likelihood, datamodule):
    """Each figure's title names the model and its likelihood (a learned sigma is not a Bernoulli's)."""
    model = make_model(kind, latent_dim=2, likelihood=likelihood)
    history = read_history_of(model)
    small = {**PLOTS, "n_samples": 4, "grid_size": 3, "n_interpolations": 2, "interpolation_steps": 3}
    drawn = plots.figures(model, datamodule, history, 0, small)
    assert set(drawn) == ALL
    words = {
        "gaussian": "Gaussian p(x | z), σ = 0.2",
        "gaussian_learned": "Gaussian p(x | z), learned σ = 0.2",
        "bernoulli": "Bernoulli p(x | z)",
    }[likelihood]
    who = "VAE, latent_dim = 2" if kind == "vae" else "auto-encoder, latent_dim = 2"
    for name, fig in drawn.items():
        assert f"{who}, {words}" in fig.get_suptitle(), name  # drawn, not blank, at its size: the test above
    sample_title = drawn["samples"].axes[1].get_title()
    assert ("Bernoulli" in sample_title) == (likelihood == "bernoulli")
    assert ("learned σ" in sample_title) == (likelihood == "gaussian_learned")


def read_history_of(model) -> list[dict]:
    """Two epochs of the terms the model logs."""
    return [
        {"epoch": epoch, **{f"{stage}/{term}": 10.0 / epoch for stage in ("train", "val") for term in model.terms}}
        for epoch in (1, 2)
    ]
