"""vae/maths/evaluation.py and python -m vae.evaluate: the importance-weighted bound against the ELBO and against a
closed-form log p(x), active units, the metrics of each model, and the command line on a trained run."""

import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.distributions import Normal

from helpers import LinearGaussian, assert_converges_to_exact, make_model
from vae.maths.elbo import kl_divergence, log_weights
from vae.maths.evaluation import active_units, evaluate, importance_sampled, summary
from vae.tools.evaluate import main


def small_vae(likelihood="bernoulli", latent_dim=3):
    return make_model("vae", latent_dim=latent_dim, likelihood=likelihood, width=16).eval()


def test_one_sample_bound_is_the_elbo_estimate_with_the_same_noise():
    """K = 1: log w = log p(x | z) + log p(z) - log q(z | x), the one-sample ELBO, z from the same eps."""
    model = small_vae()
    x = torch.bernoulli(torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    eps = torch.randn((1, 5, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        posterior = model.posterior(x)
        mu, log_sigma_squared = posterior.mu, posterior.log_sigma_squared
        z = mu + torch.exp(0.5 * log_sigma_squared) * eps[0]
        q = Normal(mu, torch.exp(0.5 * log_sigma_squared))
        elbo_estimate = -model(x, eps[0])["rec"] + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        log_px_z, log_pz, log_qz = log_weights(model, x, posterior, eps)
        log_w = log_px_z + log_pz - log_qz
        # the whole estimator with K = 1 draws the same eps from a generator with the same seed
        bound = importance_sampled(model, x, iw_samples=1, chunk_size=100, generator=torch.Generator().manual_seed(2))[
            "log_likelihood"
        ]
    assert torch.allclose(log_px_z[0], -model(x, eps[0])["rec"], atol=1e-4)
    assert torch.allclose(log_w[0], elbo_estimate, atol=1e-4)
    assert torch.allclose(bound, elbo_estimate, atol=1e-4)


def test_bound_converges_to_the_exact_log_likelihood_of_a_linear_gaussian_model():
    # 5000 samples in chunks of 1000 (image, sample) pairs: the running logsumexp joins 5 chunks
    assert_converges_to_exact(LinearGaussian(), chunk_size=1000, one_sample_below=0.2)


@torch.no_grad()
def test_bound_grows_with_the_number_of_samples():
    """E[log (1/K) sum_k w_k] is non-decreasing in K and stays below log p(x); averaged over 500 images."""
    model = LinearGaussian(shift=0.3)  # a poor proposal: the bound is loose at small K
    generator = torch.Generator().manual_seed(2)
    x = model.sample(500, generator)
    exact = model.log_p(x)
    gaps = []  # log p(x) - bound, mean over the images, with its standard error
    for k in (1, 5, 50, 500):
        gap = exact - importance_sampled(model, x, iw_samples=k, chunk_size=4096, generator=generator)["log_likelihood"]
        gaps.append((gap.mean().item(), gap.std().item() / math.sqrt(len(gap))))
    for (looser, looser_error), (tighter, tighter_error) in zip(gaps, gaps[1:]):
        assert looser - tighter > 3 * math.hypot(looser_error, tighter_error)  # tighter, far beyond the noise
    assert gaps[-1][0] > -3 * gaps[-1][1]  # and still below log p(x), up to the noise


def test_active_units_on_constructed_codes():
    """Var_x(mu_j) > 0.01: dims of std 1 and 0.2 are active; std 0.05 (variance 0.0025) and a constant are not."""
    generator = torch.Generator().manual_seed(0)
    stds = torch.tensor([1.0, 1.0, 0.2, 0.05, 0.0])
    mu = 3.0 + stds * torch.randn(2000, 5, generator=generator)
    assert active_units(mu) == 3
    assert active_units(torch.zeros(10, 4)) == 0


def test_vae_metrics_and_their_relations():
    model = small_vae(latent_dim=4)
    x = torch.bernoulli(torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    metrics = evaluate(model, x, iw_samples=20, chunk_size=64)
    assert set(metrics) == {
        "mse",
        "log_likelihood",
        "elbo",
        "elbo_rec",
        "elbo_kl",
        "active_units",
        "kl_per_dim",
        "bits_per_dim",
    }
    with torch.no_grad():
        q = model.posterior(x)
        kl = kl_divergence(q.mu, q.log_sigma_squared).mean().item()
        mse = ((x - model.decode(model.encode(x))) ** 2).mean().item()
    assert len(metrics["kl_per_dim"]) == 4 and sum(metrics["kl_per_dim"]) == pytest.approx(kl, rel=1e-5)
    assert metrics["elbo_kl"] == pytest.approx(kl, rel=1e-5)
    assert metrics["elbo"] == pytest.approx(-(metrics["elbo_rec"] + metrics["elbo_kl"]))
    assert metrics["mse"] == pytest.approx(mse, rel=1e-5)
    assert metrics["elbo"] < metrics["log_likelihood"] < 0
    assert metrics["bits_per_dim"] == pytest.approx(-metrics["log_likelihood"] / (784 * math.log(2)))
    # chunking changes which noise goes where, not the estimate beyond its Monte-Carlo error
    again = evaluate(model, x, iw_samples=20, chunk_size=7)
    assert again["log_likelihood"] == pytest.approx(metrics["log_likelihood"], abs=0.5)


def test_a_bernoulli_on_grey_levels_names_its_numbers_as_no_probabilities(caplog):
    """Cross-entropy on grey levels is what pytorch/examples trains, but log p(x) of images a Bernoulli cannot
    produce: the same numbers, under pseudo_ names, with the reason; binary images keep the plain names."""
    from vae.maths import evaluation

    model = small_vae(latent_dim=4)
    grey = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    binary = torch.bernoulli(grey, generator=torch.Generator().manual_seed(1))
    metrics = evaluate(model, grey, iw_samples=5, seed=3)
    assert {"pseudo_log_likelihood", "pseudo_elbo", "pseudo_bits_per_dim", "pseudo_why"} <= set(metrics)
    assert not {"log_likelihood", "elbo", "bits_per_dim"} & set(metrics)
    assert "grey levels" in metrics["pseudo_why"] and "data.binarize=dynamic" in metrics["pseudo_why"]
    assert metrics["pseudo_elbo"] == pytest.approx(-(metrics["elbo_rec"] + metrics["elbo_kl"]))
    assert "log_likelihood" in evaluate(model, binary, iw_samples=5)
    shown = summary({f"test/{k}": v for k, v in metrics.items()} | {"iw_samples": 5, "eval_seconds": 0.1}, "test", 30)
    assert "pseudo_log-likelihood" in shown and "not probabilities: the pixels are grey levels" in shown
    # a long evaluation says how far it is
    evaluation.PROGRESS_SECONDS, saved = -1.0, evaluation.PROGRESS_SECONDS
    try:
        with caplog.at_level("INFO", logger="vae.maths.evaluation"):
            evaluate(model, binary, iw_samples=5, chunk_size=50)  # 10 images per batch: three batches
    finally:
        evaluation.PROGRESS_SECONDS = saved
    assert "log p(x), K = 5: 10 of 30 images" in caplog.text and "s to go" in caplog.text


def test_gaussian_vae_has_no_bits_per_dim_and_the_autoencoder_only_mse():
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert "bits_per_dim" not in evaluate(small_vae("gaussian"), x, iw_samples=3)
    ae = make_model("ae", latent_dim=2, likelihood="gaussian", width=16)
    metrics = evaluate(ae, x, iw_samples=3)
    with torch.no_grad():
        expected = ((x - torch.sigmoid(ae.decoder(ae.encode(x)))) ** 2).mean().item()
    assert set(metrics) == {"mse"} and metrics["mse"] == pytest.approx(expected, rel=1e-5)


# End to end: the session's Bernoulli conv run (tests/conftest.py), then the command line on it.


def test_training_evaluates_the_best_checkpoint(bernoulli_run):
    run_dir = bernoulli_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/log_likelihood", "test/elbo", "test/elbo_rec", "test/elbo_kl", "test/mse", "test/bits_per_dim"):
        assert isinstance(metrics[key], float), key
    assert metrics["iw_samples"] == 7 and len(metrics["test/kl_per_dim"]) == 3
    assert 0 <= metrics["test/active_units"] <= 3
    # the ELBO's terms agree with Lightning's test pass over the same checkpoint (one sample of z per image)
    assert metrics["test/elbo_kl"] == pytest.approx(metrics["test/kl"], rel=1e-4)
    assert metrics["test/elbo_rec"] == pytest.approx(metrics["test/rec"], rel=0.02)
    shown = summary(metrics, "test", 60)  # what the run prints
    assert "log-likelihood" in shown and "bits per dim" in shown and f"{metrics['test/log_likelihood']:9.3f}" in shown
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/beta", "test/log_likelihood", "test/elbo", "test/mse", "test/active_units"} <= tags
    # KL warm-up over the first epoch: beta below 1 in epoch 1, 1 from epoch 2 on
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    betas = [float(dict(zip(header, line.split(",")))["train/beta"]) for line in lines[1:]]
    assert 0 < betas[0] < 1 and betas[1] == 1


def test_command_line_evaluates_the_dev_split_into_metrics_json(bernoulli_run, capsys):
    run_dir = bernoulli_run
    before = json.loads((run_dir / "metrics.json").read_text())
    result = main([str(run_dir / "checkpoints" / "best.ckpt"), "--split", "dev", "--iw-samples", "4"])
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["val/log_likelihood"] == result["val/log_likelihood"] and after["val/iw_samples"] == 4
    assert {key: after[key] for key in before} == before  # the test metrics stay as they were
    assert "dev split" in capsys.readouterr().out


def test_command_line_errors_are_one_line(bernoulli_run, tmp_path, capsys):
    run_dir = bernoulli_run
    for argv, message in (
        ([str(tmp_path)], "is not a run of train.py"),
        ([str(run_dir), "--samples", "5"], "unrecognized arguments: --samples 5"),
        ([str(run_dir), "--iw-samples", "many"], "argument --iw-samples: invalid int value: 'many'"),
        ([str(run_dir), "--split", "train"], "eval.split='train' is not valid: eval.split must be test or dev"),
        ([str(run_dir), "--iw-samples", "0"], "eval.iw_samples=0 is not valid"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 1 and err.count("\n") == 1 and err.startswith("error: ") and message in err
