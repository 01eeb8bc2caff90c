"""Find bad data before training does: one clear line per bad file."""

from __future__ import annotations

from PIL import Image
from tqdm.auto import tqdm

from .dataset import DataError, SegmentationDataset


def quick_check(ds: SegmentationDataset) -> None:
    """Fast pre-flight (file existence, sizes from headers only); raises DataError on the first problem."""
    if len(ds) == 0:
        raise DataError(f"{ds.info.name}: the split is empty; check the split list")
    for img, msk in zip(ds.images, ds.masks):
        if img is not None and not img.is_file():
            raise DataError(f"{img}: image file listed in the split is missing; re-download or fix the list")
        if not msk.is_file():
            raise DataError(f"{msk}: mask file listed in the split is missing; re-download or fix the list")
        if img is None:
            continue
        try:
            with Image.open(img) as a, Image.open(msk) as b:
                if a.size != b.size:
                    raise DataError(f"{msk}: mask is {b.size[0]}x{b.size[1]} but its image {img.name} is "
                                    f"{a.size[0]}x{a.size[1]}; they must match")
        except OSError as e:
            raise DataError(f"{img} / {msk}: cannot read the file header ({e}); the file is corrupt") from None


def check_dataset(ds: SegmentationDataset, progress: bool = True) -> list[str]:
    """Decode every pair and return one line per problem (empty list = clean). Nothing is modified."""
    if len(ds) == 0:
        return [f"{ds.info.name}: the split is empty"]
    problems = []
    for i in tqdm(range(len(ds)), desc="check", disable=not progress, leave=False):
        try:
            ds.read(i)
        except DataError as e:
            problems.append(str(e))
    return problems
