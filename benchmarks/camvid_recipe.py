"""How `camvid_fast` was chosen: candidates trained for the same wall-clock budget, scored on a DEV split cut
from CamVid's train set (never on val, which stays the evaluation split).

    python -m benchmarks camvid-recipe [--minutes 4] [--only recipe,resnet34_unet] [--json FILE]

Dev split: the last 20% of the frames of each train sequence (0001TP, 0006R0, 0016E5), a contiguous block, so
dev frames are not near-copies of neighbouring train frames. Each candidate is a visible diff of `camvid_fast`;
its epoch count is sized from a timed first epoch so every candidate gets about the same wall time (a cosine
schedule must know its length). The recipe candidate is also scored at several evaluation sizes.
Writes JSON to benchmarks/results/camvid_recipe.json after every candidate. See docs/BENCHMARKS.md ("CamVid
recipe").
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import Any

from starter_code.config import EXPERIMENTS, Config
from starter_code.data import SegmentationDataset, build_transform, cache_size_for
from starter_code.data.camvid import read_camvid_list
from starter_code.data.classes import CAMVID_INFO
from starter_code.engine import evaluate, fit, make_loader, resolve_device

from .common import CAMVID_ROOT, machine_info, save_json

RECIPE = EXPERIMENTS["camvid_fast"]

# name -> the diff from camvid_fast that the candidate tests (each JSON row records its diff and the base config)
CANDIDATES: dict[str, dict[str, Any]] = {
    "recipe": {},
    "resnet34_unet": {"model": "resnet34_unet", "model_kwargs": {"pretrained": False}},
    "baseline_fcn": {"model": "baseline"},
    "unet_w24": {"model_kwargs": {"base_width": 24}},
    "no_class_weights": {"class_weights": None, "weight_clip": None},
    "strong_augment": {"augment": "strong"},
    "paper_augment": {"augment": "paper"},
    "crop_288": {"image_size": 288, "eval_size": 288},
}


def dev_split(root: Path, fraction: float = 0.2) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(train, dev) pairs: per sequence (file-name prefix before '_'), the last `fraction` of frames go to dev."""
    pairs = sorted(read_camvid_list(root, "train"), key=lambda p: p[0].name)
    train, dev = [], []
    for _, group in groupby(pairs, key=lambda p: p[0].name.split("_")[0]):
        g = list(group)
        k = max(1, round(len(g) * fraction))
        train += g[:-k]
        dev += g[-k:]
    return train, dev


def datasets(cfg: Config, root: Path) -> tuple[SegmentationDataset, SegmentationDataset]:
    tr, dv = dev_split(root)
    mk = lambda ps, preset, size: SegmentationDataset(  # noqa: E731
        [p[0] for p in ps], [p[1] for p in ps], CAMVID_INFO, [p[0].stem for p in ps], build_transform(preset, size),
        cache=cfg.cache, cache_size=cache_size_for(preset, size), uniform_size=True)
    eval_size = cfg.image_size if cfg.eval_size == -1 else cfg.eval_size
    return mk(tr, cfg.augment, cfg.image_size), mk(dv, "eval", eval_size)


def run_candidate(name: str, diff: dict[str, Any], minutes: float, root: Path, out: Path) -> dict[str, Any]:
    probe = replace(RECIPE, name=name, epochs=1, scheduler=None, **diff)
    t0 = time.perf_counter()
    fit(probe, out / f"{name}-probe", datasets=datasets(probe, root), progress=False)
    epoch_s = time.perf_counter() - t0
    epochs = max(2, math.floor(60 * minutes / epoch_s))
    cfg = replace(RECIPE, name=name, epochs=epochs, **diff)
    t0 = time.perf_counter()
    res = fit(cfg, out / name, datasets=datasets(cfg, root), progress=False)
    wall = time.perf_counter() - t0
    last = res.history[-1]
    row = {"name": name, "diff": {k: v for k, v in cfg.diff(RECIPE).items() if k not in ("name", "epochs")},
           "epochs": epochs, "probe_epoch_s": epoch_s, "wall_s": wall,
           "dev_miou_last": last["val_miou"], "dev_miou_best": res.metrics["miou"],
           "dev_pixel_acc_last": last["val_pixel_acc"], "dev_mean_class_acc_last": last["val_mean_class_acc"],
           "history": res.history}
    if name == "recipe":  # the same weights at other evaluation sizes (the metric stays at native 480x360)
        device = resolve_device("cpu")
        row["dev_miou_by_eval_size"] = {}
        for size in (240, 288, 360):
            _, dev = datasets(replace(cfg, eval_size=size), root)
            m = evaluate(res.model, make_loader(dev, 8, False, device, 0), CAMVID_INFO.num_classes, device,
                         channels_last=cfg.channels_last, progress=False)
            row["dev_miou_by_eval_size"][size] = m["miou"]
    print(f"{name:18s} {epochs:3d} epochs  {wall / 60:5.1f} min  dev mIoU last {row['dev_miou_last']:.3f} "
          f"best {row['dev_miou_best']:.3f}  {row.get('dev_miou_by_eval_size', '')}", flush=True)
    return row


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `camvid-recipe` sub-command."""
    p = sub.add_parser("camvid-recipe", help="camvid_fast candidates at equal wall time, scored on a dev split",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(CAMVID_ROOT))
    p.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget per candidate")
    p.add_argument("--only", default=",".join(c for c in CANDIDATES if c != "paper_augment"),
                   help=f"comma-separated candidate names: {', '.join(CANDIDATES)}")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train every candidate in turn, writing the JSON after each (a long study survives an interruption)."""
    root = Path(args.data_root)
    tr, dv = dev_split(root)
    print(f"CamVid train split into {len(tr)} train / {len(dv)} dev frames; {args.minutes:g} min per candidate")
    result: dict[str, Any] = {"machine": machine_info(), "base": RECIPE.to_dict(), "minutes": args.minutes,
                              "train": len(tr), "dev": len(dv), "command": args.command, "candidates": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            result["candidates"].append(run_candidate(name, CANDIDATES[name], args.minutes, root, Path(tmp)))
            save_json(result, args.json)
    return result
