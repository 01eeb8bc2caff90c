"""Find bad data before training does: one clear line per bad file. Nothing here writes to the data folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from .dataset import DataError, SegmentationDataset


def _duplicates(ds: SegmentationDataset) -> list[str]:
    """One line naming the duplicated ids (and their mask files), or nothing."""
    dupes = sorted(i for i, n in Counter(ds.ids).items() if n > 1)
    if not dupes:
        return []
    files = sorted({str(m) for i, m in zip(ds.ids, ds.masks) if i in dupes})
    return [f"{files[0]}: id {dupes[0]!r} is listed more than once in the {ds.info.name} split "
            f"({len(dupes)} duplicated id(s): {', '.join(dupes[:5])}); each id must appear once in the split list"]


def _header_size(path: Path, what: str) -> tuple[int, int]:
    """(width, height) from the file header only; a file PIL cannot even identify raises DataError naming it."""
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what} file header ({e}); the file is corrupt, "
                        "replace it (re-download or regenerate the dataset)") from None


def quick_check(ds: SegmentationDataset) -> None:
    """Fast pre-flight before the first epoch (ids, file existence, sizes from headers only; nothing is decoded).

    Raises DataError naming the first bad file. Truncated pixel data or bad mask values are found by
    `check_dataset` (`python -m starter_code data check`) or when the loader first reads the file.
    """
    if len(ds) == 0:
        raise DataError(f"{ds.info.name}: the split is empty (0 ids); check the split list or --limit-train/val")
    dupes = _duplicates(ds)
    if dupes:
        raise DataError(dupes[0])
    for img, msk in zip(ds.images, ds.masks):
        if img is not None and not Path(img).is_file():
            raise DataError(f"{img}: image file listed in the split is missing; re-download or fix the list")
        if not Path(msk).is_file():
            raise DataError(f"{msk}: mask file listed in the split is missing; re-download or fix the list")
        if img is None:
            continue
        a, b = _header_size(Path(img), "image"), _header_size(Path(msk), "mask")
        if a != b:
            raise DataError(f"{msk}: mask is {b[0]}x{b[1]} but its image {Path(img).name} is {a[0]}x{a[1]}; they "
                            "must match: re-export the mask at the image's size or drop the id from the split list")


def check_dataset(ds: SegmentationDataset, progress: bool = True) -> list[str]:
    """Decode every pair and return one line per problem (empty list = clean). Nothing is modified."""
    if len(ds) == 0:
        return [f"{ds.info.name}: the split is empty (0 ids); check the split list"]
    problems = _duplicates(ds)
    for i in tqdm(range(len(ds)), desc="check", disable=not progress, leave=False):
        try:
            ds.read(i)
        except DataError as e:
            problems.append(str(e))
    return problems
