"""Train an auto-encoder or a VAE on MNIST: the Hydra entry point (the run itself: vae/run/training.py).

    python train.py model=vae latent_dim=2
    python train.py -m lr=1e-3,1e-4
    python train.py resume=outputs/<date>/<time>

Each run writes into its Hydra run directory (under outputs/): TensorBoard events (the default logger; others:
conf/logger/), checkpoints/, history.csv (losses per epoch), figures/ and metrics.json (val at the best epoch,
test on the best checkpoint).
What may happen to that directory is decided in one place: vae/run/run_directory.py.
"""

import gc
import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vae.core.errors import Interrupted, Refused, exit_on_user_error, find_user_error
from vae.run import sweep_jobs, timing
from vae.run.command_line import prepare_command_line
from vae.run.run_directory import RunDirectory

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error(sigterm=False)  # Lightning handles SIGTERM while it fits; vae/run/training.py after that
def main(cfg: DictConfig) -> float:
    from vae.run.training import train

    run = RunDirectory(cfg.paths.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        started = None if multirun else timing.STARTED  # a sweep's job starts when the launcher starts it
        return train(cfg, run, multirun, started)["val/loss"]  # what a sweeper (Optuna) minimises
    except Exception as error:
        message = run.record_failure(error, cfg)  # not into a directory it refused: that one is as it was
        if not multirun or isinstance(find_user_error(error), Interrupted):  # a signal stops the whole sweep too
            raise
        # In a sweep a failed job is recorded and the others go on; the comparison marks it failed.
        refused = isinstance(find_user_error(error), Refused)
        log.error(f"error: {message} (job {run.path} {'refused' if refused else 'failed'}; the sweep goes on)")
        return math.inf
    finally:
        run.close()


if __name__ == "__main__":
    gc.disable()  # until train() has imported torch and Lightning (vae/run/training.py, where it says why)
    sweep_jobs.register()  # the names of a sweep's job directories (conf/config.yaml: hydra.sweep.subdir)
    sys.argv = exit_on_user_error(prepare_command_line)(sys.argv)
    main()
