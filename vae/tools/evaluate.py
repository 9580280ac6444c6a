"""Evaluate a trained run again (the measurement itself: vae/maths/evaluation.py), with more importance samples
or on the dev split, from its directory or a checkpoint; the numbers are merged into its metrics.json.

    python -m vae.evaluate outputs/2026-11-29/12-00-00                       # the run's eval settings
    python -m vae.evaluate outputs/2026-11-29/12-00-00 --iw-samples 5000     # reference results
    python -m vae.evaluate outputs/2026-11-29/12-00-00/checkpoints/last.ckpt --split dev
    python -m vae.evaluate outputs/2026-11-29/12-00-00 --generation          # how good its pictures are instead
"""

import argparse
import logging

from omegaconf import OmegaConf

from vae.core.errors import exit_on_user_error
from vae.files.schema import CONF_DIR, EVAL_SETTINGS, validate
from vae.tools.cli import add_device, device, given, parser


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = parser(
        "evaluate",
        "Measure a run's checkpoint in nats (importance-weighted log-likelihood, ELBO, "
        "active units, MSE) and merge the numbers into its metrics.json; options override "
        "the run's `eval` settings.",
    )
    p.add_argument("run", help="a run directory (its best.ckpt, else last.ckpt) or a .ckpt file inside one")
    p.add_argument(
        "--iw-samples", type=int, metavar="K", help="importance samples per image (5000 for reference results)"
    )
    p.add_argument("--split", help="test or dev: the images it evaluates")
    p.add_argument("--chunk-size", type=int, metavar="N", help="(image, sample) pairs per decoder pass: bounds memory")
    p.add_argument(
        "--generation",
        action="store_true",
        help="measure the generated pictures instead (FID, precision/recall, digits: eval.generation.*)",
    )
    p.add_argument("--n", type=int, metavar="N", help="with --generation: images drawn (default: eval.generation.n)")
    add_device(p)
    args = p.parse_args(argv)
    # the rules train.py checks eval.* with (vae/files/schema.py), before loading anything
    validate({"eval": {**given(args, EVAL_SETTINGS), **({"generation": {"n": args.n}} if args.n is not None else {})}})
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    args = arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the evaluation's progress lines
    from vae.files.metrics import update_metrics
    from vae.files.saved import load_run
    from vae.files.writing import check_writable
    from vae.run.run_directory import RunDirectory

    run = load_run(args.run, device(args.device))
    check_writable(  # before the evaluation, which can take long
        run.dir, "metrics.json into", "copy the run (cp -r) to a folder you can write and evaluate the copy"
    )
    with RunDirectory(run.dir):  # not while train.py trains into it, nor beside another evaluation
        datamodule = run.datamodule()
        metrics = generation(run, datamodule, args) if args.generation else likelihood(run, datamodule, args)
        print(f"-> {update_metrics(run.dir, metrics)}")
    return metrics


def likelihood(run, datamodule, args) -> dict:
    from vae.maths.evaluation import evaluate_split, summary

    settings = {**{key: run.cfg.eval[key] for key in EVAL_SETTINGS}, **given(args, EVAL_SETTINGS)}
    metrics = evaluate_split(run.model, datamodule, seed=run.cfg.seed, **settings)
    print(summary(metrics, settings["split"], len(datamodule.splits[settings["split"]][0])))
    return metrics


def generation(run, datamodule, args) -> dict:
    from vae.maths.generation import summary_lines
    from vae.run.generation import measure_generation

    default = OmegaConf.load(CONF_DIR / "config.yaml").eval.generation.n  # for a run written before the key
    n = args.n or OmegaConf.select(run.cfg, "eval.generation.n", default=None) or default
    metrics = measure_generation(run.model, datamodule, n, run.cfg.seed)
    print("\n".join(summary_lines(metrics)))
    return metrics


if __name__ == "__main__":
    main()
