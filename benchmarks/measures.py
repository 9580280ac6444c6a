"""The measurements after the epochs: the training steps interleaved with plain ones, the throughput of the
importance-weighted evaluation, the peak memory, a --sweep of train.py with two launchers; and the goal."""

import contextlib
import io
import json
import math
import sys
import time
import warnings

import torch

from benchmarks.callbacks import EpochTimer, PairedSteps
from benchmarks.data import Bench
from benchmarks.settings import GOAL, IW_SAMPLES, MODELS, ROOT, SWEEP, SWEEP_JOBS
from benchmarks.startup import cores, run_child
from vae.files.layout import RunFiles


def paired_steps(bench: Bench, model_name: str, which: str) -> dict:
    """PairedSteps' result for one fit of one epoch: of the project's Trainer (`which` "project"), or of the
    config's Trainer with nothing added ("lightning": its clipping, its CPU; no logger, callbacks, checkpoints or
    model summary)."""
    from hydra.utils import instantiate

    from vae.run.training import build

    cfg = bench.cfgs[model_name]
    torch.manual_seed(cfg.seed)
    pair = PairedSteps(instantiate(cfg.model), bench.x_train, cfg.batch_size, cfg.gradient_clip_val)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "project":
            cfg.paths.output_dir = str(bench.tmp / "runs" / model_name / "paired")
            _, model, trainer, _ = build(cfg)
            trainer.callbacks += [pair, EpochTimer()]  # EpochTimer stops the fit after one epoch
        else:
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
        trainer.fit(model, datamodule=bench.datamodule)
    return pair.result()


def measure_steps(bench: Bench) -> dict:
    """Step by step: the project's Trainer, and Lightning's Trainer alone (the same module, data and clipping), each
    interleaved with plain steps: {"project": {model: ...}, "lightning": {model: ...}}."""
    steps = {"project": {}, "lightning": {}}
    for model_name in bench.cfgs:
        for which in steps:
            steps[which][model_name] = paired_steps(bench, model_name, which)
            print(
                f"steps interleaved with plain ones, {model_name:16} {which:9} "
                f"{steps[which][model_name]['ratio']:.3f} x",
                file=sys.stderr,
                flush=True,
            )
    return steps


def decoder_flops(model) -> int | None:
    """Multiply-adds x 2 of one decoder pass (one sample of z), from its Linear layers; None for a decoder with other
    layers (convolutions), whose count this does not know."""
    layers = [m for m in model.decoder.modules() if len(list(m.children())) == 0]
    if any(not isinstance(m, (torch.nn.Linear, torch.nn.ReLU, torch.nn.Unflatten)) for m in layers):
        return None
    return sum(2 * m.in_features * m.out_features for m in layers if isinstance(m, torch.nn.Linear))


def matmul_peak(size: int = 4096, repeats: int = 3) -> float:
    """FP32 FLOP/s of the best of `repeats` size x size matrix products: the most this CPU's BLAS does here, the
    practical peak the evaluation is set against."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def measure_iw(bench: Bench) -> dict:
    """Importance-weighted evaluation: vae/maths/evaluation.py's metrics at K = IW_SAMPLES on a few hundred dev
    images (fresh weights: the time does not depend on them). {model: images per second, ...}, with the decoder's
    FLOP/s and their fraction of a large matrix product's (`matmul_peak`)."""
    from hydra.utils import instantiate

    from vae.maths.evaluation import evaluate

    iw = {}
    for model_name, cfg in bench.cfgs.items():
        torch.manual_seed(cfg.seed)
        model = instantiate(cfg.model)
        x = bench.x_dev[: bench.plan["iw_images"]]
        start = time.perf_counter()
        evaluate(model, x, iw_samples=IW_SAMPLES, chunk_size=cfg.eval.chunk_size, seed=cfg.seed)
        seconds = time.perf_counter() - start
        flops = decoder_flops(model)
        achieved = None if flops is None else flops * IW_SAMPLES * len(x) / seconds
        iw[model_name] = {
            "iw_samples": IW_SAMPLES,
            "images": len(x),
            "seconds": seconds,
            "images_per_second": len(x) / seconds,
            "decoder_flops_per_sample": flops,
            "decoder_gflops_per_second": None if achieved is None else achieved / 1e9,
        }
    peak = matmul_peak(bench.plan["matmul_size"])
    for result in iw.values():
        result["matmul_peak_gflops_per_second"] = peak / 1e9
        achieved = result["decoder_gflops_per_second"]
        result["fraction_of_peak"] = None if achieved is None else achieved * 1e9 / peak
    return iw


def measure_memory() -> dict:
    """The peak resident memory of this process so far, in MiB. `resource` is POSIX's: where it is missing
    (Windows) the figure is null, with the reason."""
    try:
        import resource
    except ImportError:
        return {"peak_rss_mib": None, "skipped": "not measured: Python's resource module is POSIX-only"}
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "skipped": None}  # KiB on Linux


def sweep_launcher(bench: Bench, launcher: str, extra: list[str], at_once: int, per_job: int | None) -> dict:
    """One sweep of SWEEP_JOBS real train.py runs with `launcher`: its wall seconds, jobs per hour, and failures."""
    folder = bench.tmp / "sweep" / launcher
    seconds, error = run_child(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            *SWEEP,
            *bench.data,
            "trainer.accelerator=cpu",
            *extra,
            f"hydra.sweep.dir={folder}",
        ],
        f"the {launcher} sweep",
    )
    jobs = [RunFiles(job) for job in folder.iterdir() if not job.name.startswith(".")] if folder.is_dir() else []
    failed = [
        job.root.name
        for job in jobs
        if job.metrics.is_file() and json.loads(job.metrics.read_text()).get("status") != "completed"
    ]
    print(f"sweep, {launcher} launcher: {seconds:.1f} s", file=sys.stderr, flush=True)
    return {
        "wall_seconds": seconds,
        "jobs_per_hour": SWEEP_JOBS * 3600 / seconds,
        "n_jobs": at_once,
        "threads": per_job,
        "error": error or (f"failed jobs: {failed}" if failed else None),
    }


def measure_sweep(bench: Bench) -> dict:
    """With --sweep, SWEEP_JOBS real train.py runs: Hydra's basic launcher (one job after the other, torch's
    threads) vs the joblib launcher (jobs in parallel, threads per job so that jobs x threads = cores)."""
    threads = bench.args.threads
    sweep = {
        "skipped": None if bench.args.sweep else "not requested: add --sweep",
        "jobs": SWEEP_JOBS,
        "overrides": SWEEP,
        "basic": None,
        "joblib": None,
    }
    if bench.args.sweep:
        n_jobs = min(SWEEP_JOBS, cores())
        per_job = max(1, cores() // n_jobs)
        joblib = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", f"threads={per_job}"]
        sweep["basic"] = sweep_launcher(bench, "basic", [f"threads={threads}"] if threads else [], 1, threads)
        sweep["joblib"] = sweep_launcher(bench, "joblib", joblib, n_jobs, per_job)
    return sweep


def goal(epoch: dict) -> dict:
    """The JSON's `goal`: per model project / plain and torchvision / project, and whether GOAL holds for all."""
    models = {
        m: {
            "project_over_plain": epoch["project"][m]["ratio_to_plain"],
            "torchvision_over_project": epoch["torchvision"][m]["median"] / epoch["project"][m]["median"],
        }
        for m in MODELS
    }
    for g in models.values():
        g["holds"] = (
            g["project_over_plain"] <= GOAL["project_over_plain_max"]
            and g["torchvision_over_project"] >= GOAL["torchvision_over_project_min"]
        )
    return {**GOAL, "models": models, "holds": all(g["holds"] for g in models.values())}
