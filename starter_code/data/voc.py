"""PASCAL VOC 2012 segmentation reader (also reads the synthetic set, which is written in the same layout)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .classes import VOC_INFO
from .dataset import DataError, SegmentationDataset
from .transforms import Pair

VOC_LAYOUT = ("expected layout ROOT/VOCdevkit/VOC2012/{JPEGImages/<id>.jpg, SegmentationClass/<id>.png, "
              "ImageSets/Segmentation/{train,val,trainval}.txt}; get it with `python -m starter_code data "
              "download-voc --root ROOT` (or `data synthetic --root ROOT` for the offline synthetic set)")


def find_voc_dir(root: str | Path) -> Path:
    """The VOC2012 folder: ROOT/VOCdevkit/VOC2012, ROOT/VOC2012 (ROOT = VOCdevkit), or ROOT itself."""
    root = Path(root)
    for cand in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (cand / "ImageSets" / "Segmentation").is_dir():
            return cand
    raise DataError(f"{root}: no VOC segmentation data here; {VOC_LAYOUT}")


def read_split(voc_dir: str | Path, split: str) -> list[str]:
    """The ids of an official split list (train, val, trainval, or any explicit list file such as test)."""
    path = Path(voc_dir) / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not path.is_file():
        have = sorted(p.stem for p in path.parent.glob("*.txt"))
        raise DataError(f"{path}: split list not found; available splits: {', '.join(have) or 'none'}")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: split list is empty; regenerate or re-download the dataset")
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise DataError(f"{path}: duplicate ids {dupes[:5]}; each id must appear once")
    return ids


def voc_dataset(
    root: str | Path,
    split: str,
    transform: Callable[[torch.Tensor, torch.Tensor], Pair] | None = None,
    ids: list[str] | None = None,
    masks_only: bool = False,
    **kwargs,
) -> SegmentationDataset:
    """A VOC-layout split. Masks are palette indices, void stays 255. `masks_only` allows a tree without
    JPEGImages (label statistics, metric checks)."""
    voc_dir = find_voc_dir(root)
    ids = ids if ids is not None else read_split(voc_dir, split)
    masks = [voc_dir / "SegmentationClass" / f"{i}.png" for i in ids]
    images = [None if masks_only else voc_dir / "JPEGImages" / f"{i}.jpg" for i in ids]
    kwargs.setdefault("uniform_size", (voc_dir / "SYNTHETIC.json").is_file())  # real VOC sizes vary
    return SegmentationDataset(images, masks, VOC_INFO, ids, transform, **kwargs)
