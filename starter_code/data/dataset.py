"""The one dataset class: a list of (image, mask) files plus what the dataset means (classes, palette, void)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .classes import IGNORE_INDEX, DatasetInfo
from .transforms import Pair, build_transform, normalize, to_tv


class DataError(ValueError):
    """A problem with the data on disk; the message names the file and the fix."""

    def __init__(self, msg: object = "", *args: object) -> None:
        # A DataLoader worker's error is re-raised in the main process as DataError("Caught DataError in DataLoader
        # worker process N.\nOriginal Traceback ...\n...DataError: <message>"): keep just the original one line.
        if isinstance(msg, str) and msg.startswith("Caught DataError in DataLoader worker"):
            msg = msg.rstrip().splitlines()[-1].split("DataError: ", 1)[-1]
        super().__init__(msg, *args)


def load_image(path: str | Path) -> np.ndarray:
    """An RGB image as uint8 HxWx3; a corrupt or truncated file raises DataError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing; re-download or regenerate the dataset") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e}); the file is corrupt or truncated, replace it") from None


def load_mask(path: str | Path, palette: np.ndarray | None = None) -> np.ndarray:
    """A label mask as uint8 HxW class indices, read as palette indices (never through RGB).

    An RGB-coloured mask is converted through `palette` when every colour is exactly a palette colour, else refused.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            # BEGIN SOLUTION
            # HINT: 'P'/'L' masks: the stored indices as they are (void 255 stays); 'I' as uint8; RGB(A): rgb_to_index
            if mode in ("P", "L"):
                return np.array(im)
            if mode in ("I", "I;16") and np.asarray(im).max() <= 255:
                return np.asarray(im).astype(np.uint8)
            if mode in ("RGB", "RGBA") and palette is not None:
                return rgb_to_index(np.asarray(im.convert("RGB")), palette, path)
            # END SOLUTION
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: mask file is missing; re-download or regenerate the dataset") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode mask ({e}); the file is corrupt or truncated, replace it") from None
    raise DataError(f"{path}: mask has PIL mode {mode!r}; expected a palette ('P') or 8-bit ('L') index mask")


def rgb_to_index(rgb: np.ndarray, palette: np.ndarray, path: str | Path = "<mask>") -> np.ndarray:
    """Map an RGB-coloured mask to class indices through the palette; refuse colours not in it."""
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    pal = palette.astype(np.int32)
    pal_code = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    lut: dict[int, int] = {}
    for idx in range(len(pal_code) - 1, -1, -1):  # lowest index wins for duplicated colours
        lut[int(pal_code[idx])] = idx
    colours, inverse = np.unique(code, return_inverse=True)
    missing = [c for c in colours.tolist() if c not in lut]
    if missing:
        shown = ", ".join(f"({c >> 16},{(c >> 8) & 255},{c & 255})" for c in missing[:3])
        raise DataError(f"{path}: RGB mask has colours that are not in the palette ({shown}); "
                        "save masks as palette/index PNGs")
    return np.array([lut[c] for c in colours.tolist()], dtype=np.uint8)[inverse].reshape(code.shape)


class SegmentationDataset(Dataset):
    """(image, mask) pairs; returns a normalised float image CxHxW and an int64 mask HxW (void = 255)."""

    def __init__(
        self,
        images: Sequence[Path | None],
        masks: Sequence[Path],
        info: DatasetInfo,
        ids: Sequence[str],
        transform: Callable[[torch.Tensor, torch.Tensor], Pair] | None = None,
        cache: bool = False,
        cache_size: int | None = None,
        uniform_size: bool = False,
    ) -> None:
        if not (len(images) == len(masks) == len(ids)):
            raise ValueError("images, masks and ids must have the same length")
        self.images, self.masks, self.ids = list(images), list(masks), list(ids)
        self.info = info
        self.transform = transform if transform is not None else build_transform("eval", None)
        self.cache = cache  # keep decoded uint8 pairs in memory (per worker process)
        self.cache_size = cache_size  # ... resized to this shorter side first (training sets only)
        self.uniform_size = uniform_size  # every image has the same H x W (lets evaluation batch them)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw pair as uint8 arrays (HxWx3 image, HxW mask with void mapped to 255), checked for sizes."""
        mask = load_mask(self.masks[index], self.info.palette)
        bad = (mask >= self.info.num_classes) & (mask != self.info.file_void)  # checked on the values in the file
        if self.info.file_void != IGNORE_INDEX:
            mask = mask.copy()
            mask[mask == self.info.file_void] = IGNORE_INDEX
        if bad.any():
            vals = sorted(set(np.unique(mask[bad]).tolist()))[:5]
            raise DataError(f"{self.masks[index]}: mask values {vals} are outside the {self.info.name} classes "
                            f"0..{self.info.num_classes - 1} and void {self.info.file_void}; fix or remove the file")
        if self.images[index] is None:
            raise DataError(f"{self.masks[index]}: this dataset has masks only (no JPEGImages); no images to train on")
        image = load_image(self.images[index])
        if image.shape[:2] != mask.shape:
            raise DataError(f"{self.masks[index]}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                            f"{Path(self.images[index]).name} is {image.shape[1]}x{image.shape[0]}; they must match: "
                            "re-export the mask at the image's size or drop the id from the split list")
        return image, mask

    def _pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index in self._cache:
            return self._cache[index]
        image, mask = self.read(index)
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        msk = torch.from_numpy(mask)
        if self.cache:
            from torchvision.transforms.v2 import functional as TF

            if self.cache_size is not None and min(img.shape[-2:]) > self.cache_size:  # never upscale
                img = TF.resize(img, self.cache_size, antialias=True)
                msk = TF.resize(msk[None], self.cache_size, interpolation=TF.InterpolationMode.NEAREST)[0]
            self._cache[index] = (img, msk)
        return img, msk

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The item, augmented afresh on every call: each epoch sees a new draw of `self.transform`."""
        # BEGIN SOLUTION
        # HINT: the decoded pair from self._pair (cached), self.transform(*to_tv(...)) on every call, normalize, int64
        img, msk = self._pair(index)
        img, msk = self.transform(*to_tv(img, msk))
        return normalize(img.as_subclass(torch.Tensor)), msk.as_subclass(torch.Tensor).long()
        # END SOLUTION

    def fill_cache(self, progress: bool = True) -> None:
        """Decode every pair into the cache now, in this process: DataLoader workers forked later share it
        (copy-on-write) instead of each decoding its own copy and losing it when the epoch's loader ends."""
        if not self.cache:
            return
        missing = [i for i in range(len(self)) if i not in self._cache]
        for i in tqdm(missing, desc=f"caching {self.info.name} images", leave=False, disable=not progress):
            self._pair(i)

    def head(self, n: int) -> SegmentationDataset:
        """The first `n` samples (smoke runs), same transform and info."""
        return SegmentationDataset(self.images[:n], self.masks[:n], self.info, self.ids[:n], self.transform,
                                   self.cache, self.cache_size, self.uniform_size)

    def __repr__(self) -> str:
        return f"SegmentationDataset({self.info.name}, {len(self)} images, transform={self.transform})"
