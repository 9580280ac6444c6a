"""The benchmark's report as plain text, from its JSON: the epochs, the goal, the variants, the steps, the
evaluation, memory, start-up and the sweep."""

from benchmarks.settings import GOAL, MODELS, VARIANTS


def epoch_lines(r: dict) -> list[str]:
    """The header (data, machine) and the seconds per epoch of every model and pipeline, variants included."""
    d, m, s = r["data"], r["machine"], r["settings"]
    lines = [
        f"vae-lab benchmark{'  (QUICK: tiny data and rounds, the numbers mean nothing)' if r['quick'] else ''}",
        f"data: {d['kind']} from {d['root']} ({d['note']})",
        f"machine: {m['cpu']}, {m['cores']} cores; torch {m['torch']} with {m['torch_threads']} threads, "
        f"lightning {m['lightning']}, torchvision {m['torchvision']}, python {m['python']}",
        "",
        f"seconds per epoch: {d['train_images']:,} train images (batch {s['batch_size']}) + a dev pass over "
        f"{d['dev_images']:,}; median [min, max] of {s['rounds']} round(s)",
        f"{'model':18} {'pipeline':14} {'median':>8}  {'range':17} {'x plain':>7}  {'dev loss':>9}",
    ]
    for model in MODELS:
        for pipeline, entries in {**r["epoch"], **{v: r["variants"][v] for v in VARIANTS}}.items():
            e = entries[model]
            if e:
                lines.append(
                    f"{model:18} {pipeline:14} {e['median']:8.3f}  [{e['min']:6.3f}, {e['max']:6.3f}]  "
                    f"{e['ratio_to_plain']:7.2f}  {e['dev_loss']:9.2f}"
                )
    return lines


def goal_line(g: dict) -> str:
    return (
        f"goal (project <= {GOAL['project_over_plain_max']} x plain, torchvision >= "
        f"{GOAL['torchvision_over_project_min']} x project): {'holds' if g['holds'] else 'does NOT hold'}  ("
        + "; ".join(
            f"{k}: project/plain {v['project_over_plain']:.2f}, torchvision/project {v['torchvision_over_project']:.2f}"
            for k, v in g["models"].items()
        )
        + ")"
    )


def variant_lines(variants: dict) -> list[str]:
    """The compiled epoch's first (compiling) epoch, and each variant's dev losses against plain's."""
    lines = []
    for name, e in variants.items():
        if name in VARIANTS:
            for model, v in e.items():
                if v and v.get("first_epoch_seconds"):
                    lines.append(
                        f"  {name} {model}: first epoch, compilation included, {v['first_epoch_seconds']:.2f} s"
                    )
                if v:
                    lines.append(
                        f"  {name} {model}: dev loss {v['dev_loss']:.3f} in its own dev pass; its weights "
                        f"in fp32 with plain's noise {v['dev_loss_fp32']:.3f}, plain's "
                        f"{v['plain_dev_loss_fp32']:.3f} "
                        f"(difference {v['dev_loss_fp32'] - v['plain_dev_loss_fp32']:+.3f})"
                    )
    if variants["skipped"]:
        lines.append(f"variants: skipped ({variants['skipped']})")
    return lines


def step_lines(steps: dict) -> list[str]:
    lines = ["", "training steps alone, each interleaved with a plain step (PairedSteps): ms per step, x plain"]
    for model, e in steps["project"].items():
        b = steps["lightning"][model]
        lines.append(
            f"  {model:18} plain {e['plain_ms']:6.2f}  project {e['ms']:6.2f} ({e['ratio']:.3f} x)  "
            f"Lightning's Trainer alone {b['ms']:6.2f} ({b['ratio']:.3f} x, plain {b['plain_ms']:.2f})"
        )
    return lines


def eval_lines(r: dict) -> list[str]:
    """The dev pass of every pipeline (and in big batches), and the IW evaluation's throughput."""
    lines = ["", "evaluation: seconds of one dev pass (inside the epochs above), median"]
    for pipeline, entries in r["eval"]["dev_pass_seconds"].items():
        lines.append(f"  {pipeline:14} " + "  ".join(f"{k} {v['median']:.3f}" for k, v in entries.items() if v))
    for size, entries in r["variants"]["eval_batch"].items():
        if any(entries.values()):
            lines.append(
                f"  plain, eval batch {size}: " + "  ".join(f"{k} {v['median']:.3f}" for k, v in entries.items())
            )
    return lines + iw_lines(r["eval"]["iw"])


def iw_lines(iw: dict) -> list[str]:
    """The IW evaluation's throughput per model, and its decoder's share of the CPU's matrix-product peak."""
    lines = []
    for model, e in iw.items():
        lines.append(
            f"  IW log-likelihood (vae.maths.evaluation.evaluate, K = {e['iw_samples']}), {model}: "
            f"{e['images_per_second']:.1f} images/s ({e['images']} images in {e['seconds']:.2f} s)"
            + (
                f"; decoder {e['decoder_gflops_per_second']:.0f} GFLOP/s, {e['fraction_of_peak']:.0%} of a 4096 x 4096 "
                f"matrix product's {e['matmul_peak_gflops_per_second']:.0f}"
                if e.get("fraction_of_peak") is not None
                else ""
            )
        )
    return lines


def memory_line(memory: dict) -> str:
    if memory["peak_rss_mib"] is None:
        return f"peak resident memory of this process: skipped ({memory['skipped']})"
    return f"peak resident memory of this process: {memory['peak_rss_mib']:.0f} MiB"


def startup_lines(st: dict) -> list[str]:
    names = {
        "import_torch": "python -c 'import torch'",
        "import_lightning": "python -c 'import lightning'",
        "train_first_step": "python train.py, to its first training step",
        "plots_help": "python -m vae.plots --help",
        "evaluate_help": "python -m vae.evaluate --help",
        "compare_help": "python -m vae.compare --help",
        "bad_value": "python train.py lr=-1 (refused)",
    }
    lines = ["start-up, seconds from spawn in a fresh process: median [min, max]"]
    for name, words in names.items():
        e = st.get(name)
        if e:
            lines.append(f"  {words:46} {e['median']:6.2f}  [{e['min']:.2f}, {e['max']:.2f}]")
    if st.get("ratios"):
        lines.append("  " + ", ".join(f"{k} {v:g}" for k, v in st["ratios"].items()))
    if st.get("error"):
        lines.append(f"  failed: {st['error']}")
    return lines


def sweep_lines(sw: dict) -> list[str]:
    lines = [f"sweep: skipped ({sw['skipped']})"] if sw["skipped"] else []
    for launcher in ("basic", "joblib"):
        e = sw[launcher]
        if e:
            lines.append(
                f"sweep of {sw['jobs']} jobs, {launcher} launcher ({e['n_jobs']} at once, threads "
                f"{e['threads'] or 'default'}): {e['wall_seconds']:.1f} s, {e['jobs_per_hour']:.0f} jobs/hour"
                + (f", FAILED: {e['error']}" if e["error"] else "")
            )
    return lines


def table(r: dict) -> str:
    """The report as plain text."""
    lines = [*epoch_lines(r), goal_line(r["goal"]), *variant_lines(r["variants"])]
    lines += [*step_lines(r["steps"]), *eval_lines(r)]
    lines += ["", memory_line(r["memory"]), *startup_lines(r["startup"]), *sweep_lines(r["sweep"])]
    return "\n".join(lines)
