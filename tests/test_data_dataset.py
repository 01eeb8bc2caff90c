"""data/dataset.py: load_mask (palette, greyscale and RGB masks), one-line errors for bad or corrupt files,
SegmentationDataset's cache, and where the shared real data is looked up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CAMVID, SHARED, VOC_MASKS, make_voc_tree, requires_camvid, requires_voc, save_index_png, save_jpeg
from PIL import Image

import starter_code
from starter_code.data import cache_size_for
from starter_code.data.classes import VOC_INFO, voc_palette
from starter_code.data.dataset import DataError, SegmentationDataset, load_mask
from starter_code.data.transforms import build_transform
from starter_code.data.voc import voc_dataset

pytestmark = pytest.mark.usefixtures("torch_single_thread")


# ----------------------------------------------------------------------------- masks and bad files (synthetic VOC tree)
def test_mask_value_out_of_range_names_the_file(tmp_path, voc_tree):
    bad = voc_tree / "SegmentationClass" / "2000_000002.png"
    m = np.zeros((10, 12), dtype=np.uint8)
    m[3, 4] = 30
    save_index_png(bad, m)
    ds = voc_dataset(tmp_path, "train")
    ds[0]  # the good one still loads
    with pytest.raises(DataError) as exc:
        ds[1]
    assert str(bad) in str(exc.value) and "30" in str(exc.value)


def test_mask_image_size_mismatch_names_the_file(tmp_path, voc_tree):
    mask_path = voc_tree / "SegmentationClass" / "2000_000001.png"
    save_index_png(mask_path, np.zeros((11, 12), dtype=np.uint8))  # image is 10 high x 12 wide
    with pytest.raises(DataError) as exc:
        voc_dataset(tmp_path, "train")[0]
    msg = str(exc.value)
    assert str(mask_path) in msg and "2000_000001.jpg" in msg
    assert "12x11" in msg and "12x10" in msg


def test_rgb_mask_in_palette_colours_converts_to_indices(tmp_path, voc_tree):
    idx = np.array([[0, 1, 15, 255], [20, 7, 255, 0], [3, 3, 3, 3]], dtype=np.uint8)
    mask_path = voc_tree / "SegmentationClass" / "2000_000001.png"
    Image.fromarray(voc_palette()[idx]).save(mask_path)  # an RGB PNG, coloured with the VOC colours
    save_jpeg(voc_tree / "JPEGImages" / "2000_000001.jpg", (3, 4))
    with Image.open(mask_path) as im:
        assert im.mode == "RGB"
    assert np.array_equal(load_mask(mask_path, VOC_INFO.palette), idx)
    _, mask = voc_dataset(tmp_path, "train")[0]
    assert torch.equal(mask, torch.from_numpy(idx).long())


def test_rgb_mask_with_a_foreign_colour_is_refused(tmp_path, voc_tree):
    rgb = voc_palette()[np.zeros((10, 12), dtype=np.uint8)]
    rgb[2, 3] = (1, 2, 3)  # not a VOC colour
    mask_path = voc_tree / "SegmentationClass" / "2000_000001.png"
    Image.fromarray(rgb).save(mask_path)
    with pytest.raises(DataError) as exc:
        voc_dataset(tmp_path, "train")[0]
    assert str(mask_path) in str(exc.value) and "(1,2,3)" in str(exc.value)
    assert "not in the palette" in str(exc.value)
    with pytest.raises(DataError):  # without a palette an RGB mask cannot be read at all
        load_mask(mask_path)


def test_rgb_mask_refusal_does_not_blame_file_corruption(voc_tree):
    """A valid PNG in foreign colours is refused for its colours, not called corrupt (the advice would be wrong)."""
    rgb = voc_palette()[np.zeros((4, 4), dtype=np.uint8)]
    rgb[0, 0] = (1, 2, 3)
    mask_path = voc_tree / "SegmentationClass" / "2000_000001.png"
    Image.fromarray(rgb).save(mask_path)
    with pytest.raises(DataError) as exc:
        load_mask(mask_path, VOC_INFO.palette)
    assert "corrupt" not in str(exc.value)


def test_mask_in_a_foreign_palette_still_reads_as_indices(tmp_path):
    idx = np.array([[0, 5, 255], [12, 0, 1]], dtype=np.uint8)
    path = tmp_path / "m.png"
    im = Image.fromarray(idx)
    im.putpalette([v for i in range(256) for v in (255 - i, i, 0)])  # not the VOC colours
    im.save(path)
    assert np.array_equal(load_mask(path, VOC_INFO.palette), idx)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_corrupt_or_missing_jpeg_names_the_file(tmp_path, voc_tree, damage):
    jpg = voc_tree / "JPEGImages" / "2000_000002.jpg"
    save_jpeg(jpg, (10, 12), seed=5)
    if damage == "garbage":
        jpg.write_bytes(b"\xff\xd8 this is not a jpeg" * 10)
    elif damage == "truncated":
        jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    else:
        jpg.unlink()
    ds = voc_dataset(tmp_path, "train")
    ds[0]
    with pytest.raises(DataError) as exc:
        ds[1]
    assert str(jpg) in str(exc.value)
    assert ("missing" if damage == "missing" else "corrupt") in str(exc.value)


def test_corrupt_mask_names_the_file(tmp_path, voc_tree):
    png = voc_tree / "SegmentationClass" / "2000_000001.png"
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(DataError) as exc:
        voc_dataset(tmp_path, "train")[0]
    assert str(png) in str(exc.value)


# ------------------------------------------------------------------------------------------------------------ cache
def test_cache_size_keeps_what_each_preset_needs():
    assert cache_size_for("eval", 224) is None and cache_size_for("none", None) is None
    assert cache_size_for("none", 224) == 224 and cache_size_for("paper", 224) == 224
    assert cache_size_for("strong", 224) == 448  # scale jitter reaches 2x the training size


@pytest.mark.parametrize("preset,cache_size,expected_hw", [
    ("none", 40, (40, 57)),     # downscaled to the shorter side
    ("strong", 160, (90, 130)),  # never upscaled: native kept
])
def test_fill_cache_decodes_once_and_forked_workers_use_it(tmp_path, preset, cache_size, expected_hw):
    ids = ["a", "b", "c"]
    make_voc_tree(tmp_path, {"train": ids}, hw=(90, 130))
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    ds = SegmentationDataset([voc / "JPEGImages" / f"{i}.jpg" for i in ids],
                             [voc / "SegmentationClass" / f"{i}.png" for i in ids], VOC_INFO, ids,
                             transform=build_transform("eval", None), cache=True, cache_size=cache_size)
    reference = [ds.read(i) for i in range(3)]
    ds.fill_cache(progress=False)
    assert sorted(ds._cache) == [0, 1, 2]
    for i, (img, msk) in ds._cache.items():
        assert tuple(img.shape[-2:]) == expected_hw and tuple(msk.shape) == expected_hw
        if expected_hw == (90, 130):
            assert torch.equal(msk, torch.from_numpy(reference[i][1]))

    def no_disk(index):
        raise AssertionError("read from disk after fill_cache")

    ds.read = no_disk  # a forked worker inherits this: any disk read fails the test
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1, multiprocessing_context="fork")
    images, masks = next(iter(loader))
    assert tuple(masks.shape) == (3, *expected_hw)
    assert torch.equal(masks, torch.stack([ds._cache[i][1] for i in range(3)]).long())


# ------------------------------------------------------------------------------------------------------- shared data
def test_shared_data_is_next_to_the_repository_and_skips_only_when_absent():
    """The real data is looked up one level above the repository root (the folder holding the starter_code
    package), and the shared-data tests skip exactly when that folder is absent: when it is there, both
    datasets must be complete rather than silently skipped."""
    repo = Path(starter_code.__file__).resolve().parents[1]
    assert SHARED == repo.parent / "shared" / "data"
    assert VOC_MASKS == SHARED / "voc2012-masks" and CAMVID == SHARED / "camvid"
    for marker in (requires_voc, requires_camvid):
        assert marker.name == "skipif" and marker.args == (not SHARED.is_dir(),)
    if SHARED.is_dir():
        for folder in (VOC_MASKS / "SegmentationClass", VOC_MASKS / "ImageSets" / "Segmentation",
                       VOC_MASKS / "sample", CAMVID / "train", CAMVID / "trainannot"):
            assert folder.is_dir(), f"{folder} is missing from the shared data"
