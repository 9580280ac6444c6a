"""The lab's default run as a plain PyTorch script: what `python train.py` would cost with nothing added.

    python benchmarks/plain_script.py DATA_ROOT [--epochs 20] [--iw-samples 100] [--threads N] [--dev-size 10000]

It imports torch only (no Lightning, Hydra or this package) and trains the default model of conf/config.yaml
(784-512-2 MLP encoder with the mean and log-variance projections, 2-512-784 decoder, Gaussian p(x | z) with
sigma = 0.2 around sigmoid(x_hat), N(0, I) prior; fused Adam lr 1e-3, batch 128, gradient norm clipped at 250)
for the same epochs on the same 50,000 / 10,000 train / dev split, with a dev pass each epoch; then the test
pass of the last epoch's weights and the importance-weighted bound with K samples on the 10,000 test images
(chunks of 8192 (image, sample) pairs, as vae/maths/evaluation.py). No figures, checkpoints or logs. It prints one
JSON line: the seconds of each phase (`imports`, `data`, `fit`, `test`, `evaluation`) and the numbers, so that
`python -m vae.bench --whole` can set them beside the project's (benchmarks/whole.py).
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

IMPORTED = time.perf_counter()
SIGMA, WIDTH, LATENT, BATCH, LR, CLIP, EVAL_BATCH, CHUNK = 0.2, 512, 2, 128, 1e-3, 250.0, 1000, 8192
LOG_2PI = math.log(2 * math.pi)


def read_idx(path: Path) -> torch.Tensor:
    data = path.read_bytes()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(shape)


def images(raw: Path, name: str) -> torch.Tensor:
    return read_idx(raw / f"{name}-images-idx3-ubyte").unsqueeze(1).float().div_(255)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(784, WIDTH), nn.ReLU())
        self.mu, self.log_sigma_squared = nn.Linear(WIDTH, LATENT), nn.Linear(WIDTH, LATENT)
        self.decoder = nn.Sequential(nn.Linear(LATENT, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 784))

    def posterior(self, x):
        h = self.hidden(x)
        return self.mu(h), self.log_sigma_squared(h)

    def nll(self, x, x_hat):  # -log p(x | z), summed over pixels; x (B, 784), x_hat (B, 784)
        squared = (x - torch.sigmoid(x_hat)).pow(2) / (2 * SIGMA**2)
        return squared.sum(-1) + 784 * math.log(SIGMA * math.sqrt(2 * math.pi))

    def forward(self, x):  # loss per image = rec + KL, with one reparameterised sample
        mu, log_sigma_squared = self.posterior(x)
        z = mu + torch.exp(0.5 * log_sigma_squared) * torch.randn_like(mu)
        rec = self.nll(x.flatten(1), self.decoder(z))
        kl = -0.5 * (1 + log_sigma_squared - mu.pow(2) - log_sigma_squared.exp()).sum(-1)
        return rec + kl


@torch.no_grad()
def mean_loss(model, x) -> float:
    model.eval()
    return sum(model(x[i : i + EVAL_BATCH]).sum().item() for i in range(0, len(x), EVAL_BATCH)) / len(x)


@torch.no_grad()
def iw_bound(model, x, k: int) -> float:
    """Mean over x of log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x), z_i ~ q(z | x) (Burda et al., 2016)."""
    model.eval()
    per_batch = max(1, CHUNK // k)
    total = 0.0
    for i in range(0, len(x), per_batch):
        xb = x[i : i + per_batch].flatten(1)
        mu, log_sigma_squared = model.posterior(xb)
        eps = torch.randn(k, *mu.shape)
        z = mu + torch.exp(0.5 * log_sigma_squared) * eps  # (k, B, n)
        log_px_z = -model.nll(xb.expand(k, -1, -1).flatten(0, 1), model.decoder(z.flatten(0, 1))).view(k, -1)
        log_pz = -0.5 * (LOG_2PI + z.pow(2)).sum(-1)
        log_qz = -0.5 * (LOG_2PI + log_sigma_squared + eps.pow(2)).sum(-1)
        total += (torch.logsumexp(log_px_z + log_pz - log_qz, 0) - math.log(k)).sum().item()
    return total / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the folder holding MNIST/raw/ (uncompressed IDX files)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iw-samples", type=int, default=100)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev-size", type=int, default=10_000, help="training-file images held out as the dev split")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = {"imports": IMPORTED - STARTED}
    start = time.perf_counter()
    raw = Path(args.root) / "MNIST" / "raw"
    x_all, x_test = images(raw, "train"), images(raw, "t10k")
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(0))
    x_train, x_dev = x_all[order[: -args.dev_size]], x_all[order[-args.dev_size :]]
    torch.manual_seed(args.seed)
    model = VAE()
    optimiser = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    seconds["data"] = time.perf_counter() - start

    start, dev = time.perf_counter(), []
    for _ in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(x_train)).split(BATCH):
            loss = model(x_train[batch]).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimiser.step()
        dev.append(mean_loss(model, x_dev))
    seconds["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    test = mean_loss(model, x_test)
    seconds["test"] = time.perf_counter() - start
    start = time.perf_counter()
    log_likelihood = iw_bound(model, x_test, args.iw_samples)
    seconds["evaluation"] = time.perf_counter() - start
    seconds["total_in_process"] = time.perf_counter() - STARTED
    print(
        json.dumps(
            {
                "seconds": seconds,
                "dev_loss": dev,
                "test_loss": test,
                "test_log_likelihood": log_likelihood,
                "iw_samples": args.iw_samples,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
