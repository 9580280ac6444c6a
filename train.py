"""Train an auto-encoder or a VAE on MNIST: the Hydra entry point (the run itself: vae/training.py).

    python train.py model=vae latent_dim=2
    python train.py -m lr=1e-3,1e-4
    python train.py resume=outputs/<date>/<time>

Each run writes into its Hydra run directory (under outputs/): TensorBoard events, checkpoints/,
history.csv (losses per epoch), figures/ and metrics.json (val at the best epoch, test on the best checkpoint).
"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vae.command_line import prepare_command_line
from vae.errors import Interrupted, exit_on_user_error
from vae.runs import record_failure

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    from vae.training import train

    run_dir = Path(cfg.paths.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return train(cfg, multirun)["val/loss"]  # what a sweeper (Optuna) minimises
    except Exception as error:
        message = record_failure(run_dir, error)
        if not multirun or isinstance(error, Interrupted):  # a signal stops the whole sweep too
            raise
        # In a sweep a failed job is recorded and the others go on; the comparison marks it failed.
        log.error(f"error: {message} (job {run_dir} failed; the sweep goes on)")
        return math.inf


if __name__ == "__main__":
    sys.argv = exit_on_user_error(prepare_command_line)(sys.argv)
    main()
