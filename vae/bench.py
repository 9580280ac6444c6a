"""How fast the project trains, against a plain PyTorch loop and against pytorch/examples' torchvision pipeline.

    uv run python -m vae.bench                     # 5 rounds; real MNIST from $VAE_DATA_DIR or ../shared/data
    uv run python -m vae.bench --variants --sweep  # also torch.compile / bf16, big eval batches, a 4-job sweep
    uv run python -m vae.bench --quick             # a smoke run over a few thousand images (numbers meaningless)

One epoch = one pass over the train split (50,000 images, batch 128, Adam lr 1e-3, gradient norm clipped at 250)
plus one pass over the dev split (10,000 images, no gradients): what every epoch of train.py does. It is timed,
from the same initial weights, for three pipelines, in rounds that rotate their order:

    plain        the split as one float tensor, torch.randperm, index slices, the project's model and loss
    project      vae.run.training.build(cfg) and trainer.fit, as train.py runs it: callbacks, TensorBoard, checkpoints
    torchvision  torchvision's MNIST dataset + DataLoader (batch 128, no workers), as pytorch/examples/vae

for two models: `bernoulli_400_20` (pytorch/examples' 784-400-20 Bernoulli VAE) and `lab` (the default config).
The table gives the median seconds per epoch, their range (min, max) over the rounds, and the ratio to `plain`;
the goal is project <= 1.10 x plain and torchvision >= 1.4 x project. All three use the model's own optimiser
(`configure_optimizers`: fused Adam). Then the training steps alone, measured step by step against interleaved
plain steps (precise where whole epochs drift), for the project's Trainer and for Lightning's Trainer without
logger, callbacks or checkpoints: how much of the difference is Lightning's. Then: the dev pass alone, the
throughput of the importance-weighted evaluation (vae/evaluation.py, K = 1000), the peak memory of this process,
and the start-up of `python train.py` to its first training step. Everything runs on the CPU, with torch's
default threads unless --threads is given. The JSON (--json, default bench.json) holds the same numbers and
every field even for a part that was skipped (null, with the reason).

Without MNIST files the data are random pixels in MNIST's layout: the time of an epoch does not depend on them.
"""

import contextlib
import io
import json
import logging
import math
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from vae.core.errors import UserError, exit_on_user_error
from vae.data.mnist import DATA_DIR_ENV, FILES, read_idx, split_indices
from vae.files.schema import CONF_DIR
from vae.tools.cli import parser as cli_parser

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # name -> overrides of conf/config.yaml
    "bernoulli_400_20": ["model=vae", "width=400", "depth=1", "latent_dim=20", "likelihood=bernoulli"],
    "lab": [],
}
PIPELINES = ["plain", "project", "torchvision"]
VARIANTS = ["plain_compile", "plain_bf16"]  # with --variants, in the same rotation
GOAL = {"project_over_plain_max": 1.10, "torchvision_over_project_min": 1.4}
FULL = {"rounds": 5, "iw_images": 300, "startups": 3}  # startups: runs of train.py and of each import
QUICK = {"rounds": 2, "iw_images": 8, "startups": 1, "train": 2560, "dev": 1000}  # at most so many images
IW_SAMPLES = 1000
SWEEP = ["lr=1e-3,3e-4", "latent_dim=2,8", "epochs=1", "eval.enabled=false", "plots.every_n_epochs=0"]


class FirstStep(L.Callback):
    """For the start-up measurement: at train.py's first training step, writes the time into `path` and ends
    the process at once (`+callbacks.first_step._target_=vae.bench.FirstStep +callbacks.first_step.path=...`)."""

    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        Path(self.path).write_text(repr(time.time()))
        os._exit(0)


class EpochTimer(L.Callback):
    """Times the first epoch of a fit and stops it there: from the epoch's start to the end of training, so that
    the dev pass, history.csv, the figures and the two checkpoints (Lightning runs ModelCheckpoint after every
    other callback's on_train_epoch_end) count; and the dev pass alone. The Trainer is built for the config's
    `epochs` (20), so the epoch is one of the middle of a run: figures if plots.every_n_epochs is 1, and none
    of what train.py does once after the last epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module):
        self.dev_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self.dev_seconds = time.perf_counter() - self.dev_start

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


class PairedSteps(L.Callback):
    """Times the Trainer's training steps against plain ones, interleaved step by step: before each of the
    Trainer's steps it runs one step of the plain loop (its own model and optimiser, built from the same config,
    on a batch of the same tensor) and times it; the Trainer's step is the time from one batch start to the next
    less that plain step. A drift of the machine falls on both alike, so the ratio holds to about a percent,
    where epoch times move by 10-20 % between rounds. The first `skip` steps (warm-up) are left out."""

    def __init__(self, model, x: torch.Tensor, batch_size: int, clip: float | None, skip: int = 10):
        self.model, self.x, self.batch_size, self.clip, self.skip = model.train(), x, batch_size, clip, skip
        self.optimiser = model.configure_optimizers()
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.order = torch.randperm(len(x))
        self.plain: list[float] = []  # seconds of each plain step
        self.trainer: list[float] = []  # seconds from a batch start to the next, the plain step excluded
        self.last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self.last is not None:
            self.trainer.append(now - self.last)
        i = batch_idx % math.ceil(len(self.x) / self.batch_size) * self.batch_size
        with torch.enable_grad():
            plain_step(
                self.model, self.optimiser, self.parameters, self.x[self.order[i : i + self.batch_size]], self.clip
            )
        self.last = time.perf_counter()
        self.plain.append(self.last - now)

    def result(self) -> dict:
        skip = min(self.skip, len(self.trainer) // 2)
        plain, steps = self.plain[skip : len(self.trainer)], self.trainer[skip:]
        return {
            "steps": len(steps),
            "plain_ms": 1000 * sum(plain) / len(plain),
            "ms": 1000 * sum(steps) / len(steps),
            "ratio": sum(steps) / sum(plain),
            "ratio_median_of_pairs": statistics.median(t / p for t, p in zip(steps, plain)),
        }


def find_data(given: str | None, tmp: Path) -> tuple[Path, str]:
    """(root holding MNIST/raw/, "mnist" or "synthetic"). --data must hold the four files (uncompressed: torchvision
    reads them so); without --data, $VAE_DATA_DIR or ../shared/data are used if they do, else synthetic files."""
    candidates = [given] if given else [os.environ.get(DATA_DIR_ENV), ROOT.parent / "shared" / "data"]
    for root in (Path(c).expanduser() for c in candidates if c):
        raw = root / "MNIST" / "raw"
        missing = [name for name in FILES.values() if not (raw / name).is_file()]
        if not missing:
            return root, "mnist"
        if given:
            raise UserError(
                f"--data {root}: {raw} lacks {', '.join(missing)}; give the folder that holds MNIST/raw/ "
                "with the four uncompressed IDX files, or leave --data out to time synthetic data"
            )
    # Random pixels in MNIST's layout (60,000 + 10,000 images): both readers take them, and time is the same.
    raw = tmp / "synthetic" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (n,), dtype=torch.uint8, generator=generator)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.numpy().tobytes())
    return raw.parents[1], "synthetic"


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


def run_child(args: list[str], what: str, timeout: float = 1800) -> tuple[float, str | None]:
    """(wall seconds, None) of a subprocess in the repository, or (seconds, the reason it failed)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"{what} ran over {timeout:.0f} s"
    seconds = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        return seconds, f"{what} exited with status {done.returncode}: {lines[-1].strip()}"
    return seconds, None


def machine() -> dict:
    """The processor, its cores and the versions that the figures depend on."""
    import torchvision

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
        if Path("/proc/cpuinfo").is_file()
        else None
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu or platform.processor() or None,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


STARTUP = {  # what is started in a fresh process, and timed from spawn to its end (train.py: to its first step)
    "import_torch": [sys.executable, "-c", "import torch"],
    "import_lightning": [sys.executable, "-c", "import lightning"],
    "plots_help": [sys.executable, "-m", "vae.plots", "--help"],
    "evaluate_help": [sys.executable, "-m", "vae.evaluate", "--help"],
    "compare_help": [sys.executable, "-m", "vae.compare", "--help"],
    "bad_value": [sys.executable, "train.py", "lr=-1"],
}


def measure_startup(data: list[str], threads: int | None, rounds: int, tmp: Path) -> dict:
    """Seconds of each STARTUP command and of `python train.py` to its first training step (FirstStep writes the
    time and exits), in fresh processes, in rounds that take each in turn: {name: stats, ..., "error": ...}.
    The ratios of the issue's targets come with them (lightning / torch, first step - lightning, ...)."""
    times: dict[str, list[float]] = {name: [] for name in (*STARTUP, "train_first_step")}
    error = None
    for i in range(rounds):
        for name, command in STARTUP.items():
            seconds, failed = run_child(command, name, timeout=600)
            if failed and name != "bad_value":  # lr=-1 is meant to fail, at once
                error = error or failed
            times[name].append(seconds)
        marker = tmp / f"first_step_{i}"
        spawned = time.time()
        _, failed = run_child(
            [
                sys.executable,
                str(ROOT / "train.py"),
                "epochs=1",
                *data,
                "trainer.accelerator=cpu",
                *([f"threads={threads}"] if threads else []),
                f"hydra.run.dir={tmp / 'startup' / str(i)}",
                "+callbacks.first_step._target_=vae.bench.FirstStep",
                f"+callbacks.first_step.path={marker}",
            ],
            "python train.py",
            timeout=600,
        )
        if not marker.is_file():
            error = error or failed or "python train.py ended before its first training step"
            continue
        times["train_first_step"].append(float(marker.read_text()) - spawned)
    result = {name: stats(values) for name, values in times.items()}
    median = {name: entry["median"] if entry else None for name, entry in result.items()}
    torch_s, lightning_s = median["import_torch"], median["import_lightning"]
    ratios = {}
    if torch_s and lightning_s:
        ratios["lightning_over_torch"] = round(lightning_s / torch_s, 2)
        ratios.update(
            {
                f"{tool}_help_over_torch": round(median[f"{tool}_help"] / torch_s, 2)
                for tool in ("plots", "evaluate", "compare")
            }
        )
        if median["train_first_step"]:
            ratios["first_step_minus_lightning"] = round(median["train_first_step"] - lightning_s, 2)
    return {**result, "ratios": ratios, "error": error}


def startup_lines(st: dict) -> list[str]:
    names = {
        "import_torch": "python -c 'import torch'",
        "import_lightning": "python -c 'import lightning'",
        "train_first_step": "python train.py, to its first training step",
        "plots_help": "python -m vae.plots --help",
        "evaluate_help": "python -m vae.evaluate --help",
        "compare_help": "python -m vae.compare --help",
        "bad_value": "python train.py lr=-1 (refused)",
    }
    lines = ["start-up, seconds from spawn in a fresh process: median [min, max]"]
    for name, words in names.items():
        e = st.get(name)
        if e:
            lines.append(f"  {words:46} {e['median']:6.2f}  [{e['min']:.2f}, {e['max']:.2f}]")
    if st.get("ratios"):
        lines.append("  " + ", ".join(f"{k} {v:g}" for k, v in st["ratios"].items()))
    if st.get("error"):
        lines.append(f"  failed: {st['error']}")
    return lines


def table(r: dict) -> str:
    """The report as plain text."""
    d, m, s = r["data"], r["machine"], r["settings"]
    lines = [
        f"vae-lab benchmark{'  (QUICK: tiny data and rounds, the numbers mean nothing)' if r['quick'] else ''}",
        f"data: {d['kind']} from {d['root']} ({d['note']})",
        f"machine: {m['cpu']}, {m['cores']} cores; torch {m['torch']} with {m['torch_threads']} threads, "
        f"lightning {m['lightning']}, torchvision {m['torchvision']}, python {m['python']}",
        "",
        f"seconds per epoch: {d['train_images']:,} train images (batch {s['batch_size']}) + a dev pass over "
        f"{d['dev_images']:,}; median [min, max] of {s['rounds']} round(s)",
        f"{'model':18} {'pipeline':14} {'median':>8}  {'range':17} {'x plain':>7}  {'dev loss':>9}",
    ]
    for model in MODELS:
        for pipeline, entries in {**r["epoch"], **{v: r["variants"][v] for v in VARIANTS}}.items():
            e = entries[model]
            if e:
                lines.append(
                    f"{model:18} {pipeline:14} {e['median']:8.3f}  [{e['min']:6.3f}, {e['max']:6.3f}]  "
                    f"{e['ratio_to_plain']:7.2f}  {e['dev_loss']:9.2f}"
                )
    g = r["goal"]
    lines.append(
        f"goal (project <= {GOAL['project_over_plain_max']} x plain, torchvision >= "
        f"{GOAL['torchvision_over_project_min']} x project): {'holds' if g['holds'] else 'does NOT hold'}  ("
        + "; ".join(
            f"{k}: project/plain {v['project_over_plain']:.2f}, torchvision/project {v['torchvision_over_project']:.2f}"
            for k, v in g["models"].items()
        )
        + ")"
    )
    for name, e in r["variants"].items():
        if name in VARIANTS:
            for model, v in e.items():
                if v and v.get("first_epoch_seconds"):
                    lines.append(
                        f"  {name} {model}: first epoch, compilation included, {v['first_epoch_seconds']:.2f} s"
                    )
                if v:
                    lines.append(
                        f"  {name} {model}: dev loss {v['dev_loss']:.3f} in its own dev pass; its weights "
                        f"in fp32 with plain's noise {v['dev_loss_fp32']:.3f}, plain's "
                        f"{v['plain_dev_loss_fp32']:.3f} "
                        f"(difference {v['dev_loss_fp32'] - v['plain_dev_loss_fp32']:+.3f})"
                    )
    if r["variants"]["skipped"]:
        lines.append(f"variants: skipped ({r['variants']['skipped']})")

    lines += ["", "training steps alone, each interleaved with a plain step (PairedSteps): ms per step, x plain"]
    for model, e in r["steps"]["project"].items():
        b = r["steps"]["lightning"][model]
        lines.append(
            f"  {model:18} plain {e['plain_ms']:6.2f}  project {e['ms']:6.2f} ({e['ratio']:.3f} x)  "
            f"Lightning's Trainer alone {b['ms']:6.2f} ({b['ratio']:.3f} x, plain {b['plain_ms']:.2f})"
        )
    lines += ["", "evaluation: seconds of one dev pass (inside the epochs above), median"]
    for pipeline, entries in r["eval"]["dev_pass_seconds"].items():
        lines.append(f"  {pipeline:14} " + "  ".join(f"{k} {v['median']:.3f}" for k, v in entries.items() if v))
    for size, entries in r["variants"]["eval_batch"].items():
        if any(entries.values()):
            lines.append(
                f"  plain, eval batch {size}: " + "  ".join(f"{k} {v['median']:.3f}" for k, v in entries.items())
            )
    for model, e in r["eval"]["iw"].items():
        lines.append(
            f"  IW log-likelihood (vae.maths.evaluation.evaluate, K = {e['iw_samples']}), {model}: "
            f"{e['images_per_second']:.1f} images/s ({e['images']} images in {e['seconds']:.2f} s)"
        )

    st = r["startup"]
    lines += ["", f"peak resident memory of this process: {r['memory']['peak_rss_mib']:.0f} MiB"]
    lines += startup_lines(st)
    sw = r["sweep"]
    if sw["skipped"]:
        lines.append(f"sweep: skipped ({sw['skipped']})")
    for launcher in ("basic", "joblib"):
        e = sw[launcher]
        if e:
            lines.append(
                f"sweep of {sw['jobs']} jobs, {launcher} launcher ({e['n_jobs']} at once, threads "
                f"{e['threads'] or 'default'}): {e['wall_seconds']:.1f} s, {e['jobs_per_hour']:.0f} jobs/hour"
                + (f", FAILED: {e['error']}" if e["error"] else "")
            )
    return "\n".join(lines)


@exit_on_user_error(sigterm=False)  # its trainings run Lightning, which handles SIGTERM itself
def main(argv: list[str] | None = None) -> dict:
    parser = cli_parser("bench", __doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds of every pipeline (default 5; 2 with --quick)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--data", help="folder holding MNIST/raw/ (default: $VAE_DATA_DIR or ../shared/data, else synthetic data)"
    )
    parser.add_argument("--json", default="bench.json", help="where to write the results (default bench.json)")
    parser.add_argument("--variants", action="store_true", help="also torch.compile, bf16 autocast, eval batch 10000")
    parser.add_argument("--sweep", action="store_true", help="also a 4-job train.py sweep, basic vs joblib launcher")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few images, few rounds")
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only the start-up figures (imports, train.py to its first step, the tools' --help)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    rounds = plan["rounds"] if args.rounds is None else args.rounds
    if rounds < 1:
        raise UserError(f"--rounds {rounds}: give at least 1 round")
    if not Path(args.json).resolve().parent.is_dir():
        raise UserError(f"--json {args.json}: the folder {Path(args.json).resolve().parent} does not exist")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: give at least 1 thread")
    if args.threads:
        torch.set_num_threads(args.threads)

    import hydra
    from hydra.utils import instantiate

    from vae.maths.evaluation import evaluate
    from vae.run.training import build, quiet_lightning

    quiet_lightning()
    for name in ("lightning.pytorch", "lightning.fabric"):  # "GPU available: False" and the like, at every fit
        logging.getLogger(name).setLevel(logging.WARNING)
    tmp_dir = tempfile.TemporaryDirectory(prefix="vae-bench-")
    tmp = Path(tmp_dir.name)
    root, kind = find_data(args.data, tmp)
    n_file = len(read_idx(root / "MNIST" / "raw" / FILES["train_labels"], ndim=1))
    dev_size = min(10_000, n_file // 6)  # the project's 50,000 + 10,000 on MNIST; a sixth of a smaller file
    data = [f"data.root={root}", "data.download=false", f"data.dev_size={dev_size}"]
    if args.startup_only:
        startup = measure_startup(data, args.threads, plan["startups"] if args.quick else 5, tmp)
        result = {
            "command": " ".join(["python -m vae.bench", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(),
            "startup": startup,
        }
        print("\n".join(startup_lines(startup)))
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"-> {args.json}")
        tmp_dir.cleanup()
        return result
    common = [
        *data,
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "eval.enabled=false",
        *([f"threads={args.threads}"] if args.threads else []),
    ]
    if args.quick:
        print(
            "QUICK run: a few thousand images and few rounds, to check that the benchmark works; "
            "the numbers mean nothing",
            flush=True,
        )
    print(
        f"data: {kind} ({root}); timing does not depend on pixel values; torch threads: {torch.get_num_threads()}",
        flush=True,
    )

    with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="bench"):
        cfgs = {name: hydra.compose("config", overrides=[*common, *overrides]) for name, overrides in MODELS.items()}
    cfg0 = next(iter(cfgs.values()))

    # One data module for all pipelines and rounds (its setup, reading the IDX files, is not an epoch's cost).
    datamodule = instantiate(cfg0.data)
    datamodule.setup("fit")
    if args.quick:
        for split, n in (("train", plan["train"]), ("dev", plan["dev"])):
            datamodule.splits[split] = tuple(t[:n] for t in datamodule.splits[split])
    x_train, x_dev = datamodule.splits["train"][0], datamodule.splits["dev"][0]

    # torchvision reads the same files; Subset takes the same train and dev images as vae/data.py's split.
    import torchvision
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    mnist = torchvision.datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    train_index, dev_index = split_indices(len(mnist), dev_size, cfg0.data.split_seed)
    train_index, dev_index = train_index[: len(x_train)], dev_index[: len(x_dev)]  # --quick keeps a few
    if not torch.equal(mnist.data[train_index[:256]].float().div(255), x_train[:256, 0]):
        raise RuntimeError("vae/data.py splits train and dev differently from this benchmark: update vae/bench.py")
    # pytorch/examples/vae: DataLoader(batch_size=128, shuffle=True), and its test loader the same batch size.
    tv_train = DataLoader(Subset(mnist, train_index.tolist()), batch_size=cfg0.batch_size, shuffle=True)
    tv_dev = DataLoader(Subset(mnist, dev_index.tolist()), batch_size=cfg0.batch_size)

    pipelines = PIPELINES + (VARIANTS if args.variants else [])
    times, dev_times, dev_losses, fp32_losses = (
        {p: {m: [] for m in MODELS} for p in pipelines + VARIANTS} for _ in range(4)
    )
    eval_batch = {cfg0.data.eval_batch_size: dev_times["plain"], 10_000: {m: [] for m in MODELS}}

    def run(pipeline: str, model_name: str, round_: int | None) -> float:
        """One epoch of `pipeline` from the run's initial weights, recorded for `round_` (None: a warm-up);
        returns its seconds."""
        cfg = cfgs[model_name]
        torch.manual_seed(cfg.seed)  # the same initial weights (and order, noise in plain) every time
        if pipeline == "project":
            # A fresh Trainer per round, as train.py builds it, stopped after one epoch; the timer sees that
            # epoch alone, not the Trainer's start nor the data module's setup (done once, above).
            cfg.paths.output_dir = str(tmp / "runs" / model_name / str(round_))
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # its model summary, hints
                warnings.simplefilter("ignore")
                _, model, trainer, _ = build(cfg)
                timer = EpochTimer()
                trainer.callbacks.append(timer)
                trainer.fit(model, datamodule=datamodule)
            seconds, dev_seconds, dev_loss = (
                timer.seconds,
                timer.dev_seconds,
                float(trainer.callback_metrics["val/loss"]),
            )
        else:
            model = instantiate(cfg.model)  # the project's LightningModule, called directly
            optimiser = model.configure_optimizers()  # Adam, lr
            if pipeline == "torchvision":
                train_batches, dev_batches = (x for x, _ in tv_train), (x for x, _ in tv_dev)
            else:
                train_batches = batches(x_train, cfg.batch_size, shuffle=True)
                dev_batches = batches(x_dev, cfg.data.eval_batch_size)
            forward = None
            if pipeline == "plain_compile":  # compiled in the warm-up epoch before the rounds, reused after
                compiled = torch.compile(model)
                # Compiled code draws random numbers from its own generator: eps is drawn outside, from torch's,
                # so that it is the same noise as plain's and the losses differ only by the computation.
                forward = lambda x: compiled(x, torch.randn(len(x), cfg.latent_dim))  # noqa: E731
            seconds, dev_seconds, dev_loss = epoch(
                model,
                optimiser,
                train_batches,
                dev_batches,
                cfg.gradient_clip_val,
                bf16=pipeline == "plain_bf16",
                forward=forward,
            )
        if round_ is None:
            return seconds
        times[pipeline][model_name].append(seconds)
        dev_times[pipeline][model_name].append(dev_seconds)
        dev_losses[pipeline][model_name].append(dev_loss)
        if pipeline in VARIANTS or (pipeline == "plain" and args.variants):
            # Untimed: the dev loss of the weights after the epoch, in fp32 with the same noise for every pipeline:
            # how much the variant's training changed the result (its own dev pass computes in bf16 for bf16).
            with torch.random.fork_rng():
                torch.manual_seed(cfg.seed)
                fp32_losses[pipeline][model_name].append(dev_pass(model, batches(x_dev, cfg.data.eval_batch_size))[1])
        if pipeline == "plain" and args.variants:  # the same dev pass in batches of 10,000 (time only)
            eval_batch[10_000][model_name].append(dev_pass(model, batches(x_dev, 10_000))[0])
        print(
            f"round {round_ + 1}/{rounds}  {model_name:16} {pipeline:13} {seconds:8.3f} s  "
            f"(dev pass {dev_seconds:.3f} s, dev loss {dev_loss:.2f})",
            file=sys.stderr,
            flush=True,
        )
        return seconds

    compile_first, compile_error = {m: None for m in MODELS}, None
    if args.variants:
        for model_name in MODELS:
            try:
                compile_first[model_name] = run("plain_compile", model_name, None)
            except Exception as error:  # no C++ compiler, an unsupported op: the variant is reported as failed
                compile_error = f"torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0]}"
                pipelines.remove("plain_compile")
                break

    # Rounds: every model through every pipeline, the pipelines' order rotated by one each round, so that
    # a slow start or a drift of the machine does not always fall on the same pipeline. No warm-up round:
    # the first round's one-time costs show in the range, the median passes over them.
    for r in range(rounds):
        order = pipelines[r % len(pipelines) :] + pipelines[: r % len(pipelines)]
        for model_name in MODELS:
            for pipeline in order:
                run(pipeline, model_name, r)

    def entry(pipeline: str, model_name: str) -> dict | None:
        if not times[pipeline][model_name]:
            return None
        e = stats(times[pipeline][model_name])
        e["ratio_to_plain"] = e["median"] / statistics.median(times["plain"][model_name])
        e["dev_loss"] = statistics.median(dev_losses[pipeline][model_name])
        if pipeline in VARIANTS:
            e["dev_loss_fp32"] = statistics.median(fp32_losses[pipeline][model_name])
            e["plain_dev_loss_fp32"] = statistics.median(fp32_losses["plain"][model_name])
            e["first_epoch_seconds"] = compile_first[model_name] if pipeline == "plain_compile" else None
        return e

    # Step by step: the project's Trainer, and Lightning's Trainer alone (no logger, callbacks, checkpoints or
    # model summary; the same module, data and clipping), each interleaved with plain steps (PairedSteps).
    steps = {"project": {}, "lightning": {}}
    for model_name, cfg in cfgs.items():
        for which in steps:
            torch.manual_seed(cfg.seed)
            pair = PairedSteps(instantiate(cfg.model), x_train, cfg.batch_size, cfg.gradient_clip_val)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if which == "project":
                    cfg.paths.output_dir = str(tmp / "runs" / model_name / "paired")
                    _, model, trainer, _ = build(cfg)
                    trainer.callbacks += [pair, EpochTimer()]  # EpochTimer stops the fit after one epoch
                else:  # the config's Trainer (its clipping, its CPU) with nothing added
                    model = instantiate(cfg.model)
                    trainer = instantiate(
                        cfg.trainer,
                        max_epochs=1,
                        logger=False,
                        callbacks=[pair],
                        enable_checkpointing=False,
                        enable_progress_bar=False,
                        enable_model_summary=False,
                    )
                trainer.fit(model, datamodule=datamodule)
            steps[which][model_name] = pair.result()
            print(
                f"steps interleaved with plain ones, {model_name:16} {which:9} "
                f"{steps[which][model_name]['ratio']:.3f} x",
                file=sys.stderr,
                flush=True,
            )

    # Importance-weighted evaluation: vae/evaluation.py's metrics at K = 1000 on a few hundred dev images
    # (fresh weights: the time does not depend on them).
    iw = {}
    for model_name, cfg in cfgs.items():
        torch.manual_seed(cfg.seed)
        model = instantiate(cfg.model)
        x = x_dev[: plan["iw_images"]]
        start = time.perf_counter()
        evaluate(model, x, iw_samples=IW_SAMPLES, chunk_size=cfg.eval.chunk_size, seed=cfg.seed)
        seconds = time.perf_counter() - start
        iw[model_name] = {
            "iw_samples": IW_SAMPLES,
            "images": len(x),
            "seconds": seconds,
            "images_per_second": len(x) / seconds,
        }
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    startup = measure_startup(data, args.threads, plan["startups"], tmp)

    # A sweep of 4 real train.py runs: Hydra's basic launcher (one job after the other, torch's threads) vs the
    # joblib launcher (jobs in parallel, threads per job so that jobs x threads = cores).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sweep = {
        "skipped": None if args.sweep else "not requested: add --sweep",
        "jobs": 4,
        "overrides": SWEEP,
        "basic": None,
        "joblib": None,
    }
    if args.sweep:
        n_jobs = min(4, cores)
        for launcher, extra, at_once, per_job in (
            ("basic", [f"threads={args.threads}"] if args.threads else [], 1, args.threads),
            (
                "joblib",
                ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", f"threads={max(1, cores // n_jobs)}"],
                n_jobs,
                max(1, cores // n_jobs),
            ),
        ):
            seconds, error = run_child(
                [
                    sys.executable,
                    str(ROOT / "train.py"),
                    "-m",
                    *SWEEP,
                    *data,
                    "trainer.accelerator=cpu",
                    *extra,
                    f"hydra.sweep.dir={tmp / 'sweep' / launcher}",
                ],
                f"the {launcher} sweep",
            )
            failed = [
                p.parent.name
                for p in (tmp / "sweep" / launcher).glob("*/metrics.json")
                if json.loads(p.read_text()).get("status") != "completed"
            ]
            sweep[launcher] = {
                "wall_seconds": seconds,
                "jobs_per_hour": 4 * 3600 / seconds,
                "n_jobs": at_once,
                "threads": per_job,
                "error": error or (f"failed jobs: {failed}" if failed else None),
            }
            print(f"sweep, {launcher} launcher: {seconds:.1f} s", file=sys.stderr, flush=True)

    epochs = {p: {m: entry(p, m) for m in MODELS} for p in PIPELINES}
    goal_models = {
        m: {
            "project_over_plain": epochs["project"][m]["ratio_to_plain"],
            "torchvision_over_project": epochs["torchvision"][m]["median"] / epochs["project"][m]["median"],
        }
        for m in MODELS
    }
    for g in goal_models.values():
        g["holds"] = (
            g["project_over_plain"] <= GOAL["project_over_plain_max"]
            and g["torchvision_over_project"] >= GOAL["torchvision_over_project_min"]
        )
    result = {
        "quick": args.quick,
        "command": " ".join(["python -m vae.bench", *(sys.argv[1:] if argv is None else argv)]),
        "data": {
            "kind": kind,
            "root": str(root) if kind == "mnist" else "(a temporary folder)",
            "train_images": len(x_train),
            "dev_images": len(x_dev),
            "note": "timing does not depend on pixel values",
        },
        "machine": machine(),
        "settings": {
            "rounds": rounds,
            "batch_size": cfg0.batch_size,
            "eval_batch_size": cfg0.data.eval_batch_size,
            "torchvision_eval_batch_size": cfg0.batch_size,
            "lr": cfg0.lr,
            "gradient_clip_val": cfg0.gradient_clip_val,
            "seed": cfg0.seed,
            "models": MODELS,
        },
        "epoch": epochs,
        "goal": {**GOAL, "models": goal_models, "holds": all(g["holds"] for g in goal_models.values())},
        "steps": steps,
        "eval": {"dev_pass_seconds": {p: {m: stats(dev_times[p][m]) for m in MODELS} for p in PIPELINES}, "iw": iw},
        "memory": {"peak_rss_mib": peak_rss_mib},
        "startup": startup,
        "variants": {
            "skipped": None if args.variants else "not requested: add --variants",
            "error": compile_error,
            **{v: {m: entry(v, m) for m in MODELS} for v in VARIANTS},
            "eval_batch": {
                str(size): {m: stats(eval_batch[size][m]) if args.variants else None for m in MODELS}
                for size in eval_batch
            },
        },
        "sweep": sweep,
    }
    print(table(result))
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.json}")
    tmp_dir.cleanup()
    return result


if __name__ == "__main__":
    main()
