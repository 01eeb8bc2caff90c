"""Read finished run directories and summarise them (the results table of `make run` and docs/RESULTS.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One finished run directory (config.json, metrics.json, history.json) as plain data."""
    d = Path(run_dir)
    if not (d / "metrics.json").is_file():
        raise FileNotFoundError(f"{d}: not a finished run (no metrics.json); train it first")
    hist = json.loads((d / "history.json").read_text()) if (d / "history.json").is_file() else {}
    return {"run": d.name, "dir": d, "config": json.loads((d / "config.json").read_text()),
            "metrics": json.loads((d / "metrics.json").read_text()), "history": hist,
            "epochs_run": len(hist.get("history", [])),
            "seconds": sum(h.get("seconds", 0) for h in hist.get("history", []))}


def collect_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished run (a folder with metrics.json) under `runs_dir`, sorted by name."""
    return [read_run(m.parent) for m in sorted(Path(runs_dir).glob("*/metrics.json"))]


def results_markdown(runs: list[dict[str, Any]]) -> str:
    """A markdown table: run, model, dataset, epochs, pixel accuracy, mean class accuracy, mIoU."""
    lines = ["| run | model | dataset | image size | epochs (best) | train time | pixel acc | mean class acc | mIoU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        c, m = r["config"], r["metrics"]
        lines.append(f"| {c['name']} | {c['model']} | {c['dataset']} | {c['image_size']} | "
                     f"{r['epochs_run']} ({m.get('epoch', '?')}) | {r['seconds'] / 60:.1f} min | "
                     f"{m['pixel_acc']:.4f} | {m['mean_class_acc']:.4f} | {m['miou']:.4f} |")
    return "\n".join(lines)


def run_section(run_dir: str | Path, title: str, intro: str = "") -> str:
    """A docs/results/ section for ONE run (a recipe with its own budget): the command that reproduces it, its
    diff from the baseline config, wall clock, the results row and the per-class IoU of the best epoch."""
    from .config import Config

    run = read_run(run_dir)
    d, cfg, hist, m = run["dir"], Config.from_dict(run["config"]), run["history"], run["metrics"]
    diff = ", ".join(f"{k}={b!r}" for k, (_, b) in cfg.diff().items() if k not in ("name",))
    wall = hist.get("fit_seconds")
    lines = [f"## {title}", "", *([intro, ""] if intro else []), "```bash",
             f"python -m starter_code train --experiment {cfg.name} --dataset {cfg.dataset} "
             f"--data-root {cfg.data_root} --out {d.as_posix()}", "```", "",
             f"Config (diff from BASELINE): {diff}.", "",
             *([f"Wall clock of `fit` (data caching, class statistics, {run['epochs_run']} epochs with validation, "
                f"checkpoints): **{wall / 60:.1f} min**.", ""] if wall else []),
             results_markdown([run]), "",
             f"The table is the best epoch by val mIoU (epoch {m.get('epoch', '?')}); the last epoch, chosen by "
             f"nothing, scored val mIoU {hist['history'][-1]['val_miou']:.4f}.", "",
             "Per-class IoU of the best epoch (validation split):", "",
             "| " + " | ".join(m["iou"]) + " |", "|" + "---|" * len(m["iou"]),
             "| " + " | ".join("n/a" if v is None or v != v else f"{v:.3f}" for v in m["iou"].values())
             + " |", ""]
    return "\n".join(lines)
