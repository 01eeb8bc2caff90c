"""Training DataLoader images/s (decode + augment + collate) for loader workers x in-memory cache.

    python -m benchmarks loader --dataset camvid --image-size 128
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .common import bools, dataset_root, ensure_synthetic, ints, iterate, machine_info, median


def bench_loader(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
                 batch_size: int = 16, workers: Sequence[int] = (0, 1, 2), cache: Sequence[bool] = (False, True),
                 augment: str = "none", max_batches: int | None = None, repeats: int = 2) -> dict[str, Any]:
    """Training-loader images/s for each workers x cache setting.

    `cold` is a first pass through a fresh dataset (what every epoch sees when the cache is off); with the cache
    on, `prefilled` is what each epoch of `fit` sees: the cache filled once in this process (`fill_cache`), then a
    fresh per-epoch loader whose forked workers inherit it; `warm` is a second pass over one persistent loader.
    """
    from torch.utils.data import DataLoader

    from starter_code.data import build_dataset
    from starter_code.engine import make_loader

    root = dataset_root(dataset, data_root)
    if dataset == "synthetic":
        ensure_synthetic(root)
    info = machine_info()
    cpu = torch.device("cpu")
    rows = []
    for _ in range(repeats):
        for w in workers:
            for c in cache:
                ds = build_dataset(dataset, root, "train", augment, image_size, cache=c)
                n, sec = iterate(make_loader(ds, batch_size, True, cpu, w), max_batches)
                row = {"workers": w, "cache": c, "images": n, "cold_images_per_s": n / sec}
                if c:
                    ds = build_dataset(dataset, root, "train", augment, image_size, cache=True)
                    ds.fill_cache(progress=False)
                    n1, sec1 = iterate(make_loader(ds, batch_size, True, cpu, w), max_batches)
                    row["prefilled_images_per_s"] = n1 / sec1
                    ds = build_dataset(dataset, root, "train", augment, image_size, cache=True)
                    dl = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=w,
                                    persistent_workers=w > 0, prefetch_factor=4 if w else None)
                    iterate(dl, max_batches)
                    n2, sec2 = iterate(dl, max_batches)
                    row["warm_images_per_s"] = n2 / sec2
                    del dl
                rows.append(row)
    summary: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = summary.setdefault(f"workers={r['workers']},cache={r['cache']}",
                               {"workers": r["workers"], "cache": r["cache"]})
        for k in ("cold", "prefilled", "warm"):
            if f"{k}_images_per_s" in r:
                s.setdefault(k, []).append(r[f"{k}_images_per_s"])
    for s in summary.values():
        for k in ("cold", "prefilled", "warm"):
            if k in s:
                s[f"{k}_images_per_s"] = median(s.pop(k))
    return {"benchmark": "loader", "dataset": dataset, "data_root": str(root), "image_size": image_size,
            "batch_size": batch_size, "augment": augment, "repeats": repeats, "summary": summary, "runs": rows,
            "machine": info}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `loader` sub-command."""
    p = sub.add_parser("loader", help="training DataLoader images/s for workers x cache", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="camvid", choices=("synthetic", "camvid", "voc"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=ints, default=[0, 1, 2])
    p.add_argument("--cache", type=bools, default=[False, True])
    p.add_argument("--augment", default="none")
    p.add_argument("--max-batches", type=int, default=None)
    p.add_argument("--repeats", type=int, default=2)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and print a summary."""
    r = bench_loader(args.dataset, args.data_root, args.image_size, args.batch_size, args.workers, args.cache,
                     args.augment, args.max_batches, args.repeats)
    for k, s in r["summary"].items():
        warm = "".join(f"  {w} {s[f'{w}_images_per_s']:7.1f}" for w in ("prefilled", "warm")
                       if f"{w}_images_per_s" in s)
        print(f"{r['dataset']} {r['image_size']} {k:<22s} cold {s['cold_images_per_s']:7.1f} img/s{warm}")
    return r
