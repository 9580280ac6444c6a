"""What the benchmark measures by: the models, the pipelines, how many rounds and images, the goal."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: train.py and conf/ are there
MODELS = {  # name -> overrides of conf/config.yaml
    "bernoulli_400_20": ["model=vae", "width=400", "depth=1", "latent_dim=20", "likelihood=bernoulli"],
    "lab": [],
}
PIPELINES = ["plain", "project", "torchvision"]
VARIANTS = ["plain_compile", "plain_bf16"]  # with --variants, in the same rotation
GOAL = {"project_over_plain_max": 1.10, "torchvision_over_project_min": 1.4}
# startups: runs of train.py and of each import; whole_*: --whole's rounds, epochs, K and N; matmul_size: the peak's
FULL = {  # None: conf/config.yaml's
    "rounds": 5,
    "iw_images": 300,
    "startups": 3,
    "whole_rounds": 3,
    "whole_epochs": None,
    "whole_iw_samples": None,
    "whole_generation_n": None,
    "whole_figures": True,
    "matmul_size": 4096,
}
QUICK = {  # at most so many images
    "rounds": 2,
    "iw_images": 8,
    "startups": 1,
    "train": 2560,
    "dev": 1000,
    "whole_rounds": 1,
    "whole_epochs": 1,
    "whole_iw_samples": 5,  # K of --whole's evaluation on both sides, and N of its generation measures
    "whole_generation_n": 200,
    "whole_figures": False,  # --quick: train.py draws no figures
    "generation_n": 500,
    "matmul_size": 512,
}
WHOLE = {"goal": 1.15}  # python train.py, start to finished run directory, at most this many times the plain script
IW_SAMPLES = 1000
SWEEP = ["lr=1e-3,3e-4", "latent_dim=2,8", "epochs=1", "eval.enabled=false", "plots.every_n_epochs=0"]
SWEEP_JOBS = 4  # the jobs SWEEP makes
STARTUP = {  # what is started in a fresh process, and timed from spawn to its end (train.py: to its first step)
    "import_torch": [sys.executable, "-c", "import torch"],
    "import_lightning": [sys.executable, "-c", "import lightning"],
    "plots_help": [sys.executable, "-m", "vae.plots", "--help"],
    "evaluate_help": [sys.executable, "-m", "vae.evaluate", "--help"],
    "compare_help": [sys.executable, "-m", "vae.compare", "--help"],
    "bad_value": [sys.executable, "train.py", "lr=-1"],
}
