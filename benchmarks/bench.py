"""How fast the project trains, against a plain PyTorch loop and against pytorch/examples' torchvision pipeline.

    uv run python -m vae.bench                     # 5 rounds; real MNIST from $VAE_DATA_DIR or ../shared/data
    uv run python -m vae.bench --variants --sweep  # also torch.compile / bf16, big eval batches, a 4-job sweep
    uv run python -m vae.bench --quick             # a smoke run over a few thousand images (numbers meaningless)
    uv run python -m vae.bench --whole             # only: python train.py as whole processes against a plain script
    uv run python -m vae.bench --generation        # only: what the generated pictures' measures cost

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
throughput of the importance-weighted evaluation (vae/maths/evaluation.py, K = 1000), the peak memory of this process,
and the start-up of `python train.py` to its first training step. Everything runs on the CPU, with torch's
default threads unless --threads is given. The JSON (--json, default bench.json) holds the same numbers and
every field even for a part that was skipped (null, with the reason).

Without MNIST files the data are random pixels in MNIST's layout: the time of an epoch does not depend on them.
"""

import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.data import Bench, compose, data_overrides, find_data, load, torchvision_loaders
from benchmarks.epochs import dev_pass_result, epoch_result, measure_epochs, variants_result
from benchmarks.measures import goal, measure_iw, measure_memory, measure_steps, measure_sweep
from benchmarks.settings import FULL, MODELS, QUICK
from benchmarks.startup import machine, measure_startup
from benchmarks.table import iw_lines, startup_lines, table
from vae.core.errors import UserError, exit_on_user_error
from vae.files.writing import check_writable
from vae.tools.cli import parser as cli_parser


def parse(argv: list[str] | None):
    """The options, checked: a bad one is a UserError."""
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
        "--whole",
        action="store_true",
        help="only the whole default command (python train.py, start to finished run directory) against a plain "
        "torch script doing the same epochs, test and evaluation, as fresh processes in rounds (default 3)",
    )
    parser.add_argument(
        "--generation",
        action="store_true",
        help="only the cost of the generated pictures' measures (classifier, reference, FID, precision/recall)",
    )
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only the start-up figures (imports, train.py to its first step, the tools' --help)",
    )
    args = parser.parse_args(argv)
    if sum((args.whole, args.generation, args.startup_only)) > 1:
        raise UserError("--whole, --generation and --startup-only each run alone: give one of them")
    rounds = (QUICK if args.quick else FULL)["rounds"] if args.rounds is None else args.rounds
    if rounds < 1:
        raise UserError(f"--rounds {rounds}: give at least 1 round")
    if not Path(args.json).resolve().parent.is_dir():
        raise UserError(f"--json {args.json}: the folder {Path(args.json).resolve().parent} does not exist")
    check_writable(Path(args.json).resolve().parent, "the results into", "give a folder you can write: --json <path>")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: give at least 1 thread")
    return args, rounds


def command(argv: list[str] | None) -> str:
    return " ".join(["python -m vae.bench", *(sys.argv[1:] if argv is None else argv)])


def write(result: dict, path: str) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {path}")


def startup_only(bench: Bench, argv: list[str] | None) -> dict:
    """--startup-only: the start-up figures alone (5 rounds; with --quick, QUICK's)."""
    rounds = bench.plan["startups"] if bench.args.quick else 5
    startup = measure_startup(bench.data, bench.args.threads, rounds, bench.tmp)
    result = {"command": command(argv), "machine": machine(), "startup": startup}
    print("\n".join(startup_lines(startup)))
    return result


def only(bench: Bench, argv: list[str] | None) -> dict:
    """--whole or --generation: that measurement alone, its table and its JSON."""
    from benchmarks.generation import generation_lines, measure_generation
    from benchmarks.whole import loop_lines, measure_loop, measure_whole, whole_lines

    announce(bench)
    result = {"command": command(argv), "machine": machine(), "data": bench.kind}
    bench.cfgs = compose(bench)
    if bench.args.whole:
        result["whole"] = measure_whole(bench)
        print("\n".join(whole_lines(result["whole"])))
        bench.datamodule = load(bench)  # the loop step by step, and the evaluation against the CPU's peak
        result["loop"] = measure_loop(bench)
        print("\n".join(loop_lines(result["loop"])))
        result["eval"] = {"iw": measure_iw(bench)}
        print("\n".join(iw_lines(result["eval"]["iw"])))
    else:
        result["generation"] = measure_generation(bench)
        print("\n".join(generation_lines(result["generation"])))
    return result


def announce(bench: Bench) -> None:
    if bench.args.quick:
        print(
            "QUICK run: a few thousand images and few rounds, to check that the benchmark works; "
            "the numbers mean nothing",
            flush=True,
        )
    print(
        f"data: {bench.kind} ({bench.root}); timing does not depend on pixel values; "
        f"torch threads: {torch.get_num_threads()}",
        flush=True,
    )


def settings(bench: Bench) -> dict:
    cfg0 = bench.cfg0
    return {
        "rounds": bench.rounds,
        "batch_size": cfg0.batch_size,
        "eval_batch_size": cfg0.data.eval_batch_size,
        "torchvision_eval_batch_size": cfg0.batch_size,
        "lr": cfg0.lr,
        "gradient_clip_val": cfg0.gradient_clip_val,
        "seed": cfg0.seed,
        "models": MODELS,
    }


def benchmark(bench: Bench, argv: list[str] | None) -> dict:
    """Every measurement, one after the other, and the JSON of them all."""
    announce(bench)
    bench.cfgs = compose(bench)
    bench.datamodule = load(bench)
    epochs = measure_epochs(bench, torchvision_loaders(bench))
    steps = measure_steps(bench)
    iw = measure_iw(bench)
    memory = measure_memory()
    startup = measure_startup(bench.data, bench.args.threads, bench.plan["startups"], bench.tmp)
    sweep = measure_sweep(bench)
    epoch = epoch_result(epochs)
    data = {
        "kind": bench.kind,
        "root": str(bench.root) if bench.kind == "mnist" else "(a temporary folder)",
        "train_images": len(bench.x_train),
        "dev_images": len(bench.x_dev),
        "note": "timing does not depend on pixel values",
    }
    return {
        "quick": bench.args.quick,
        "command": command(argv),
        "data": data,
        "machine": machine(),
        "settings": settings(bench),
        "epoch": epoch,
        "goal": goal(epoch),
        "steps": steps,
        "eval": {"dev_pass_seconds": dev_pass_result(epochs), "iw": iw},
        "memory": memory,
        "startup": startup,
        "variants": variants_result(epochs),
        "sweep": sweep,
    }


@exit_on_user_error(sigterm=False)  # its trainings run Lightning, which handles SIGTERM itself
def main(argv: list[str] | None = None) -> dict:
    args, rounds = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from vae.run.training import quiet_lightning

    quiet_lightning()
    for name in ("lightning.pytorch", "lightning.fabric"):  # "GPU available: False" and the like, at every fit
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="vae-bench-") as tmp:
        root, kind = find_data(args.data, Path(tmp))
        dev_size, data = data_overrides(root)
        plan = QUICK if args.quick else FULL
        bench = Bench(args, plan, rounds, Path(tmp), root, kind, dev_size, data)
        if args.startup_only:
            result = startup_only(bench, argv)
        elif args.whole or args.generation:
            result = only(bench, argv)
        else:
            result = benchmark(bench, argv)
            print(table(result))
        write(result, args.json)
    return result
