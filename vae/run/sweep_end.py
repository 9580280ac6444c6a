"""The end of a sweep (`python train.py -m ...`): a Hydra callback writes the model comparison into the sweep
directory (vae/results/comparison.py)."""

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vae.core.errors import UserError
from vae.results.comparison import write_comparison

log = logging.getLogger(__name__)


class WriteComparison(Callback):
    """Hydra callback: writes the comparison into the sweep directory when a multirun ends."""

    def __init__(self, pdf: bool = False):
        self.pdf = pdf
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.sweep_dir = Path(str(config.hydra.sweep.dir))  # resolved once: ${now:...} must not move

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = self.sweep_dir or Path(str(config.hydra.sweep.dir))
        try:
            written = write_comparison(sweep_dir, pdf=self.pdf)
        except UserError as error:
            log.error(f"no comparison: {error}")
            return
        print((sweep_dir / "comparison.md").read_text(), flush=True)
        log.info(f"comparison: {', '.join(str(path) for path in written)}")
