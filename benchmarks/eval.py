"""evaluate()'s images/s on the val split, and the share of the time spent in the metric and in loading.

    python -m benchmarks eval --dataset synthetic --image-size 128
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from starter_code.config import BASELINE

from .common import build, dataset_root, ensure_synthetic, iterate, machine_info, median


def bench_eval(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
               batch_size: int = 16, model: str = "baseline", channels_last: bool | None = None,
               repeats: int = 3, limit: int | None = None) -> dict[str, Any]:
    """evaluate()'s images/s on the val split (workers 0, as fit on CPU) and the share spent in
    ConfusionMatrix.update (timed by wrapping it), and in the data loading (a pass without the model)."""
    from starter_code.data import build_dataset, eval_size
    from starter_code.engine import eval_batch_size, evaluate, make_loader
    from starter_code.metrics import ConfusionMatrix

    root = dataset_root(dataset, data_root)
    if dataset == "synthetic":
        ensure_synthetic(root)
    cl = BASELINE.channels_last if channels_last is None else channels_last
    ds = build_dataset(dataset, root, "val", "eval", eval_size(replace(BASELINE, image_size=image_size)), limit)
    torch.manual_seed(0)
    net = build(model, ds.info.num_classes)
    if cl:
        net = net.to(memory_format=torch.channels_last)
    cpu = torch.device("cpu")
    loader = make_loader(ds, eval_batch_size(ds, batch_size), False, cpu, 0)
    crit = nn.CrossEntropyLoss(ignore_index=255)
    spent = [0.0]
    original = ConfusionMatrix.update

    def timed_update(self: ConfusionMatrix, pred: torch.Tensor, target: torch.Tensor) -> None:
        t = time.perf_counter()
        original(self, pred, target)
        spent[0] += time.perf_counter() - t

    info = machine_info()
    totals, metric_s, load_s = [], [], []
    ConfusionMatrix.update = timed_update  # type: ignore[method-assign]
    try:
        evaluate(net, loader, ds.info.num_classes, cpu, crit, channels_last=cl, progress=False)
        for _ in range(repeats):
            spent[0] = 0.0
            t = time.perf_counter()
            evaluate(net, loader, ds.info.num_classes, cpu, crit, channels_last=cl, progress=False)
            totals.append(time.perf_counter() - t)
            metric_s.append(spent[0])
            load_s.append(iterate(loader, None)[1])
    finally:
        ConfusionMatrix.update = original  # type: ignore[method-assign]
    total = median(totals)
    return {"benchmark": "eval", "dataset": dataset, "model": model, "image_size": image_size,
            "eval_batch_size": loader.batch_size, "images": len(ds), "channels_last": cl,
            "seconds": total, "images_per_s": len(ds) / total, "metrics_seconds": median(metric_s),
            "metrics_share": median(metric_s) / total, "loading_seconds": median(load_s),
            "loading_share": median(load_s) / total, "runs_seconds": totals, "machine": info}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `eval` sub-command."""
    p = sub.add_parser("eval", help="evaluation images/s and the share spent in the metric", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "camvid", "voc"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--model", default="baseline")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--limit", type=int, default=None)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and print a summary."""
    r = bench_eval(args.dataset, args.data_root, args.image_size, args.batch_size, args.model,
                   repeats=args.repeats, limit=args.limit)
    print(f"{r['dataset']} val ({r['images']} images): {r['images_per_s']:.1f} img/s, metrics "
          f"{100 * r['metrics_share']:.1f}% of the time, loading {100 * r['loading_share']:.1f}%")
    return r
