"""The epoch's metrics of a LightningModule: per-image terms summed over the epoch as tensors (no device sync, no
logging call per step) and logged once, at the epoch's end, as means over its images; with DDP, over every
process's images."""

import lightning as L
import torch


class EpochMeans(L.LightningModule):
    """Logs `<stage>/<name>` = the epoch's mean over images of each term that `logged_terms(x)` returns per image."""

    def __init__(self):
        super().__init__()
        self._totals: dict[str, tuple[list[str], torch.Tensor, int]] = {}  # stage: (names, sums, images) this epoch

    def logged_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"rec": (B,), ..., "loss": (B,)}: the per-image values whose epoch means are logged."""
        raise NotImplementedError

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        x, _ = batch
        terms = self.logged_terms(x)  # per image sums (see vae/maths/elbo.py): {"rec": (B,), ..., "loss": (B,)}
        sums = torch.stack([value.detach().sum() for value in terms.values()])
        names, total, count = self._totals.get(stage) or (list(terms), 0, 0)
        self._totals[stage] = (names, total + sums, count + len(x))
        if stage == "train" and (self.trainer.is_last_batch or batch_idx + 1 == self.trainer.num_training_batches):
            # logged from the epoch's last step, so the callbacks' on_train_epoch_end see it
            self._log_epoch("train")
        return terms["loss"].mean()  # the loss of the batch: the mean over its images (sum, then mean)

    def _log_epoch(self, stage: str) -> None:
        if stage not in self._totals:
            return
        names, sums, count = self._totals.pop(stage)
        count = torch.tensor(float(count), device=sums.device)
        sums, count = (self.trainer.strategy.reduce(t, reduce_op="sum") for t in (sums, count))
        self.log_dict(
            {f"{stage}/{name}": value for name, value in zip(names, sums / count)},
            on_step=False,
            on_epoch=True,
            prog_bar=stage != "test",
        )

    def training_step(self, batch, batch_idx):
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "test")

    def on_train_epoch_start(self):  # an interrupted epoch's sums must not carry over
        self._totals.pop("train", None)

    def on_validation_epoch_start(self):
        self._totals.pop("val", None)

    def on_test_epoch_start(self):
        self._totals.pop("test", None)

    def on_validation_epoch_end(self):
        self._log_epoch("val")

    def on_test_epoch_end(self):
        self._log_epoch("test")
