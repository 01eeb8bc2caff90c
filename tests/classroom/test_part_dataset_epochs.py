"""Part dataset_epochs (10 points): `SegmentationDataset.__getitem__` augments afresh on every call, so each epoch
sees a new draw, also when the decoded pairs are cached. Public tests: small fixed examples (the grader checks the
same properties on fresh random inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from starter_code.data.classes import VOC_INFO
from starter_code.data.dataset import SegmentationDataset
from starter_code.data.transforms import IMAGENET_MEAN, IMAGENET_STD

IMAGE = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
MASK = np.array([[0, 1, 2, 3, 4, 5]] * 3 + [[255] * 6], dtype=np.uint8)


class Given(SegmentationDataset):
    """One (image, mask) pair held in memory instead of files."""

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return IMAGE.copy(), MASK.copy()


class RandomFlip:
    """Flip image and mask together, left-right, half of the time."""

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if bool(torch.rand(()) < 0.5):
            return image.flip(-1), mask.flip(-1)
        return image, mask


def _ds(transform=None, cache: bool = False) -> Given:
    return Given(["a.jpg"], ["a.png"], VOC_INFO, ["a"], transform=transform, cache=cache)


def test_eval_item_is_normalised_float_image_and_int64_mask() -> None:
    image, mask = _ds()[0]
    assert image.dtype == torch.float32 and image.shape == (3, 4, 6)
    assert mask.dtype == torch.int64 and mask.tolist() == MASK.tolist()
    expected = (IMAGE[1, 2] / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert image[:, 1, 2].tolist() == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.parametrize("cache", [False, True])
def test_each_epoch_draws_a_new_augmentation(cache: bool) -> None:
    ds = _ds(RandomFlip(), cache)
    torch.manual_seed(0)
    masks = [ds[0][1] for _ in range(20)]
    flipped = [m[0, 0].item() == 5 for m in masks]
    assert any(flipped) and not all(flipped), "20 reads of one item must not all be the same draw"
    for image, mask in (ds[0] for _ in range(5)):  # image and mask flipped together
        assert (image[0, 0, 0] < image[0, 0, -1]) == (mask[0, 0] < mask[0, -1])
