"""Datasets, transforms, downloads and class statistics.

`build_datasets(cfg)` is the one entry point the engine, the CLI and the notebooks use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .camvid import camvid_dataset
from .classes import IGNORE_INDEX, DatasetInfo, dataset_info
from .dataset import DataError, SegmentationDataset, load_image, load_mask
from .transforms import SCALE_RANGE, build_transform
from .voc import voc_dataset

DATASETS = ("synthetic", "voc", "camvid")

__all__ = [
    "DATASETS", "IGNORE_INDEX", "DataError", "DatasetInfo", "SegmentationDataset", "build_dataset",
    "build_datasets", "build_transform", "cache_size_for", "dataset_info", "eval_size", "load_image", "load_mask",
]


def eval_size(cfg: Any) -> int | None:
    """The shorter side the model sees at evaluation (None = native resolution)."""
    return cfg.image_size if cfg.eval_size == -1 else cfg.eval_size


def cache_size_for(preset: str, size: int | None) -> int | None:
    """Shorter side the in-memory cache keeps: the training size when the preset starts by resizing to it,
    the top of the scale jitter for `scale` and `strong` (the cache never upscales), native for evaluation."""
    if preset == "eval" or size is None:
        return None
    return {"strong": 2 * size, "scale": int(SCALE_RANGE[1] * size)}.get(preset, size)


def build_dataset(
    dataset: str, data_root: str | Path, split: str, preset: str, size: int | None,
    limit: int | None = None, cache: bool = False,
) -> SegmentationDataset:
    """One split of a dataset with a transform preset ('eval', 'none', 'paper', 'strong')."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    transform = build_transform(preset, size)
    cache_size = cache_size_for(preset, size)
    if dataset == "camvid":
        ds = camvid_dataset(data_root, split, transform, cache=cache, cache_size=cache_size)
    else:
        if dataset == "synthetic" and not (Path(data_root) / "VOCdevkit").exists():
            raise DataError(f"{data_root}: no synthetic dataset here; create it with "
                            f"`python -m starter_code data synthetic --root {data_root}`")
        ds = voc_dataset(data_root, split, transform, cache=cache, cache_size=cache_size)
    return ds.head(limit) if limit is not None else ds


def build_datasets(cfg: Any, val_split: str = "val") -> tuple[SegmentationDataset, SegmentationDataset]:
    """(train, val) datasets for a Config: training crops at `image_size` with its augmentation preset,
    evaluation on the native masks."""
    train = build_dataset(cfg.dataset, cfg.data_root, "train", cfg.augment, cfg.image_size,
                          cfg.limit_train, cfg.cache)
    val = build_dataset(cfg.dataset, cfg.data_root, val_split, "eval", eval_size(cfg), cfg.limit_val, cfg.cache)
    return train, val
