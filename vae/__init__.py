"""vae-lab: variational and plain auto-encoders on MNIST with PyTorch Lightning and Hydra.

The package in layers, each importing only those below it (kept by the import-linter contract in pyproject.toml;
the map: docs/architecture.md):

    tools/     the command-line tools: python -m vae.plots | vae.evaluate | vae.compare | vae.report (argparse only)
    run/       a training run: build, fit, test, evaluate; the run directory's life (lock, resume), checkpoints,
               callbacks, loggers, train.py's command line
    results/   what reads and draws: a run's figures, a sweep's comparison, tables, the LaTeX report
    files/     a run directory's files: their layout, metrics.json, history.csv, checkpoints, saved runs; the config's
               keys (the schema)
    maths/     the models in torch: the ELBO and the IW bound, likelihoods, priors, networks, the LightningModules,
               the importance-weighted evaluation
    data/      MNIST as tensors in memory
    core/      what every layer may use: the project's errors, what a config may build
"""

__all__ = ["load"]


def __getattr__(name: str):
    """`vae.load` (vae/files/saved.py: a finished run as cfg, model, datamodule), imported on first use: `import vae`
    itself imports nothing, so the tools start as fast as before."""
    if name == "load":
        from vae.files.saved import load

        return load
    raise AttributeError(f"module 'vae' has no attribute {name!r}")
