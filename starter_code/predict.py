"""Predictions written to disk: class-index PNGs (and, for your own images, overlays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .data.classes import DatasetInfo


def save_index_png(pred: np.ndarray, path: str | Path, info: DatasetInfo) -> None:
    """Pixel value = class index: a palette PNG for VOC/synthetic (opens coloured), 8-bit grey for CamVid."""
    im = Image.fromarray(pred.astype(np.uint8), mode="P" if info.name == "voc" else "L")
    if info.name == "voc":
        im.putpalette(info.palette.flatten().tolist())
    im.save(path)
