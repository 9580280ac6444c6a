"""vae-lab: variational and plain auto-encoders on MNIST with PyTorch Lightning and Hydra.

The maths:    elbo.py (the ELBO, the reparameterisation, the KL), likelihoods.py (p(x | z)), priors.py (p(z)),
              networks.py (encoders and decoders), models.py (the AE and the VAE as LightningModules),
              evaluation.py (the importance-weighted log-likelihood), data.py (MNIST as tensors).
A run:        training.py (build, fit, test, metrics), command_line.py (train.py's resume=), runs.py (a run
              directory), history.py (history.csv), callbacks.py, loggers.py (conf/logger/), checkpoints.py,
              config.py (the rules of the config's values), targets.py (what a config may build), errors.py.
Figures:      figures.py (a run's), sweeps.py + tables.py + sweep_figures.py (a sweep's comparison), drawing.py,
              report.py (the lab report's results in LaTeX).
The tools:    python -m vae.plots | vae.evaluate | vae.compare | vae.report | vae.bench  (cli.py: their style).
"""

__all__ = ["load"]


def __getattr__(name: str):
    """`vae.load` (vae/runs.py: a finished run as cfg, model, datamodule), imported on first use: `import vae`
    itself imports nothing, so the tools start as fast as before."""
    if name == "load":
        from vae.runs import load

        return load
    raise AttributeError(f"module 'vae' has no attribute {name!r}")
