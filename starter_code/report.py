"""What finished runs are written up as: a run's standard figures, comparison tables, and docs/RESULTS.md.

Runs are read through `runs.py` (the one loader and the one results table); plots come from `viz.py`. Docs are
written per dataset to docs/results/<dataset>.md (by notebook 08) or per recipe run (`report --section`), and
`assemble_results` joins them into docs/RESULTS.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import expected_runs
from .engine import predict_samples
from .models.resnet import encoder_init
from .runs import Run, expected_missing, list_runs, load_run, results_markdown
from .viz import iou_frame, plot_class_iou, plot_history, plot_masks, plt


# ------------------------------------------------------------------------------------------------- figures
def save_run_figures(run: Run, val_ds: Any, figures_dir: str | Path = "figures", n: int = 4,
                     device: str | torch.device = "cpu") -> dict[str, Path]:
    """The three standard figures of a finished run (its model predicts `n` validation images spread over the
    split), named after its experiment and dataset: <name>_<dataset>_curves.png, _masks.png, _class_iou.png.
    Returns their paths."""
    figures_dir = Path(figures_dir)
    name = f"{run.config.name}_{run.config.dataset}"
    paths = {k: figures_dir / f"{name}_{k}.png" for k in ("curves", "masks", "class_iou")}
    plt.close(plot_history(run.history, run.best_epoch, run.stopped_epoch, run.config.name, paths["curves"]))
    idx = np.linspace(0, len(val_ds) - 1, num=min(n, len(val_ds))).astype(int).tolist()
    images, targets, preds = predict_samples(run.model.to(device), val_ds, idx, device)
    plt.close(plot_masks(images, targets, preds, val_ds.info, f"{run.config.name}: validation images", paths["masks"]))
    plt.close(plot_class_iou(run.metrics["iou"], title=f"{run.config.name}: per-class IoU (val, best epoch "
                             f"{run.best_epoch})", path=paths["class_iou"]))
    return paths


# -------------------------------------------------------------------------------------------------- tables
def class_iou_delta(runs: Mapping[str, Run], reference: str = "baseline") -> Any:
    """Per-class IoU, one column per run, plus '<run> - <reference>' columns (the classes a change helped)."""
    df = iou_frame(runs).T
    for name in runs:
        if name != reference and reference in runs:
            df[f"{name} - {reference}"] = df[name] - df[reference]
    return df


def loss_gap_table(runs: Mapping[str, Run]) -> Any:
    """Train and validation loss at each run's best epoch and their gap (val - train): over-fitting shows as a
    growing gap, which regularisation (dropout, augmentation) should shrink."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        h = next((h for h in r.history if h["epoch"] == r.best_epoch), r.history[-1])
        rows.append({"run": name, "epoch": h["epoch"], "train loss": h["train_loss"], "val loss": h["val_loss"],
                     "gap (val - train)": h["val_loss"] - h["train_loss"]})
    return pd.DataFrame(rows).set_index("run")


def transfer_table(runs: Mapping[str, Run], reference: str = "baseline") -> Any:
    """One row per run: model, how its encoder started (`models.resnet.encoder_init`), the encoder's learning
    rate (empty for models without an encoder) and `lr` (the decoder's, or every parameter's), frozen epochs,
    parameters, epochs run, mIoU and the mIoU difference to `reference` (a DataFrame). Runs need their model."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        c, init = r.config, encoder_init(r.config)
        enc_lr = c.encoder_lr if c.encoder_lr is not None else c.lr
        rows.append({"run": name, "model": c.model, "encoder init": init,
                     "encoder lr": None if init.startswith("random (no") else enc_lr, "lr": c.lr,
                     "frozen epochs": c.freeze_encoder_epochs,
                     "parameters": sum(p.numel() for p in r.model.parameters()),
                     "epochs run": r.epochs_run, "mIoU": r.metrics["miou"]})
    df = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
    if reference in runs and rows:
        df[f"mIoU vs {reference}"] = df["mIoU"] - df.loc[reference, "mIoU"]
    return df


# ---------------------------------------------------------------------------------------------------- docs
def results_markdown_doc(runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                         figures: Sequence[str | Path] = (), expected: Iterable[str] | None = None) -> str:
    """A docs/results/<dataset>.md section: a header naming the command that made it, the results table of every
    finished run on `dataset` (runs.results_markdown) and the `expected` runs (default: every course
    experiment, config.expected_runs) still missing."""
    found = list_runs(runs_dir, dataset=dataset or None, verbose=False)
    missing = expected_missing(found, expected_runs() if expected is None else expected)
    lines = [f"## {dataset or 'all datasets'}", "",
             f"Written by `notebooks/08_results_comparison.ipynb` on {date.today().isoformat()}"
             f"{f' (profile {profile}, dataset {dataset})' if profile or dataset else ''}, made with:", "",
             "```bash", command, "```", "",
             "Validation split, metrics of each run's best epoch by validation mIoU, from one confusion matrix over "
             "the whole split with void (255) ignored.", "",
             results_markdown(found), ""]
    if missing:
        lines += [f"Expected runs not found on {dataset or 'any dataset'}: " + ", ".join(missing) + ".", ""]
    if figures:
        lines += ["Figures: " + ", ".join(f"[{Path(f).name}]({f})" for f in figures) + ".", ""]
    return "\n".join(lines)


def write_results_doc(path: str | Path, runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                      figures: Sequence[str | Path] = (), expected: Iterable[str] | None = None) -> Path:
    """Write `results_markdown_doc` to `path` (docs/results/<dataset>.md), figure links relative to its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    links = [Path(os.path.relpath(Path(f).resolve(), path.parent.resolve())).as_posix() for f in figures]
    path.write_text(results_markdown_doc(runs_dir, command, profile, dataset, links, expected))
    return path


def run_section(run_dir: str | Path, title: str, intro: str = "") -> str:
    """A docs/results/ section for ONE run (a recipe with its own budget): the command that reproduces it, its
    diff from the baseline config, wall clock, the results row and the per-class IoU of the best epoch."""
    run = load_run(run_dir, weights=False)
    cfg, m = run.config, run.metrics
    diff = ", ".join(f"{k}={b!r}" for k, (_, b) in cfg.diff().items() if k not in ("name",))
    wall = run.fit_seconds
    lines = [f"## {title}", "", *([intro, ""] if intro else []), "```bash",
             f"python -m starter_code train --experiment {cfg.name} --dataset {cfg.dataset} "
             f"--data-root {cfg.data_root} --out {run.run_dir.as_posix()}", "```", "",
             f"Config (diff from BASELINE): {diff}.", "",
             *([f"Wall clock of `fit` (data caching, class statistics, {run.epochs_run} epochs with validation, "
                f"checkpoints): **{wall / 60:.1f} min**.", ""] if wall else []),
             results_markdown([run]), "",
             f"The table is the best epoch by val mIoU (epoch {m.get('epoch', '?')}); the last epoch, chosen by "
             f"nothing, scored val mIoU {run.history[-1]['val_miou']:.4f}.", "",
             "Per-class IoU of the best epoch (validation split):", "",
             "| " + " | ".join(m["iou"]) + " |", "|" + "---|" * len(m["iou"]),
             "| " + " | ".join("n/a" if v is None or v != v else f"{v:.3f}" for v in m["iou"].values())
             + " |", ""]
    return "\n".join(lines)


def assemble_results(docs_dir: str | Path) -> Path:
    """docs/RESULTS.md = every per-dataset section in docs/results/*.md (each written by notebook 08)."""
    docs_dir = Path(docs_dir)
    # sections link figures relative to docs/results/; RESULTS.md sits one folder up
    parts = [p.read_text().strip().replace("](../../", "](../") for p in sorted((docs_dir / "results").glob("*.md"))]
    out = docs_dir / "RESULTS.md"
    out.write_text("# Results\n\nGenerated from docs/results/*.md: one section per dataset by "
                   "`notebooks/08_results_comparison.ipynb` (same epochs and budget for every row of a table), and "
                   "one per recipe run by `python -m starter_code report --section` (its own budget). "
                   "Do not edit by hand.\n\n"
                   + "\n\n".join(parts) + "\n")
    return out
