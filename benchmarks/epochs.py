"""The epochs of the three pipelines (plain, project, torchvision) and, with --variants, of the plain loop compiled
and in bf16: every model through every pipeline in rounds whose order rotates, each epoch from the same initial
weights. What it records gives the JSON's `epoch`, `eval.dev_pass_seconds` and `variants`."""

import contextlib
import io
import statistics
import sys
import warnings

import torch

from benchmarks.callbacks import EpochTimer
from benchmarks.data import Bench
from benchmarks.loops import batches, dev_pass, epoch, stats
from benchmarks.settings import MODELS, PIPELINES, VARIANTS


class Epochs:
    """One epoch of a pipeline at a time (`run`), and the seconds, dev passes and dev losses of every round."""

    def __init__(self, bench: Bench, loaders: tuple):
        self.bench, self.loaders = bench, loaders  # loaders: torchvision's (train, dev)
        self.pipelines = PIPELINES + (VARIANTS if bench.args.variants else [])
        self.times, self.dev_times, self.dev_losses, self.fp32_losses = (
            {p: {m: [] for m in MODELS} for p in self.pipelines + VARIANTS} for _ in range(4)
        )
        self.eval_batch = {bench.cfg0.data.eval_batch_size: self.dev_times["plain"], 10_000: {m: [] for m in MODELS}}
        self.compile_first, self.compile_error = {m: None for m in MODELS}, None

    def project(self, model_name: str, round_: int | None) -> tuple:
        """(seconds, dev seconds, dev loss, model) of one epoch of the Trainer that train.py builds. A fresh Trainer
        per round, stopped after one epoch; the timer sees that epoch alone, not the Trainer's start nor the data
        module's setup (done once, before the rounds)."""
        from vae.run.training import build

        cfg = self.bench.cfgs[model_name]
        cfg.paths.output_dir = str(self.bench.tmp / "runs" / model_name / str(round_))
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # its model summary, hints
            warnings.simplefilter("ignore")
            _, model, trainer, _ = build(cfg)
            timer = EpochTimer()
            trainer.callbacks.append(timer)
            trainer.fit(model, datamodule=self.bench.datamodule)
        return timer.seconds, timer.dev_seconds, float(trainer.callback_metrics["val/loss"]), model

    def hand_written(self, pipeline: str, model_name: str) -> tuple:
        """(seconds, dev seconds, dev loss, model) of one epoch of a hand-written loop: the project's
        LightningModule called directly, over index slices (plain and its variants) or torchvision's loaders."""
        from hydra.utils import instantiate

        cfg = self.bench.cfgs[model_name]
        model = instantiate(cfg.model)
        optimiser = model.configure_optimizers()  # Adam, lr
        if pipeline == "torchvision":
            tv_train, tv_dev = self.loaders
            train_batches, dev_batches = (x for x, _ in tv_train), (x for x, _ in tv_dev)
        else:
            train_batches = batches(self.bench.x_train, cfg.batch_size, shuffle=True)
            dev_batches = batches(self.bench.x_dev, cfg.data.eval_batch_size)
        forward = None
        if pipeline == "plain_compile":  # compiled in the warm-up epoch before the rounds, reused after
            compiled = torch.compile(model)
            # Compiled code draws random numbers from its own generator: eps is drawn outside, from torch's,
            # so that it is the same noise as plain's and the losses differ only by the computation.
            forward = lambda x: compiled(x, torch.randn(len(x), cfg.latent_dim))  # noqa: E731
        bf16 = pipeline == "plain_bf16"
        return (*epoch(model, optimiser, train_batches, dev_batches, cfg.gradient_clip_val, bf16, forward), model)

    def run(self, pipeline: str, model_name: str, round_: int | None) -> float:
        """One epoch of `pipeline` from the run's initial weights, recorded for `round_` (None: a warm-up);
        returns its seconds."""
        torch.manual_seed(self.bench.cfgs[model_name].seed)  # the same initial weights (and order, noise in plain)
        if pipeline == "project":
            seconds, dev_seconds, dev_loss, model = self.project(model_name, round_)
        else:
            seconds, dev_seconds, dev_loss, model = self.hand_written(pipeline, model_name)
        if round_ is None:
            return seconds
        self.times[pipeline][model_name].append(seconds)
        self.dev_times[pipeline][model_name].append(dev_seconds)
        self.dev_losses[pipeline][model_name].append(dev_loss)
        self.after_epoch(pipeline, model_name, model)
        print(
            f"round {round_ + 1}/{self.bench.rounds}  {model_name:16} {pipeline:13} {seconds:8.3f} s  "
            f"(dev pass {dev_seconds:.3f} s, dev loss {dev_loss:.2f})",
            file=sys.stderr,
            flush=True,
        )
        return seconds

    def after_epoch(self, pipeline: str, model_name: str, model) -> None:
        """With --variants, untimed: the dev loss of the weights after the epoch, in fp32 with the same noise for
        every pipeline: how much the variant's training changed the result (its own dev pass computes in bf16 for
        bf16); and for plain, the same dev pass in batches of 10,000 (time only)."""
        variants = self.bench.args.variants
        cfg, x_dev = self.bench.cfgs[model_name], self.bench.x_dev
        if pipeline in VARIANTS or (pipeline == "plain" and variants):
            with torch.random.fork_rng():
                torch.manual_seed(cfg.seed)
                loss = dev_pass(model, batches(x_dev, cfg.data.eval_batch_size))[1]
                self.fp32_losses[pipeline][model_name].append(loss)
        if pipeline == "plain" and variants:
            self.eval_batch[10_000][model_name].append(dev_pass(model, batches(x_dev, 10_000))[0])

    def compile_warm_up(self) -> None:
        """With --variants, plain_compile's first epoch, which compiles, before the rounds (its seconds are
        reported apart); if torch.compile fails, the variant is left out of the rounds and the error reported."""
        if not self.bench.args.variants:
            return
        for model_name in MODELS:
            try:
                self.compile_first[model_name] = self.run("plain_compile", model_name, None)
            except Exception as error:  # no C++ compiler, an unsupported op: the variant is reported as failed
                self.compile_error = f"torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0]}"
                self.pipelines.remove("plain_compile")
                break

    def rounds(self) -> None:
        """Every model through every pipeline, the pipelines' order rotated by one each round, so that a slow start
        or a drift of the machine does not always fall on the same pipeline. No warm-up round: the first round's
        one-time costs show in the range, the median passes over them."""
        pipelines = self.pipelines
        for r in range(self.bench.rounds):
            order = pipelines[r % len(pipelines) :] + pipelines[: r % len(pipelines)]
            for model_name in MODELS:
                for pipeline in order:
                    self.run(pipeline, model_name, r)

    def entry(self, pipeline: str, model_name: str) -> dict | None:
        """The JSON of one pipeline and model: the rounds' stats, the ratio to plain, the dev loss (and for a
        variant its losses in fp32 and the first, compiling, epoch); None if it did not run."""
        if not self.times[pipeline][model_name]:
            return None
        e = stats(self.times[pipeline][model_name])
        e["ratio_to_plain"] = e["median"] / statistics.median(self.times["plain"][model_name])
        e["dev_loss"] = statistics.median(self.dev_losses[pipeline][model_name])
        if pipeline in VARIANTS:
            e["dev_loss_fp32"] = statistics.median(self.fp32_losses[pipeline][model_name])
            e["plain_dev_loss_fp32"] = statistics.median(self.fp32_losses["plain"][model_name])
            e["first_epoch_seconds"] = self.compile_first[model_name] if pipeline == "plain_compile" else None
        return e


def measure_epochs(bench: Bench, loaders: tuple) -> Epochs:
    """The rounds of every pipeline (and the compile warm-up before them, with --variants)."""
    epochs = Epochs(bench, loaders)
    epochs.compile_warm_up()
    epochs.rounds()
    return epochs


def epoch_result(epochs: Epochs) -> dict:
    """The JSON's `epoch`: {pipeline: {model: entry}} of the three pipelines."""
    return {p: {m: epochs.entry(p, m) for m in MODELS} for p in PIPELINES}


def dev_pass_result(epochs: Epochs) -> dict:
    """The dev pass alone, timed inside every epoch above: {pipeline: {model: stats}}."""
    return {p: {m: stats(epochs.dev_times[p][m]) for m in MODELS} for p in PIPELINES}


def variants_result(epochs: Epochs) -> dict:
    """The JSON's `variants`: compiled and bf16 epochs and the dev pass in big batches; null unless --variants."""
    variants = epochs.bench.args.variants
    return {
        "skipped": None if variants else "not requested: add --variants",
        "error": epochs.compile_error,
        **{v: {m: epochs.entry(v, m) for m in MODELS} for v in VARIANTS},
        "eval_batch": {
            str(size): {m: stats(epochs.eval_batch[size][m]) if variants else None for m in MODELS}
            for size in epochs.eval_batch
        },
    }
