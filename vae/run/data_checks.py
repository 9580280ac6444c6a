"""The options whose validity depends on the data, checked once the data is read and before the run directory is
taken: one line naming the key, the data's size and the fix (a value's own rule is checked earlier, in
vae/files/schema.py)."""

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import UserError


def limits(cfg: DictConfig, n_train: int, n_dev: int) -> list[tuple[str, int, int, str, str]]:
    """(key, value, the most it may be, what bounds it, how to fix it) for every option the data bounds."""
    found = [
        ("batch_size", cfg.batch_size, n_train, f"the training split's {n_train} images", "lower batch_size"),
        (
            "plots.n_reconstructions",
            cfg.plots.n_reconstructions,
            n_dev,
            f"the dev split's {n_dev} images",
            "lower plots.n_reconstructions",
        ),
        (
            "plots.n_interpolations",
            cfg.plots.n_interpolations,
            n_dev // 2,
            f"half the dev split's {n_dev} images (each line joins two)",
            "lower plots.n_interpolations",
        ),
    ]
    prior = OmegaConf.select(cfg, "model.prior", default=None)
    if prior is not None and prior.get("init") == "data" and "components" in prior:
        found.append(
            (
                "prior.components",
                prior.components,
                n_train,
                f"the training split's {n_train} images (prior.init=data starts one pseudo-input from each)",
                "lower prior.components, or start them from noise with prior.init=random",
            )
        )
    return found


def check_against_data(cfg: DictConfig, datamodule) -> None:
    """Raises UserError for the first option that the data cannot satisfy."""
    n_train, n_dev = len(datamodule.splits["train"][0]), len(datamodule.splits["dev"][0])
    for key, value, most, bound, fix in limits(cfg, n_train, n_dev):
        if value > most:
            raise UserError(f"{key}={value} is more than {bound} allow: {fix} (at most {most}), then run again")
