"""Class statistics from masks only (no image decoding), cached as JSON next to the data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .classes import IGNORE_INDEX
from .dataset import SegmentationDataset, load_mask


def class_stats(ds: SegmentationDataset, cache_dir: str | Path | None = "auto", progress: bool = True) -> dict:
    """Per-class pixel counts and image counts over a dataset's masks, void (255) counted separately.

    Returns {"classes", "pixels", "images", "void_pixels", "total_pixels", "num_masks"}. Cached in
    `cache_dir` ("auto" = the masks' folder when writable; None = no cache) under a key of the mask list.
    """
    stamp = []
    for p in ds.masks:  # size and mtime in the key: regenerated masks are recounted
        try:
            st = os.stat(p)
            stamp.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            stamp.append(str(p))
    key = hashlib.sha1("\n".join(stamp).encode()).hexdigest()[:16]
    cache_file = None
    if cache_dir == "auto":
        cache_dir = Path(ds.masks[0]).parent if len(ds) else None
        # never write into a folder marked read-only (shared data), even as root, which os.access would allow
        if cache_dir is not None and not (cache_dir.is_dir() and os.stat(cache_dir).st_mode & 0o222):
            cache_dir = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f".class_stats_{ds.info.name}_{key}.json"
        if cache_file.is_file():
            return json.loads(cache_file.read_text())
    n = ds.info.num_classes
    pixels = np.zeros(256, dtype=np.int64)
    images = np.zeros(256, dtype=np.int64)
    image_pixels = np.zeros(256, dtype=np.int64)  # pixels of the images that contain each value
    for path in tqdm(ds.masks, desc="class stats", disable=not progress, leave=False):
        m = load_mask(path, ds.info.palette)
        if ds.info.file_void != IGNORE_INDEX:
            m = np.where(m == ds.info.file_void, IGNORE_INDEX, m)
        counts = np.bincount(m.ravel(), minlength=256)
        pixels += counts
        images += counts > 0
        image_pixels += (counts > 0) * m.size
    out = {
        "classes": list(ds.info.classes),
        "pixels": pixels[:n].tolist(),
        "images": images[:n].tolist(),
        "image_pixels": image_pixels[:n].tolist(),
        "void_pixels": int(pixels[IGNORE_INDEX]),
        "void_images": int(images[IGNORE_INDEX]),
        "total_pixels": int(pixels.sum()),
        "num_masks": len(ds),
    }
    if cache_file is not None:
        tmp = cache_file.with_suffix(f".tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(out))
            os.replace(tmp, cache_file)
        except OSError:  # a cache is an optimisation: never fail the caller over it
            tmp.unlink(missing_ok=True)
    return out


def class_weights(stats: dict, method: str = "inverse", clip: float | None = None, eps: float = 1.0) -> list[float]:
    """Loss weights per class from `class_stats` output.

    - inverse: the report's 1/(count+eps), normalised to average 1 over the classes present in train;
    - median: median-frequency balancing (Eigen & Fergus; SegNet): freq_c = pixels_c / pixels of the images
      containing c, weight_c = median(freq) / freq_c.
    Classes absent from train get weight 0 (they cannot be learned; a weight would only add noise).
    `clip` caps weights at that value (after normalisation).
    """
    pixels = np.asarray(stats["pixels"], dtype=np.float64)
    present = pixels > 0
    w = np.zeros_like(pixels)
    if method == "inverse":
        # BEGIN SOLUTION
        # HINT: w = 1 / (pixels + eps) on present classes, then divide by their mean
        w[present] = 1.0 / (pixels[present] + eps)
        w[present] /= w[present].mean()
        # END SOLUTION
    elif method == "median":
        if "image_pixels" not in stats:
            raise ValueError("median-frequency weights need 'image_pixels' (pixels of the images containing each "
                             "class); recompute the stats with class_stats()")
        # BEGIN SOLUTION
        # HINT: freq = pixels / image_pixels on present classes; w = median(freq) / freq
        freq = pixels[present] / np.asarray(stats["image_pixels"], dtype=np.float64)[present]
        w[present] = np.median(freq) / freq
        # END SOLUTION
    else:
        raise ValueError(f"unknown class-weight method {method!r}; expected inverse or median")
    if clip is not None:
        w = np.minimum(w, clip)
    return w.tolist()
