"""notebooks/explore_run.ipynb and the function it starts from, vae.load (vae/files/saved.py): load gives a run's
config, model and data; the notebook runs from top to bottom on a finished run, in a kernel of this interpreter
started in notebooks/ as Jupyter starts it; and the repository keeps the notebook without outputs."""

import ast
import json
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell
from omegaconf import OmegaConf

import vae
from helpers import ROOT, TINY_DEV
from vae.core.errors import UserError

NOTEBOOK = ROOT / "notebooks" / "explore_run.ipynb"
# What the failure message of an unstripped notebook tells to run (docs/notebook.md gives it too).
STRIP = (
    "uv run python -c \"import nbformat; p = 'notebooks/explore_run.ipynb'; nb = nbformat.read(p, 4); "
    "[c.update(outputs=[], execution_count=None) for c in nb.cells if c.cell_type == 'code']; nbformat.write(nb, p)\""
)


# --- vae.load -------------------------------------------------------------------------------------------------------


def test_load_gives_the_runs_config_its_best_model_and_its_data(vae_run):
    cfg, model, datamodule = vae.load(vae_run)  # unpacks as the notebook does

    saved = OmegaConf.load(vae_run / ".hydra" / "config.yaml")
    assert OmegaConf.to_container(cfg) == OmegaConf.to_container(saved)
    assert cfg.paths.output_dir == str(vae_run)

    best = torch.load(vae_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert best.keys() == model.state_dict().keys()
    assert all(torch.equal(best[name], value) for name, value in model.state_dict().items())
    assert not model.training

    x, y = datamodule.splits["dev"]
    assert x.shape == (TINY_DEV, 1, 28, 28) and len(y) == TINY_DEV
    with torch.no_grad():
        mu = model.encode(x)
    assert mu.shape == (TINY_DEV, cfg.latent_dim) and model.latent_dim == cfg.latent_dim == 2
    assert torch.isfinite(mu).all()


def test_load_from_a_checkpoint_file_finds_its_run_directory(vae_run):
    cfg, model, _ = vae.load(vae_run / "checkpoints" / "last.ckpt")
    assert cfg.paths.output_dir == str(vae_run)
    last = torch.load(vae_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(last[name], value) for name, value in model.state_dict().items())


def test_load_reads_the_data_from_data_root_when_it_moved(vae_run, tiny_mnist, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(tiny_mnist, moved)
    _, _, datamodule = vae.load(vae_run, data_root=moved)
    assert datamodule.root == moved and len(datamodule.splits["dev"][0]) == TINY_DEV

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="MNIST not found") as refused:
        vae.load(vae_run, data_root=empty)  # the run's data.download is false: nothing is fetched
    assert str(empty) in str(refused.value)


def test_load_refuses_what_is_not_a_run_in_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist: give a run directory") as missing:
        vae.load(tmp_path / "no-such-run")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(UserError, match="is not a run of train.py") as not_a_run:
        vae.load(tmp_path / "not-a-run")
    for error in (missing.value, not_a_run.value):
        assert "\n" not in str(error)


def test_import_vae_imports_neither_torch_nor_omegaconf():
    """vae.load is imported when it is first used: `import vae` (every tool's first line) stays free."""
    check = (
        "import sys, vae; heavy = {'torch', 'lightning', 'omegaconf'} & set(sys.modules); assert not heavy, heavy; "
        "from vae import load; from vae.files.saved import load as same; assert load is same"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- the notebook ---------------------------------------------------------------------------------------------------


def test_the_notebook_is_kept_without_outputs():
    """A notebook saved after running it holds its outputs (images, paths of the author's machine) and execution
    counts: the repository keeps it clean."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        cell.get("id", index)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{NOTEBOOK.relative_to(ROOT)} is saved with outputs in cells {dirty}: clear them "
        f"(Edit > Clear Outputs of All Cells, then save) or run {STRIP}"
    )


class ThisInterpreterKernel(AsyncKernelManager):
    """A kernel of ipykernel's own "python3" kernelspec, whose command is this interpreter (sys.executable), whatever
    other kernelspecs JUPYTER_PATH or ~/.local/share/jupyter hold: the kernel imports this checkout's vae."""

    @property
    def kernel_spec(self) -> KernelSpec:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


def stdout(cell) -> str:
    return "".join(output.text for output in cell.outputs if output.get("name") == "stdout")


def images(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.outputs)


def test_the_notebook_runs_from_top_to_bottom_on_a_finished_run(vae_run, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUN", str(vae_run))  # the parameters cell reads it; the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(new_code_cell("import sys\nprint(sys.executable)", id="interpreter"))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=ThisInterpreterKernel,  # made and shut down by the client
        timeout=120,  # seconds per cell
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},  # started in notebooks/, as Jupyter starts it
    )
    client.execute()  # a cell that raises fails the test here, with the cell and its traceback
    cells = {cell.id: cell for cell in notebook.cells if cell.cell_type == "code"}

    assert stdout(cells["interpreter"]).strip() == sys.executable
    assert stdout(cells["setup"]).strip() == f"working directory: {ROOT}"  # went up from notebooks/

    metrics = json.loads((vae_run / "metrics.json").read_text())
    printed = dict(line.split(maxsplit=1) for line in stdout(cells["load"]).splitlines() if line.startswith("val/"))
    assert float(printed["val/loss"]) == metrics["val/loss"]
    assert "VAE, latent_dim = 2" in stdout(cells["load"])

    assert images(cells["curves"]) == 1
    saved_figures = {png.stem for png in (vae_run / "figures").glob("*.png")} - {"learning_curves"}
    assert len(saved_figures) >= 4 and images(cells["figures"]) == len(saved_figures)
    assert images(cells["latent"]) == 1
    assert f"{TINY_DEV} dev images -> mu of shape ({TINY_DEV}, 2)" in stdout(cells["latent"])

    # latent_dim 2: the points typed in the cell are z itself, decoded into one figure
    assert images(cells["decode"]) == 1
    z_typed = ast.literal_eval(cells["decode"].source.split("=", 1)[1].split("#")[0].strip())
    assert ast.literal_eval(stdout(cells["decode"]).removeprefix("z =").strip()) == z_typed
    assert images(cells["walk"]) == 1
    start, end, steps = ast.literal_eval(cells["walk"].source.split("=", 1)[1].split("#")[0].strip())
    walked = ast.literal_eval(stdout(cells["walk"]).removeprefix("z =").strip())
    assert len(walked) == steps and walked[0] == start and walked[-1] == end
