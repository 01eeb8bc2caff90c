"""End-to-end `fit` time (train + validation + checkpoints) for loader workers settings.

    python -m benchmarks epoch --dataset synthetic --image-size 128 --workers 0,1,2 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from starter_code.config import make_config

from .common import dataset_root, ensure_synthetic, ints, machine_info, median, num_threads


def bench_epoch(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
                batch_size: int = 16, workers: Sequence[int] = (0, 1, 2), epochs: int = 1,
                overrides: Sequence[str] = (), repeats: int = 1, threads: int | None = None) -> dict[str, Any]:
    """Seconds of `fit` over `epochs` epochs of the baseline for each loader setting, with `threads` torch threads
    in the training process (None: torch's default); `overrides` are config settings ("key=value")."""
    from starter_code.engine import fit

    cfg = make_config("baseline", overrides=overrides)  # a bad --set fails here, before any data is made
    root = dataset_root(dataset, data_root)
    gen_s = ensure_synthetic(root) if dataset == "synthetic" else 0.0
    info = machine_info()
    rows = []
    for rep in range(repeats):
        for w in workers if rep % 2 == 0 else list(workers)[::-1]:
            cfg = make_config("baseline", env={"dataset": dataset, "data_root": str(root), "device": "cpu",
                                               "workers": w},
                              budget={"image_size": image_size, "batch_size": batch_size, "epochs": epochs},
                              overrides=overrides)
            with tempfile.TemporaryDirectory() as tmp, num_threads(threads):
                t = time.perf_counter()
                run = fit(cfg, Path(tmp) / "run", progress=False)
                total = time.perf_counter() - t
            rows.append({"workers": w, "seconds": total, "epoch_seconds": [h["seconds"] for h in run.history],
                         "val_miou": run.metrics["miou"]})
    summary = {}
    for w in workers:
        secs = [r["seconds"] for r in rows if r["workers"] == w]
        summary[f"workers={w}"] = {"workers": w, "seconds": median(secs), "runs": secs}
    return {"benchmark": "epoch", "dataset": dataset, "data_root": str(root), "image_size": image_size,
            "batch_size": batch_size, "epochs": epochs, "overrides": list(overrides),
            "threads": threads or torch.get_num_threads(), "channels_last": cfg.channels_last,
            "generation_seconds_if_generated": gen_s, "summary": summary, "runs": rows, "machine": info}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `epoch` sub-command."""
    p = sub.add_parser("epoch", help="end-to-end fit() time for loader workers settings", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "camvid", "voc"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=ints, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config setting, as `train --set` (repeatable), e.g. --set cache=true")
    p.add_argument("--threads", type=int, default=None, help="torch threads of the training process")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and print a summary."""
    r = bench_epoch(args.dataset, args.data_root, args.image_size, args.batch_size, args.workers, args.epochs,
                    args.set, args.repeats, args.threads)
    for k, s in r["summary"].items():
        print(f"{r['dataset']} {r['image_size']} {r['epochs']} epoch(s) {k}, {r['threads']} threads: "
              f"{s['seconds']:.1f} s")
    return r
