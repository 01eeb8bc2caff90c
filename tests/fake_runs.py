"""Fake finished runs and a fake validation set for the plotting, explorer, report and notebook tests (no training).

`fake_run` builds a `runs.Run` in memory with chosen numbers; `save_run` writes one to disk through the
checkpoint writers, exactly as `fit` lays a run directory out.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from starter_code import checkpoint
from starter_code.config import BASELINE, Config
from starter_code.data.classes import dataset_info
from starter_code.data.transforms import normalize
from starter_code.models import build_model
from starter_code.runs import Run

NAN = float("nan")
CLASSES = list(dataset_info("voc").classes)


class FakeVal:
    """A 3-image 'validation set' of 20x24 random images with masks holding classes 0, 1, 15 and void."""

    info = dataset_info("synthetic")

    def __init__(self, n: int = 3) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = [f"fake_{i}" for i in range(n)]
        self.items = []
        for _ in range(n):
            img = torch.randint(0, 256, (3, 20, 24), generator=g, dtype=torch.uint8)
            mask = torch.zeros(20, 24, dtype=torch.long)
            mask[5:15, 4:12], mask[2:8, 14:22], mask[0, :] = 1, 15, 255
            self.items.append((normalize(img), mask))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def fake_run(name: str, miou: float, epochs: int = 3, model: str = "baseline", cfg: Config | None = None,
             **fields: Any) -> Run:
    """A finished run of `epochs` epochs, val mIoU rising linearly to `miou`, every fifth class absent (NaN)."""
    torch.manual_seed(len(name))
    cfg = cfg or replace(BASELINE, name=name, model=model, epochs=epochs, **fields)
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "val_miou": miou * e / epochs,
                "val_pixel_acc": 0.5 + 0.1 * e, "val_mean_class_acc": 0.1 * e, "lr": 1e-3, "seconds": 1.0}
               for e in range(1, epochs + 1)]
    iou = {c: (NAN if i % 5 == 4 else miou) for i, c in enumerate(CLASSES)}
    metrics = {"split": "val", "epoch": epochs, "pixel_acc": 0.8, "mean_class_acc": 0.3, "miou": miou,
               "fw_iou": 0.7, "loss": 1.0, "iou": iou, "class_acc": iou, "num_pixels": 100}
    net = build_model(model, num_classes=len(CLASSES)).eval()
    return Run(cfg, Path(f"runs/{name}-{cfg.dataset}"), history, metrics, epochs, None, None, CLASSES, net, 3.0)


def save_run(run: Run, runs_dir: Path, weights: bool = False) -> Path:
    """Write `run` as <runs_dir>/<name>-<dataset>/ (config.json, metrics.json, history.json, best.pt if
    `weights`), through the same writers as fit."""
    d = runs_dir / f"{run.name}-{run.config.dataset}"
    d.mkdir(parents=True)
    checkpoint.write_config(d, run.config)
    checkpoint.write_metrics(d, run.metrics)
    checkpoint.write_history(d, run.history, run.best_epoch, run.stopped_epoch, run.stop_reason, run.fit_seconds)
    if weights:
        checkpoint.save_best([d], checkpoint.plain_state_dict(run.model), run.config.to_dict(), run.best_epoch,
                             run.classes, run.metrics)
    return d
