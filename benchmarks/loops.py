"""The plain loop the project is measured against (and torchvision's, which runs the same steps): index slices of
one tensor, the project's model and loss, backward, clipping, the model's own optimiser. And the medians."""

import statistics
import time

import torch


def batches(x: torch.Tensor, batch_size: int, shuffle: bool = False):
    """The plain loop's data: index slices of one tensor, a fresh torch.randperm per pass if shuffled."""
    order = torch.randperm(len(x)) if shuffle else None
    for i in range(0, len(x), batch_size):
        yield x[order[i : i + batch_size]] if shuffle else x[i : i + batch_size]


@torch.no_grad()
def dev_pass(model, dev_batches, bf16: bool = False, forward=None) -> tuple[float, float]:
    """(seconds, mean loss per image) of one pass without gradients; `forward(x)` replaces `model(x)` if given."""
    start = time.perf_counter()
    model.eval()
    forward = forward or model
    total, n = 0.0, 0
    for x in dev_batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            total += float(forward(x)["loss"].float().sum())
        n += len(x)
    return time.perf_counter() - start, total / n


def plain_step(forward, optimiser, parameters: list, x: torch.Tensor, clip: float | None, bf16: bool = False) -> None:
    """One training step of the hand-written loop: the batch's mean loss, backward, clipping, the optimiser."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = forward(x)["loss"].mean()
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(parameters, clip)  # what gradient_clip_val does in Lightning
    optimiser.step()


def epoch(model, optimiser, train_batches, dev_batches, clip: float | None, bf16: bool = False, forward=None):
    """One epoch of a hand-written loop (plain and torchvision): (seconds, dev pass seconds, dev loss)."""
    start = time.perf_counter()
    model.train()
    forward = forward or model
    parameters = [p for p in model.parameters() if p.requires_grad]
    for x in train_batches:
        plain_step(forward, optimiser, parameters, x, clip, bf16)
    dev_seconds, dev_loss = dev_pass(model, dev_batches, bf16, forward)
    return time.perf_counter() - start, dev_seconds, dev_loss


def stats(values: list[float]) -> dict | None:
    """The median, range and every value of a measurement's rounds (None for none)."""
    return (
        {
            "median": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
            "rounds": [round(v, 4) for v in values],
        }
        if values
        else None
    )
