"""Read finished run directories and summarise them (the results table of `make run` and docs/RESULTS.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def collect_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished run (a folder with metrics.json) under `runs_dir`, sorted by name."""
    out = []
    for mpath in sorted(Path(runs_dir).glob("*/metrics.json")):
        d = mpath.parent
        cfg = json.loads((d / "config.json").read_text())
        hist = json.loads((d / "history.json").read_text()) if (d / "history.json").is_file() else {}
        out.append({"run": d.name, "dir": d, "config": cfg, "metrics": json.loads(mpath.read_text()),
                    "epochs_run": len(hist.get("history", [])),
                    "seconds": sum(h.get("seconds", 0) for h in hist.get("history", []))})
    return out


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
