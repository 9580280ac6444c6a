"""The package's shape (docs/architecture.md): its layers kept by import-linter, one owner of a run directory's
file names, units with one job each, and nothing that changes the process's environment at import."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGES = [ROOT / "vae", ROOT / "benchmarks"]
LAYOUT = ROOT / "vae" / "files" / "layout.py"
# What a run directory holds, as train.py names it: only vae/files/layout.py may spell these as path components.
RUN_FILES = {
    ".hydra",
    "hydra.yaml",
    "overrides.yaml",
    "checkpoints",
    "best.ckpt",
    "last.ckpt",
    "metrics.json",
    "history.csv",
    "traceback.txt",
}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 80


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES if package.is_dir() for path in package.rglob("*.py"))


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def path_components(text: str) -> set[str]:
    return {part for part in text.replace("\\", "/").split("/") if part}


def test_the_layers_contract_is_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_only_the_layout_spells_a_run_directorys_file_names():
    spelled = []
    for path in modules():
        if path == LAYOUT:
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):  # an f-string's words are a message, not a path
                skip.update(id(value) for value in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if path_components(node.value) & RUN_FILES and len(node.value) < 40:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not spelled, "ask vae.files.layout.RunFiles instead:\n" + "\n".join(spelled)


def test_the_check_finds_a_spelled_name():
    tree = ast.parse('run_dir / "metrics.json"\nf"numbers in {x}"\n')
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert any(path_components(value) & RUN_FILES for value in constants)


def test_units_have_one_job_each():
    too_long = []
    for path in modules():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name}() {lines} lines")
    assert not too_long, "\n".join(too_long)


def test_importing_the_package_changes_nothing_in_the_environment():
    """Every module imported after Lightning leaves os.environ as Lightning's import left it."""
    names = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in modules()
        if path.parts[-2] != "benchmarks" or path.name != "__main__.py"
    ]
    code = (
        "import json, os, sys, importlib, lightning\n"
        "before = dict(os.environ)\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "after = dict(os.environ)\n"
        "print(json.dumps({k: [before.get(k), after.get(k)] for k in set(before) | set(after)"
        " if before.get(k) != after.get(k)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


@pytest.mark.parametrize("old,new", [("vae.models.VAE", "vae.maths.models.VAE"), ("vae.data.X", "vae.data.mnist.X")])
def test_targets_written_before_the_layers_are_found(old, new):
    from vae.core.targets import current

    assert current(old) == new and current(new) == new
