"""python -m vae.report: its tables against the runs' metrics.json, its figures and captions, LaTeX escaping, the
PDF where an engine is installed, and the folder it will not overwrite; the numbers as a reader writes them and
the learning curves' warm-up and axes (vae/results/figures.py, vae/results/drawing.py)."""

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import job_dirs, make_model
from vae.core.errors import UserError
from vae.results.report import ENGINES, MARKER, compile_pdf, write_report
from vae.results.sweeps import Job, readable, shown_values
from vae.results.tables import latex, latex_escape, markdown

HOSTILE = r"50%_a&b#c$d~e^f\g{h}"  # every character LaTeX treats specially


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    """The report of a copy of the 2 x 2 sweep with a fifth job that failed (its value full of LaTeX's special
    characters), figures for runs 1 (AE, latent 3) and 2 (VAE, latent 2), without compiling."""
    sweep_dir, _ = sweep
    copy = tmp_path_factory.mktemp("report") / "sweep"
    shutil.copytree(sweep_dir, copy)
    failed = copy / "4_failed"
    shutil.copytree(job_dirs(copy)[0] / ".hydra", failed / ".hydra")
    overrides = OmegaConf.load(failed / ".hydra" / "overrides.yaml")
    overrides = [f"latent_dim={HOSTILE}" if item.startswith("latent_dim=") else item for item in overrides]
    OmegaConf.save(OmegaConf.create(overrides), failed / ".hydra" / "overrides.yaml")
    hydra = OmegaConf.load(failed / ".hydra" / "hydra.yaml")
    hydra.hydra.job.num = 4
    OmegaConf.save(hydra, failed / ".hydra" / "hydra.yaml")
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": "out of memory"}))
    written = write_report([copy], runs=[1, 2], pdf=False)
    return copy, copy / "report", written


def rows(tex: str) -> dict[str, list[str]]:
    """The comparison table's body in results.tex: run number -> its cells."""
    body = tex.split(r"\label{tab:settings}")[1].split(r"\midrule")[1].split(r"\bottomrule")[0]
    cells = [line.removesuffix(r"\\").split(" & ") for line in body.strip().splitlines()]
    return {row[0].strip(): [cell.strip() for cell in row] for row in cells}


def tex_number(value: float) -> str:
    """A loss as comparison.md prints it (two decimals), with LaTeX's minus sign."""
    text = f"{value:.2f}"
    return "$-$" + text[1:] if text.startswith("-") else text


@pytest.mark.slow
def test_report_tables_equal_the_runs_metrics(report):
    sweep_dir, out, _ = report
    tex = (out / "results.tex").read_text()
    table_rows = rows(tex)
    assert set(table_rows) == {"0", "1", "2", "3", "4"}
    for job in job_dirs(sweep_dir)[:4]:
        metrics = json.loads((job / "metrics.json").read_text())
        cells = table_rows[job.name.split("_")[0]]
        # run, model, latent_dim, parameters, epochs, val loss/rec/KL, test loss/rec/KL, log p(x), generation, fit (s)
        assert cells[3] == f"{metrics['parameters']:,}".replace(",", "{,}") and cells[4] == str(metrics["epochs"])
        assert cells[5:8] == [tex_number(metrics[f"val/{term}"]) if f"val/{term}" in metrics else "--"
                              for term in ("loss", "rec", "kl")]  # fmt: skip
        assert cells[8:11] == [tex_number(metrics[f"test/{term}"]) if f"test/{term}" in metrics else "--"
                               for term in ("loss", "rec", "kl")]  # fmt: skip
        ll = metrics.get("test/log_likelihood")  # an auto-encoder has none
        assert cells[11] == (tex_number(ll) if ll is not None else "--") and (ll is None) == ("model=ae" in job.name)
        generation = [("gen/fid_means", 1), ("gen/fid_samples", 1), ("gen/precision_samples", 2)]
        generation += [("gen/recall_samples", 2), ("gen/class_entropy_bits", 2)]
        assert cells[12:17] == [f"{metrics[key]:.{digits}f}" for key, digits in generation]  # the pictures' measures
        assert cells[17] == f"{metrics['fit_seconds']:.0f}"
    failed = table_rows["4"]
    assert failed[-1] == r"\multicolumn{15}{l}{\emph{failed}}"
    assert latex_escape(HOSTILE) in failed  # the swept value, escaped
    assert latex_escape(HOSTILE) == r"50\%\_a\&b\#c\$d\textasciitilde{}e\^{}f\textbackslash{}g\{h\}"
    # the settings every run shares, once; what differs (model, latent_dim) is a column instead
    settings = tex.split(r"\label{tab:settings}")[0]
    assert r"\texttt{width} & 32 \\" in settings and r"\texttt{epochs} & 2 \\" in settings
    assert r"\texttt{likelihood.sigma} & 0.2 \\" in settings and "latent" not in settings


@pytest.mark.slow
def test_report_figures_and_captions(report):
    _, out, written = report
    figures = sorted(path.name for path in (out / "figures").iterdir())
    per_run = {"samples", "reconstructions", "latent", "interpolation", "learning_curves", "digits"}
    assert figures == sorted(
        [f"run1-{name}.pdf" for name in per_run]  # latent 3: no manifold
        + [f"run2-{name}.pdf" for name in per_run | {"manifold"}]
        + [f"val_{metric}_curves.pdf" for metric in ("loss", "rec", "kl")]
    )
    assert all((out / "figures" / name).read_bytes().startswith(b"%PDF") for name in figures)
    assert {path.name for path in written} >= {"results.tex", "report.tex", *figures}
    tex = (out / "results.tex").read_text()
    included = re.findall(r"\\includegraphics\[[^]]*\]\{\\vaereportdir/figures/([^}]*)\}", tex)
    assert sorted(included) == figures  # every figure is in results.tex, and only those
    captions = re.findall(r"\\caption\{(.*)\}", tex)
    [manifold] = [c for c in captions if "grid of $z$" in c]
    assert manifold.startswith(
        "Run 2 (model=vae, latent\\_dim=2): VAE, latent\\_dim = 2, Gaussian p(x \\textbar{} z), "
    )
    assert r"\ensuremath{\sigma} = 0.2, 2 epochs (best: 2)." in manifold
    [ae_latent] = [c for c in captions if c.startswith("Run 1") and "principal components" in c]
    assert "codes z of 40 dev images" in ae_latent and "3-dimensional" in ae_latent
    assert "% run 0: no figures" not in tex and "run0-" not in tex  # not chosen with --runs
    assert (out / "report.tex").read_text().count(r"\input{results.tex}") == 1 and (out / MARKER).is_file()


@pytest.mark.slow
def test_report_compiles_to_pdf(report, tmp_path):
    if not any(shutil.which(engine) for engine in ENGINES):
        pytest.skip(f"no LaTeX engine ({', '.join(ENGINES)}) on the PATH; .ci/run installs texlive-latex-base")
    _, out, _ = report
    copy = tmp_path / "report"
    shutil.copytree(out, copy)
    pdf = compile_pdf(copy)
    assert pdf == copy / "report.pdf" and pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    assert not (copy / "report.log").exists() and not list(copy.glob("*.aux"))  # the build's files stay out


@pytest.mark.slow
def test_report_refuses_a_folder_it_did_not_write(report, tmp_path):
    sweep_dir, _, _ = report
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "report.tex").write_text("my own report")
    with pytest.raises(UserError, match="holds files that vae.report did not write"):
        write_report([sweep_dir], out=mine, runs=[], pdf=False)
    assert [path.name for path in mine.iterdir()] == ["report.tex"] and (
        mine / "report.tex"
    ).read_text() == "my own report"
    with pytest.raises(UserError, match=r"--runs 9: no such run; the runs are 0, 1, 2, 3, 4"):
        write_report([sweep_dir], out=tmp_path / "new", runs=[9], pdf=False)
    with pytest.raises(UserError, match="is not a run directory of train.py"):
        write_report([job_dirs(sweep_dir)[0], tmp_path], out=tmp_path / "new", pdf=False)


# --- without a sweep -------------------------------------------------------------------------------------


def job(num: int, **overrides) -> Job:
    metrics = {"status": "completed", "val/loss": 100.0 - num, "epochs": 1, "parameters": 10, "fit_seconds": 1.0}
    return Job(dir=Path(f"/runs/{num}"), num=num, overrides=overrides, status="completed", metrics=metrics)


def test_values_print_as_a_reader_writes_them():
    assert [readable(text) for text in ("0.0038322168504927897", "1e-05", "250.0", "1e4", "32", "vae", "-0.5")] == [
        "0.00383", "1e-5", "250", "1e4", "32", "vae", "-0.5",
    ]  # fmt: skip
    # three significant digits, or as many as keep two trials apart
    trials = [job(0, lr="0.0038322168504927897"), job(1, lr="0.0038349"), job(2, lr="0.01")]
    assert shown_values(trials, "lr") == {"0.0038322168504927897": "0.003832", "0.0038349": "0.003835", "0.01": "0.01"}
    optuna = [job(0, lr="0.0038322168504927897", width="64"), job(1, lr="0.000123456", width="128")]
    md = markdown(optuna, Path("sweep"))
    assert "| 0 | 0.00383 | 64 |" in md and "| 1 | 0.000123 | 128 |" in md and "0.0038322" not in md
    assert r"0 & 0.00383 & 64 &" in latex(optuna, Path("sweep"))
    assert r"$10^{-5}$" in latex([job(0, lr="1e-05"), job(1, lr="0.001")], Path("sweep"))


def test_learning_curves_mark_the_warm_up_and_show_the_settled_part():
    from vae.results.figures import learning_curves, warmup_epochs

    history = []
    for epoch in range(1, 11):
        rec, kl = 95 + 5 / epoch, 20.0
        beta = {1: 1 / 6, 2: 0.5, 3: 5 / 6}.get(epoch)
        row = {"epoch": epoch, "train/rec": rec, "train/kl": kl, "val/rec": rec, "val/kl": kl, "val/loss": rec + kl}
        row["train/loss"] = rec + (beta if beta is not None else 1.0) * kl
        history.append(row | ({"train/beta": beta} if beta is not None else {}))
    history[0]["train/rec"] = history[0]["val/rec"] = 160.0  # the first epoch's spike
    vae = make_model("vae", kl_warmup_epochs=3)
    assert warmup_epochs(history, vae) == [1, 2, 3] and warmup_epochs(history[3:], vae) == []
    assert warmup_epochs(history, make_model("vae", beta=0.6)) == [1, 2]  # below the model's own beta
    fig = learning_curves(history, vae)
    rec_ax, kl_ax, loss_ax = fig.axes
    low, high = rec_ax.get_ylim()
    assert 95 - 1 < low < 95.5 and 97.5 < high < 100  # epoch 2's 97.5 to epoch 10's 95.5, not the spike
    assert [text.get_text() for text in rec_ax.texts] == ["epoch 1: 160, 160 ↑"]
    legend = [text.get_text() for text in loss_ax.get_legend().get_texts()]
    assert legend[0] == "KL warm-up: mean β_t 0.17 to 0.83 (β = 1 after)" and "β_t·KL in warm-up" in legend[1]
    shaded = [patch for patch in loss_ax.patches if patch.get_label().startswith("KL warm-up")]
    assert len(shaded) == 1 and shaded[0].get_x() == 0.5 and math.isclose(shaded[0].get_width(), 3)
    plain = learning_curves(history[3:], make_model("vae"))  # no warm-up, no spike: nothing shaded or written
    assert not any(ax.patches or ax.texts for ax in plain.axes)


@pytest.mark.slow
def test_report_without_a_latex_engine_says_how_to_get_one(report, tmp_path, monkeypatch, caplog, capsys):
    from vae.tools.report import main

    sweep_dir, _, _ = report
    monkeypatch.setattr("vae.results.report.shutil.which", lambda name: None)
    written = main([str(sweep_dir), "--out", str(tmp_path / "report"), "--runs"])  # no run's figures: the tables
    assert not (tmp_path / "report" / "report.pdf").exists() and (tmp_path / "report" / "report.tex") in written
    assert "no LaTeX engine (pdflatex, lualatex, xelatex) on the PATH, so no report.pdf" in caplog.text
    assert "apt-get install texlive-latex-base texlive-latex-recommended" in caplog.text
    assert f"report: {tmp_path / 'report'} (results.tex, report.tex, 3 figures)" in capsys.readouterr().out


def test_report_of_a_run_whose_data_is_gone_copies_its_figures(vae_run, tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    written = write_report([vae_run], out=tmp_path / "report", pdf=False, data_root=empty)
    copied = sorted(path.name for path in written if path.parent.name == "figures")
    saved = sorted(f"run0-{path.name}" for path in (vae_run / "figures").glob("*.png"))
    assert copied == sorted(saved + [f"val_{metric}_curves.pdf" for metric in ("loss", "rec", "kl")]) and saved
    for name in saved:  # the run's own PNGs, byte for byte
        assert (tmp_path / "report" / "figures" / name).read_bytes() == (vae_run / "figures" / name[5:]).read_bytes()
    assert "its figures are copied from" in caplog.text and "MNIST not found" in caplog.text
    tex = (tmp_path / "report" / "results.tex").read_text()
    assert tex.count(r"\includegraphics") == len(saved) + 3 and "Run 0: VAE" in tex  # one run: no swept values
