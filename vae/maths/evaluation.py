"""Measure a trained model in nats: the importance-weighted log-likelihood, the ELBO and its terms,
reconstruction MSE, active units, KL per latent dimension, bits per dimension.

Every run does so on its best checkpoint at the end of training (config block `eval`, vae/run/training.py);
`python -m vae.evaluate` (vae/evaluate.py) does it again on a run, with other settings.

The log-likelihood log p(x) = log E_q(z|x)[p(x, z) / q(z|x)] has no closed form; Burda et al.
(2016) bound it from below with K importance samples z_k ~ q(z | x):

    log p(x) >= E[ log (1/K) sum_k w_k ],    w_k = p(x | z_k) p(z_k) / q(z_k | x)

    log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x),   p(z) the model's prior (N(0, I) for the VAE)

computed with logsumexp (the w_k themselves underflow: log w_k is about -100). K = 1 gives the
ELBO; the bound tightens as K grows and reaches log p(x) as K -> infinity. The ELBO here is
-(rec + kl) with rec = -mean_k log p(x | z_k) over the same K samples (the Monte-Carlo estimate
of the expected reconstruction term) and kl in closed form.
"""

import logging
import math
import time

import torch

from vae.maths.elbo import log_weights

log = logging.getLogger("vae.maths.evaluation")

SPLITS = {"test": "test", "dev": "val"}  # split -> prefix of its keys in metrics.json (as in training)
ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): unit j is active if Cov_x(E_q[z_j]) > 0.01
PROBABILITIES = ("log_likelihood", "elbo", "bits_per_dim")  # pseudo_<name> where the likelihood does not model x
PROGRESS_SECONDS = 10.0  # the importance sampling reports its progress this often
SHOWN_DIMS = 32  # KL per dimension printed by `summary`


@torch.no_grad()
def importance_sampled(
    model, x: torch.Tensor, iw_samples: int, chunk_size: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Per image: the IW bound `log_likelihood` (log (1/K) sum_k w_k), `rec` (-mean_k log p(x | z_k)) and `kl` (the
    mean over the samples of the prior's KL term: its closed form for N(0, I), log q(z_k | x) - log p(z_k) for the
    VampPrior).

    Images go in batches and samples in chunks of at most `chunk_size` (image, sample) pairs per decoder
    pass; a running logsumexp joins the chunks, so memory does not grow with K.
    """
    images = max(1, chunk_size // iw_samples)  # images per batch
    samples = max(1, min(iw_samples, chunk_size // images))  # samples per chunk
    # Results go into tensors allocated once: many small tensors kept between the big temporary ones
    # fragment the heap, and the process's memory would grow with every image.
    log_sum_w = torch.full((len(x),), -math.inf, device=x.device)
    sum_log_px_z = torch.zeros(len(x), device=x.device)
    sum_kl = torch.zeros(len(x), device=x.device)
    began = reported = time.perf_counter()
    for start in range(0, len(x), images):
        if (
            start and time.perf_counter() - reported > PROGRESS_SECONDS
        ):  # a K = 5000 evaluation takes many minutes on a CPU
            reported, spent = time.perf_counter(), time.perf_counter() - began
            log.info(
                f"log p(x), K = {iw_samples}: {start:,} of {len(x):,} images, {spent:.0f} s so far, "
                f"about {spent * (len(x) - start) / start:.0f} s to go"
            )
        xb = x[start : start + images]
        q = model.posterior(xb)
        for done in range(0, iw_samples, samples):
            k = min(samples, iw_samples - done)
            eps = torch.randn((k, *q.mu.shape), generator=generator, device=q.mu.device)
            log_px_z, log_pz, log_qz = log_weights(model, xb, q, eps)
            log_w = log_px_z + log_pz - log_qz
            batch = slice(start, start + len(xb))
            log_sum_w[batch] = torch.logaddexp(log_sum_w[batch], torch.logsumexp(log_w, dim=0))
            sum_log_px_z[batch] += log_px_z.sum(0)
            sum_kl[batch] += model.prior.kl(q, log_qz=log_qz, log_pz=log_pz).expand(k, -1).sum(0)
    return {
        "log_likelihood": log_sum_w - math.log(iw_samples),
        "rec": -sum_log_px_z / iw_samples,
        "kl": sum_kl / iw_samples,
    }


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Latent dimensions whose posterior mean varies over the images: Var_x(mu_j) > threshold; mu (N, n)."""
    return int((mu.var(dim=0) > threshold).sum())


@torch.no_grad()
def evaluate(model, x: torch.Tensor, iw_samples: int = 100, chunk_size: int = 8192, seed: int = 0) -> dict:
    """The metrics of `model` on the images x (N, 1, 28, 28), averaged over images; nats per image.

    Every model: mse (per pixel, of the decoder mean at the code / posterior mean). A model with a posterior
    (the VAE) also: log_likelihood (IW bound with K = iw_samples), elbo = -(elbo_rec + elbo_kl), active_units,
    kl_per_dim, and for a likelihood of discrete pixels bits_per_dim = -log_likelihood / (D ln 2).
    """
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    codes, squared_errors = [], []
    for start in range(0, len(x), chunk_size):
        xb = x[start : start + chunk_size]
        code = model.encode(xb)
        codes.append(code)
        squared_errors.append((xb - model.decode(code)).pow(2).flatten(1).mean(-1))
    metrics = {"mse": torch.cat(squared_errors).mean().item()}
    if model.prior is None:  # no p(z), no bound on log p(x): an auto-encoder
        return metrics

    generator = torch.Generator(device=device).manual_seed(seed)
    sampled = importance_sampled(model, x, iw_samples, chunk_size, generator)
    posteriors = [model.posterior(x[start : start + chunk_size]) for start in range(0, len(x), chunk_size)]
    per_dim = [model.prior.kl_per_dim(q) for q in posteriors]  # None for a prior whose KL does not split so
    kl = torch.cat(per_dim).mean(0) if per_dim[0] is not None else None  # (n,): mean over the images
    elbo_kl = kl.sum().item() if kl is not None else sampled["kl"].mean().item()
    log_likelihood = sampled["log_likelihood"].mean().item()
    metrics.update(
        {
            "log_likelihood": log_likelihood,
            "elbo": -(sampled["rec"].mean().item() + elbo_kl),
            "elbo_rec": sampled["rec"].mean().item(),
            "elbo_kl": elbo_kl,
            "active_units": active_units(torch.cat(codes)),
            **({"kl_per_dim": kl.tolist()} if kl is not None else {}),
        }
    )
    if model.likelihood.discrete:
        metrics["bits_per_dim"] = -log_likelihood / (x[0].numel() * math.log(2))
    unmodelled = model.likelihood.unmodelled(x)
    if unmodelled:  # the numbers are kept, under names that cannot pass for probabilities
        metrics = {(f"pseudo_{name}" if name in PROBABILITIES else name): value for name, value in metrics.items()}
        metrics["pseudo_why"] = unmodelled
    return metrics


def evaluate_split(
    model, datamodule, split: str = "test", iw_samples: int = 100, chunk_size: int = 8192, seed: int = 0
) -> dict:
    """`evaluate` on a split of a set-up data module, as metrics.json keys: `test/...`, with `iw_samples`
    (K) and `eval_seconds`, or for split=dev `val/...`, with `val/iw_samples` and `val/eval_seconds`."""
    start = time.perf_counter()
    x, _ = datamodule.splits[split]
    metrics = evaluate(model, x, iw_samples, chunk_size, seed)
    prefix = SPLITS[split]
    result = {f"{prefix}/{name}": value for name, value in metrics.items()}
    settings = "" if split == "test" else f"{prefix}/"  # the test split's K and time are plain `iw_samples`, ...
    if "log_likelihood" in metrics or "pseudo_log_likelihood" in metrics:
        result[f"{settings}iw_samples"] = iw_samples
    result[f"{settings}eval_seconds"] = round(time.perf_counter() - start, 2)
    return result


def scalars(metrics: dict) -> dict:
    """The measured numbers of `evaluate_split`'s result, for TensorBoard (no lists, no settings)."""
    return {
        name: value
        for name, value in metrics.items()
        if "/" in name and isinstance(value, (int, float)) and not name.endswith(("/iw_samples", "/eval_seconds"))
    }


def summary(metrics: dict, split: str, images: int) -> str:
    """The metrics as a few readable lines."""
    p, settings = SPLITS[split], "" if split == "test" else f"{SPLITS[split]}/"
    lines = [f"{split} split, {images} images ({metrics[f'{settings}eval_seconds']:.1f} s):"]
    pseudo = "pseudo_" if f"{p}/pseudo_why" in metrics else ""
    if f"{p}/{pseudo}log_likelihood" in metrics:
        kl_per_dim = metrics.get(f"{p}/kl_per_dim", [])
        if pseudo:
            lines.append(f"  (pseudo_: not probabilities: {metrics[f'{p}/pseudo_why']})")
        lines += [
            f"  {pseudo}log-likelihood  {metrics[f'{p}/{pseudo}log_likelihood']:9.3f} nats   (importance-weighted "
            f"bound, K = {metrics[f'{settings}iw_samples']}; higher is better)",
            f"  {pseudo}ELBO            {metrics[f'{p}/{pseudo}elbo']:9.3f} nats   = -(rec "
            f"{metrics[f'{p}/elbo_rec']:.3f} + KL {metrics[f'{p}/elbo_kl']:.3f})",
        ]
        if f"{p}/{pseudo}bits_per_dim" in metrics:
            lines.append(f"  {pseudo}bits per dim    {metrics[f'{p}/{pseudo}bits_per_dim']:9.4f}")
        lines.append(f"  active units    {metrics[f'{p}/active_units']:5d}   (Var_x(mu_j) > 0.01)")
        if kl_per_dim:  # the first dimensions only when there are many: metrics.json holds them all
            lines.append(
                "  KL per dim      "
                + " ".join(f"{value:.2f}" for value in kl_per_dim[:SHOWN_DIMS])
                + (
                    f" ... ({len(kl_per_dim) - SHOWN_DIMS} more in metrics.json)"
                    if len(kl_per_dim) > SHOWN_DIMS
                    else ""
                )
            )
    lines.append(f"  MSE per pixel   {metrics[f'{p}/mse']:9.5f}")
    return "\n".join(lines)
