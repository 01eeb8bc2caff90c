"""VOC at its real scale, measured on the CPU: a VOC-format set with VOC 2012's split sizes (1,464 train / 1,449
val) and image sizes, rendered onto the genuine VOC 2012 masks, and what the notebooks' Colab profile costs on the
CPU side with it (cache fill time and memory, loader images/s, evaluation of every val image).

    python -m benchmarks voc-scale                  # make build/voc_scale/full once (~1-2 min), then measure
    python -m benchmarks voc-scale --tiny           # 24 train + 12 val images: tests, a quick look
    python -m benchmarks voc-scale --generate-only [--root DIR]
    python -m benchmarks voc-scale --t4-table benchmarks/results/voc_scale.json   # the README's T4 table

The set: every genuine mask (../shared/data/voc2012-masks, linked, never copied into the repository) gets an image
of its own size. The background is two random colours blended by 1/f-like noise; each class region is painted with
that class's texture from the synthetic generator (starter_code.data.synthetic) on a random colour with a lighting
gradient; fine luminance detail and sensor noise go over everything. Saved as JPEG at quality 95 with 4:2:0 chroma
(the genuine VOC sample's quantisation tables are libjpeg's quality-95 ones), the files average ~100 KB (4.4 bits
per pixel) like VOC's, so decoding costs what VOC's does. Why this rendering: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .common import REPO, RESULTS, SHARED_DATA, iterate, machine_info

MASKS = SHARED_DATA / "voc2012-masks"  # the 2,913 genuine train/val masks and the official split lists
BUILD = REPO / "build" / "voc_scale"  # generated trees: build/voc_scale/{full,tiny}/VOCdevkit/VOC2012
TINY = {"train": 24, "val": 12}  # --tiny: the first ids of each official list
GENERATOR_VERSION = 1
JPEG_QUALITY = 95  # the genuine sample's quantisation tables are libjpeg's quality-95 tables
JPEG_SUBSAMPLING = 2  # 4:2:0, as the genuine sample
NOISE_SIGMA = 4.0  # sensor noise (grey levels), with DETAIL calibrated so the JPEGs average ~4.4 bits per pixel
DETAIL = 0.8  # amplitude of the fine luminance detail (multiplier 1 +- DETAIL)
MARKER = "VOCSCALE.json"  # what made the tree (never SYNTHETIC.json: the kit would treat the sizes as uniform)
PRESET_EXPERIMENT = {"none": "baseline", "paper": "augment", "strong": "augment_strong"}  # training presets


class MasksNotFound(FileNotFoundError):
    """The genuine masks are not where expected; the message says what to pass."""


# ------------------------------------------------------------------------------------------------- rendering
def _fractal(h: int, w: int, r: np.random.Generator, octaves: Sequence[int], beta: float) -> np.ndarray:
    """H x W noise in [0, 1]: random lattices of `f` cells per longer side, bicubic-upsampled (PIL, fast) and
    summed with amplitude f**-beta (beta 0: white-ish detail; larger: smoother, like a photo's 1/f spectrum)."""
    side = max(h, w)
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for f in octaves:
        gh, gw = max(2, round(f * h / side) + 1), max(2, round(f * w / side) + 1)
        lattice = Image.fromarray(r.random((gh, gw), dtype=np.float32), mode="F")
        amp = f ** -beta
        out += amp * np.asarray(lattice.resize((w, h), Image.BICUBIC))
        total += amp
    return out / total


def render_image(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An H x W x 3 uint8 image for a VOC mask (class indices, void 255): background noise in two colours, each
    class region in its class's synthetic texture, then fine detail and sensor noise everywhere (void pixels keep
    the background, like the cluttered outlines VOC marks void)."""
    from starter_code.data.synthetic import _TEXTURES, _jitter_texture, _random_colour, _texture

    r = rng
    h, w = mask.shape
    side = max(h, w)
    n = np.clip((_fractal(h, w, r, (2, 4, 8, 16, 32, 64, 128), 0.4) - 0.5) * 2.5 + 0.5, 0.0, 1.0)[..., None]
    img = _random_colour(r) * (1.0 - n) + _random_colour(r) * n
    for c in np.unique(mask).tolist():
        if c == 0 or c not in _TEXTURES:
            continue
        sel = mask == c
        ys, xs = np.nonzero(sel)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        extent = math.sqrt((y1 - y0) * (x1 - x0))
        options = _TEXTURES[c]
        tex = _jitter_texture(options[int(r.choice(len(options), p=[p for p, _ in options]))][1], r)
        if "period" in tex:  # the synthetic set's period is in pixels at 128 px: scale it with the image
            tex["freq"] = extent / (tex["period"] * side / 128.0)
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        u, v = (gx - (x0 + x1) / 2) / extent, (gy - (y0 + y1) / 2) / extent
        t = _texture(tex, u, v, r)[..., None]
        base = _random_colour(r)
        lo, hi = base * r.uniform(0.2, 0.45), base + (255.0 - base) * r.uniform(0.15, 0.5)
        light = 1.0 + r.uniform(0.0, 0.35) * (u * math.cos(a := r.uniform(0, 2 * math.pi)) + v * math.sin(a))
        region = sel[y0:y1, x0:x1]
        img[y0:y1, x0:x1][region] = ((lo + (hi - lo) * t) * light[..., None])[region]
    img *= (1.0 - DETAIL + 2.0 * DETAIL * _fractal(h, w, r, (32, 64, 128, 256), 0.0))[..., None]
    img += r.standard_normal(img.shape, dtype=np.float32) * NOISE_SIGMA
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _render_one(task: tuple[str, str, str, str, int]) -> dict[str, Any]:
    """Render, save and link one id (a pool task): (split, id, mask path, VOC2012 dir, seed) -> its file stats."""
    from starter_code.data import load_mask

    split, image_id, mask_path, voc, seed = task
    mask = load_mask(mask_path)
    img = render_image(mask, np.random.default_rng([seed, zlib.crc32(image_id.encode())]))
    jpg = Path(voc) / "JPEGImages" / f"{image_id}.jpg"
    Image.fromarray(img).save(jpg, quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    link = Path(voc) / "SegmentationClass" / f"{image_id}.png"
    try:
        link.symlink_to(Path(mask_path).resolve())
    except OSError:  # no symlinks here: a copy inside the generated tree (still never in the repository)
        shutil.copyfile(mask_path, link)
    return {"split": split, "id": image_id, "h": int(mask.shape[0]), "w": int(mask.shape[1]),
            "bytes": jpg.stat().st_size}


# ------------------------------------------------------------------------------------------------ generation
def default_root(tiny: bool = False) -> Path:
    """build/voc_scale/tiny or build/voc_scale/full (the folder that holds VOCdevkit/)."""
    return BUILD / ("tiny" if tiny else "full")


def read_marker(root: str | Path) -> dict[str, Any] | None:
    """The generator's record in ROOT/VOCdevkit/VOC2012/VOCSCALE.json (parameters and file statistics), or None."""
    try:
        return json.loads((Path(root) / "VOCdevkit" / "VOC2012" / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _split_ids(masks: Path, tiny: bool) -> dict[str, list[str]]:
    from starter_code.data.voc import read_split

    if not (masks / "SegmentationClass").is_dir() or not (masks / "ImageSets" / "Segmentation").is_dir():
        raise MasksNotFound(f"{masks}: no VOC 2012 masks here (SegmentationClass/ and ImageSets/Segmentation/"
                            "{train,val}.txt); pass --masks DIR, the voc2012-masks folder")
    ids = {split: read_split(masks, split) for split in ("train", "val")}
    return {split: v[:TINY[split]] for split, v in ids.items()} if tiny else ids


def make_voc_scale(root: str | Path | None = None, masks: str | Path = MASKS, tiny: bool = False, workers: int = 2,
                   seed: int = 0, progress: bool = True) -> Path:
    """Write the VOC-scale set under root/VOCdevkit/VOC2012 (default build/voc_scale/{full,tiny}) and return root.

    A tree made earlier with the same parameters is reused; one made with others is replaced; a VOC2012 folder this
    generator did not make (no VOCSCALE.json) is never touched. Rendered by `workers` processes into a temp folder
    and moved into place, so an interrupted run leaves no half-written tree."""
    root = Path(root) if root is not None else default_root(tiny)
    masks = Path(masks)
    ids = _split_ids(masks, tiny)
    params = {"generator": "benchmarks.voc_scale", "version": GENERATOR_VERSION, "seed": seed, "tiny": tiny,
              "train": len(ids["train"]), "val": len(ids["val"]), "jpeg_quality": JPEG_QUALITY,
              "masks": str(masks.resolve())}
    voc = root / "VOCdevkit" / "VOC2012"
    old = read_marker(root)
    if old is not None and old.get("params") == params:
        return root
    if voc.exists() and old is None:
        raise FileExistsError(f"{voc} exists and was not made by the VOC-scale generator (no {MARKER}); "
                              "pass another --root")
    tmp = root / f".voc_scale_tmp_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    new = tmp / "VOC2012"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (new / d).mkdir(parents=True)
    tasks = [(split, i, str(masks / "SegmentationClass" / f"{i}.png"), str(new), seed)
             for split in ("train", "val") for i in ids[split]]
    t0 = time.perf_counter()
    try:
        with tqdm(total=len(tasks), desc="VOC-scale images", unit="img", disable=not progress) as bar:
            rows = []
            if workers > 1:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    for row in pool.imap_unordered(_render_one, tasks, chunksize=8):
                        rows.append(row)
                        bar.update()
            else:
                for task in tasks:
                    rows.append(_render_one(task))
                    bar.update()
        seconds = time.perf_counter() - t0
        sets = new / "ImageSets" / "Segmentation"
        for split in ("train", "val"):
            (sets / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids[split]))
        (sets / "trainval.txt").write_text("".join(f"{i}\n" for i in ids["train"] + ids["val"]))
        stats = file_stats(rows)
        (new / MARKER).write_text(json.dumps({"params": params, **stats, "seconds": round(seconds, 1),
                                              "images_per_s": round(len(rows) / seconds, 1),
                                              "workers": workers}, indent=2) + "\n")  # last: marks it complete
        if voc.exists():
            shutil.rmtree(voc)
        voc.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, voc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def file_stats(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts, image sizes (min/median/max) and JPEG size (mean bytes, mean bits per pixel) of rendered images."""
    rows = list(rows)
    hs, ws = [r["h"] for r in rows], [r["w"] for r in rows]
    return {"images": len(rows), "train": sum(r["split"] == "train" for r in rows),
            "val": sum(r["split"] == "val" for r in rows),
            "height_min_median_max": [min(hs), statistics.median(hs), max(hs)],
            "width_min_median_max": [min(ws), statistics.median(ws), max(ws)],
            "jpeg_bytes_mean": round(statistics.fmean(r["bytes"] for r in rows)),
            "bits_per_pixel_mean": round(statistics.fmean(8 * r["bytes"] / (r["h"] * r["w"]) for r in rows), 3)}


# ------------------------------------------------------------------------------------------------ measuring
class TreeMemory:
    """Peak memory of this process plus its children (the loader workers), sampled in a thread every `interval` s.

    `rss` counts every page a process touches, so pages forked workers share with the parent (the cache) count in
    each of them; `pss` splits shared pages among their users: what the machine really gives up."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Take one sample now."""
        import psutil

        me = psutil.Process()
        rss = pss = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                m = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += m.rss
            pss += getattr(m, "pss", m.rss)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def cache_bytes(ds: Any) -> int:
    """Bytes of the decoded images and masks a dataset holds in its in-memory cache."""
    return sum(img.nbytes + msk.nbytes for img, msk in ds._cache.values())


def colab_config(root: str | Path, preset: str = "none", image_size: int | None = None,
                 batch_size: int | None = None, device: str = "cpu") -> Any:
    """The course experiment that trains with augmentation `preset`, in the notebooks' Colab profile (cache on,
    224 px crops, batch 16) on the VOC-format set at `root`."""
    from starter_code.config import make_config
    from starter_code.workspace import PROFILES

    colab = PROFILES["colab"]
    return make_config(PRESET_EXPERIMENT[preset],
                       env={"dataset": "voc", "data_root": str(root), "cache": colab["cache"], "device": device},
                       budget={"image_size": image_size or colab["image_size"],
                               "batch_size": batch_size or colab["batch_size"]})


def measure_preset(root: str | Path, preset: str = "none", workers: Sequence[int] = (0, 1, 2),
                   image_size: int | None = None, batch_size: int | None = None,
                   cold_workers: Sequence[int] = (2,)) -> dict[str, Any]:
    """What the Colab profile's data path costs for one augmentation preset, in this process (run it in a fresh
    one for a clean peak): filling the cache (train at the crop size, val at native size, as `fit` does before
    the first epoch), its bytes and the process's memory; then one epoch of the training loader (a fresh
    per-epoch loader whose forked workers share the filled cache, as `fit`'s) and one pass of the val loader for
    each `workers`, with the peak memory of the process and its workers; and, for comparison, a training epoch
    with the cache off (every epoch decodes every JPEG) for `cold_workers`."""
    import torch

    from starter_code.data import build_dataset, build_datasets
    from starter_code.engine import eval_batch_size, make_loader

    torch.manual_seed(0)
    cfg = colab_config(root, preset, image_size, batch_size)
    cpu = torch.device("cpu")
    train, val = build_datasets(cfg)
    rss0 = _rss()
    t = time.perf_counter()
    train.fill_cache(progress=False)
    train_s = time.perf_counter() - t
    rss1 = _rss()
    t = time.perf_counter()
    val.fill_cache(progress=False)
    val_s = time.perf_counter() - t
    out: dict[str, Any] = {
        "preset": preset, "experiment": cfg.name, "image_size": cfg.image_size, "batch_size": cfg.batch_size,
        "train_images": len(train), "val_images": len(val),
        "cache_fill": {"train_s": train_s, "val_s": val_s, "total_s": train_s + val_s,
                       "train_images_per_s": len(train) / train_s, "val_images_per_s": len(val) / val_s},
        "cache_bytes": {"train": cache_bytes(train), "val": cache_bytes(val)},
        "rss_bytes": {"before_fill": rss0, "after_train_fill": rss1, "after_val_fill": _rss(),
                      "peak_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024},
        "loader": {},
    }
    for w in workers:
        with TreeMemory() as mem:
            n, sec = iterate(make_loader(train, cfg.batch_size, True, cpu, w, cfg.seed, 0), None)
        vn, vsec = iterate(make_loader(val, eval_batch_size(val, cfg.batch_size), False, cpu, w), None)
        out["loader"][f"workers={w}"] = {
            "workers": w, "train_images": n, "train_s": sec, "train_images_per_s": n / sec, "val_s": vsec,
            "val_images_per_s": vn / vsec, "peak_tree_rss_bytes": mem.peak_rss, "peak_tree_pss_bytes": mem.peak_pss}
    out["cold"] = {}
    for w in cold_workers:
        ds = build_dataset(cfg.dataset, root, "train", cfg.augment, cfg.image_size, cache=False)
        n, sec = iterate(make_loader(ds, cfg.batch_size, True, cpu, w, cfg.seed, 0), None)
        out["cold"][f"workers={w}"] = {"workers": w, "train_s": sec, "train_images_per_s": n / sec}
    return out


def measure_decode(root: str | Path, split: str = "val") -> dict[str, Any]:
    """Seconds per image to decode a split's JPEGs (RGB) and its PNG masks, in this process, one at a time."""
    from starter_code.data import load_image, load_mask
    from starter_code.data.voc import voc_dataset

    ds = voc_dataset(root, split)
    t = time.perf_counter()
    for p in ds.images:
        load_image(p)
    jpeg_s = time.perf_counter() - t
    t = time.perf_counter()
    for p in ds.masks:
        load_mask(p)
    png_s = time.perf_counter() - t
    return {"split": split, "images": len(ds), "jpeg_ms_per_image": 1000 * jpeg_s / len(ds),
            "png_mask_ms_per_image": 1000 * png_s / len(ds)}


def measure_eval(root: str | Path, model: str = "baseline", image_size: int | None = None) -> dict[str, Any]:
    """`evaluate()` over every val image (benchmarks.eval: native-size JPEGs, the image rescaled to the eval size,
    logits scored on the native mask, one image per batch as sizes vary), plus the pure decode time, so the time
    splits into decode / resize+normalise / metric / model (forward, upsampling to the mask, argmax)."""
    from .eval import bench_eval

    r = bench_eval("voc", root, image_size or colab_config(root).image_size, model=model, repeats=1)
    d = measure_decode(root, "val")
    n = r["images"]
    decode = (d["jpeg_ms_per_image"] + d["png_mask_ms_per_image"]) * n / 1000
    split = {"decode_s": decode, "resize_normalise_collate_s": max(0.0, r["loading_seconds"] - decode),
             "metric_s": r["metrics_seconds"],
             "model_s": max(0.0, r["seconds"] - r["loading_seconds"] - r["metrics_seconds"])}
    return {"model": model, "images": n, "seconds": r["seconds"], "images_per_s": r["images_per_s"],
            "split_seconds": split, "decode": d, "eval_benchmark": r}


def in_fresh_process(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """fn(*args, **kwargs) in a forked child process: what it caches and its peak memory die with it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as ex:
        return ex.submit(fn, *args, **kwargs).result()


def bench_voc_scale(root: str | Path, presets: Sequence[str] = ("none", "paper", "strong"),
                    workers: Sequence[int] = (0, 1, 2), model: str = "baseline", evaluation: bool = True,
                    image_size: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """The Colab profile's CPU-side costs on the VOC-scale set at `root`: per augmentation preset (each in a fresh
    process) cache fill, memory and loader images/s; then `evaluate()` over every val image."""
    info = machine_info()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"benchmark": "voc-scale", "data_root": str(root), "set": read_marker(root),
                           "profile": "colab", "presets": {}}
    for preset in presets:
        out["presets"][preset] = in_fresh_process(measure_preset, str(root), preset, tuple(workers), image_size,
                                                  batch_size)
    if evaluation:
        out["eval"] = in_fresh_process(measure_eval, str(root), model, image_size)
    out["seconds"] = time.perf_counter() - t0
    out["machine"] = info
    out["loadavg_end"] = list(os.getloadavg())
    return out


# ----------------------------------------------------------------------------------------------- T4 table
def _training_rows() -> list[dict[str, Any]]:
    """The experiments the notebooks train on a Colab GPU, grouped by (model, width, augmentation preset)."""
    from starter_code.config import EXPERIMENTS, expected_runs

    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, notebook in expected_runs(pretrained=True, cpu=False).items():
        cfg = EXPERIMENTS[name]
        kw = {k: v for k, v in cfg.model_kwargs.items() if k != "pretrained"}
        key = (cfg.model, json.dumps(kw, sort_keys=True), cfg.augment)
        g = groups.setdefault(key, {"model": cfg.model, "kwargs": kw, "preset": cfg.augment, "notebooks": [],
                                    "experiments": []})
        g["experiments"].append(name)
        if notebook[:2] not in g["notebooks"]:
            g["notebooks"].append(notebook[:2])
    return list(groups.values())


def _range(lo: float, hi: float, unit: str = " s") -> str:
    def f(x: float) -> str:
        return f"{x:.1f}" if x < 10 else f"{x:.0f}"

    return f"{f(lo)}{unit}" if f(lo) == f(hi) else f"{f(lo)}-{f(hi)}{unit}"


def t4_table(measured: dict[str, Any], workers: int = 1, epochs: int = 30) -> dict[str, Any]:
    """The README's "What an epoch costs on a Colab T4" rows: GPU compute per epoch ESTIMATED from FLOP counts
    (benchmarks.gpu_estimate: AMP at 30-40 % of the T4's fp16 peak), the CPU side MEASURED here (`measured` =
    bench_voc_scale's result: the training loader's epoch and the val pass with `workers` loader workers, the cache
    filled; the one-off cache fill), and the epoch they imply: max(GPU, loader) for training plus max(GPU, loading)
    for validation, each part bound by the slower side."""
    from .gpu_estimate import T4_FP16_TFLOPS, VOC_TRAIN, VOC_VAL, gpu_estimate

    est = {(r["model"], json.dumps(r["kwargs"], sort_keys=True)): r for r in gpu_estimate()["rows"]}
    utils = (0.40, 0.30)
    rows = []
    for g in _training_rows():
        key = (g["model"], json.dumps(g["kwargs"], sort_keys=True))
        e = est.get(key) or est.get((g["model"], "{}"))
        if e is None or g["preset"] not in measured["presets"]:
            continue
        m = measured["presets"][g["preset"]]
        lm = m["loader"][f"workers={workers}"]
        cpu_train = VOC_TRAIN / lm["train_images_per_s"]
        cpu_val = VOC_VAL / lm["val_images_per_s"]
        gpu_train = [VOC_TRAIN * e["gflop_per_image_train"] * 1e9 / (T4_FP16_TFLOPS * 1e12 * u) for u in utils]
        gpu_val = [VOC_VAL * e["gflop_per_image_eval"] * 1e9 / (T4_FP16_TFLOPS * 1e12 * u) for u in utils]
        epoch = [max(gt, cpu_train) + max(gv, cpu_val) for gt, gv in zip(gpu_train, gpu_val)]
        fill = m["cache_fill"]["total_s"]
        rows.append({**g, "gflop_per_image_train": e["gflop_per_image_train"],
                     "gpu_epoch_s": [gt + gv for gt, gv in zip(gpu_train, gpu_val)],
                     "cpu_train_s": cpu_train, "cpu_val_s": cpu_val, "cache_fill_s": fill,
                     "cache_gb": (m["cache_bytes"]["train"] + m["cache_bytes"]["val"]) / 1e9,
                     "epoch_s": epoch, "run_min": [(fill + epochs * x) / 60 for x in epoch]})
    return {"workers": workers, "epochs": epochs, "utilisation": list(utils), "rows": rows}


def t4_markdown(table: dict[str, Any]) -> str:
    """t4_table as markdown; the header says which columns are measured and which estimated."""
    w, n = table["workers"], table["epochs"]
    lines = [f"| notebook(s) | model, augmentation | GFLOP per train image (counted) | GPU compute per epoch, AMP "
             f"(**estimated**) | CPU side per epoch: train loader + val loading, {w} worker (**measured**) | "
             f"cache fill, once per session (**measured**) | epoch (estimated from both) | {n} epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        label = r["model"] + (f" (base {r['kwargs']['base_width']})" if "base_width" in r["kwargs"] else "")
        lines.append(
            f"| {', '.join(r['notebooks'])} | {label}, `{r['preset']}` | {r['gflop_per_image_train']:.1f} | "
            f"{_range(*r['gpu_epoch_s'])} | {r['cpu_train_s']:.0f} s + {r['cpu_val_s']:.0f} s | "
            f"{r['cache_fill_s']:.0f} s ({r['cache_gb']:.1f} GB) | {_range(*sorted(r['epoch_s']))} | "
            f"{_range(*sorted(r['run_min']), unit=' min')} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- CLI
def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `voc-scale` sub-command."""
    p = sub.add_parser("voc-scale", help="VOC-scale set on the genuine masks; Colab profile's CPU-side costs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help=f"{TINY['train']} train + {TINY['val']} val images")
    p.add_argument("--root", default=None, help="where the set goes (default build/voc_scale/{full,tiny}, made "
                   "when missing); an existing tree there (e.g. a real VOC root) is measured as it is")
    p.add_argument("--masks", default=str(MASKS), help="the genuine masks (voc2012-masks folder)")
    p.add_argument("--gen-workers", type=int, default=2, help="processes rendering the images")
    p.add_argument("--generate-only", action="store_true", help="make the set, measure nothing")
    p.add_argument("--presets", default="none,paper,strong", help="augmentation presets to measure")
    p.add_argument("--workers", default="0,1,2", help="loader workers to measure")
    p.add_argument("--no-eval", action="store_true", help="skip evaluating the val split")
    p.add_argument("--t4-table", metavar="JSON", default=None,
                   help="print the README's T4 table from a saved result (measures nothing)")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Make the set (unless --root is a real VOC), measure it, print a summary; or print the T4 table."""
    if args.t4_table:
        table = t4_table(json.loads(Path(args.t4_table).read_text()))
        print(t4_markdown(table))
        if Path(args.json) == RESULTS / "voc_scale.json":  # never overwrite the measurement with its table
            args.json = str(RESULTS / "voc_scale_t4.json")
        return table
    if args.tiny and Path(args.json) == RESULTS / "voc_scale.json":  # a tiny run never replaces the real one
        args.json = str(RESULTS / "voc_scale_tiny.json")
    root = Path(args.root) if args.root else default_root(args.tiny)
    if not args.root or not (root / "VOCdevkit").exists():  # an existing --root tree is measured as it is
        make_voc_scale(root, args.masks, args.tiny, args.gen_workers)
    s = read_marker(root)
    if s is not None:
        print(f"{root}: {s['train']} train + {s['val']} val, JPEG mean {s['jpeg_bytes_mean'] / 1000:.0f} KB "
              f"({s['bits_per_pixel_mean']:.2f} bits/pixel), made in {s['seconds']} s")
    if args.generate_only:
        return {"benchmark": "voc-scale", "data_root": str(root), "set": s, "machine": machine_info()}
    r = bench_voc_scale(root, [x for x in args.presets.split(",") if x],
                        [int(x) for x in args.workers.split(",") if x], evaluation=not args.no_eval)
    for preset, m in r["presets"].items():
        f = m["cache_fill"]
        gb = (m["cache_bytes"]["train"] + m["cache_bytes"]["val"]) / 1e9
        peak = m["rss_bytes"]["peak_process"] / 1e9
        print(f"{preset}: cache fill {f['total_s']:.1f} s ({gb:.2f} GB), peak RSS {peak:.2f} GB")
        for k, lm in m["loader"].items():
            print(f"  {k}: train {lm['train_images_per_s']:.0f} img/s, val {lm['val_images_per_s']:.0f} img/s, "
                  f"peak PSS {lm['peak_tree_pss_bytes'] / 1e9:.2f} GB")
    if "eval" in r:
        e = r["eval"]
        print(f"evaluate {e['images']} val images: {e['images_per_s']:.1f} img/s; "
              + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in e["split_seconds"].items()))
    print(f"load average {r['machine']['loadavg']} -> {r['loadavg_end']}")
    return r
