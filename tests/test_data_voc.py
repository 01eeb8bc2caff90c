"""data/voc.py: VOC tree discovery, split lists and the real masks in ../shared/data (read in place, never
copied), plus a tiny synthetic VOC tree for the error paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import VOC_MASKS, requires_voc
from PIL import Image

from starter_code.data.classes import VOC_INFO, voc_palette
from starter_code.data.dataset import DataError, SegmentationDataset, load_mask
from starter_code.data.stats import class_stats
from starter_code.data.voc import find_voc_dir, read_split, voc_dataset

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# ------------------------------------------------------------------------------------ README tables (exact)
# voc2012-masks/README.md, "Per-class statistics": value -> (train pixels, train images, val pixels, val images)
VOC_TABLE = {
    0: (182014429, 1460, 179546198, 1443),
    1: (1780580, 88, 1923813, 90),
    2: (758311, 65, 812837, 79),
    3: (2232247, 105, 2151885, 103),
    4: (1514260, 78, 1348653, 72),
    5: (1517186, 87, 1921777, 96),
    6: (4375622, 78, 4320752, 74),
    7: (3494749, 128, 3593454, 127),
    8: (6752515, 131, 5720951, 119),
    9: (2861091, 148, 2114193, 123),
    10: (2060925, 64, 2966844, 71),
    11: (3381632, 82, 2864750, 75),
    12: (4344951, 121, 5034389, 128),
    13: (2283739, 68, 2641937, 79),
    14: (2888641, 81, 2587440, 76),
    15: (11995853, 442, 12999623, 446),
    16: (1670340, 82, 1234562, 85),
    17: (2254463, 63, 1932805, 57),
    18: (3612229, 93, 3479235, 90),
    19: (3984238, 83, 3919005, 84),
    20: (2349235, 83, 1771754, 74),
    255: (14335564, 1464, 14232845, 1449),
}
VOC_TOTAL = {"train": (262462800, 1464), "val": (259119702, 1449)}

SAMPLE_ID = "2007_000129"


# ----------------------------------------------------------------------------------------- real VOC masks
@requires_voc
@pytest.mark.parametrize("split", ["train", "val"])
def test_every_voc_mask_loads_as_palette_indices_with_valid_values(split):
    ds = voc_dataset(VOC_MASKS, split, masks_only=True)
    n_images = VOC_TOTAL[split][1]
    assert len(ds) == len(ds.masks) == n_images
    assert ds.masks[0].parent == VOC_MASKS / "SegmentationClass"
    counts = np.zeros(256, dtype=np.int64)
    images = np.zeros(256, dtype=np.int64)
    for path in ds.masks:
        with Image.open(path) as im:
            assert im.mode == "P", path  # palette masks; the value IS the class index
        m = load_mask(path)
        assert m.dtype == np.uint8 and m.ndim == 2, path
        c = np.bincount(m.ravel(), minlength=256)
        assert c[21:255].sum() == 0, (path, np.nonzero(c[21:255])[0] + 21)  # only {0..20, 255}
        assert c[255] > 0, path  # every official mask has its void boundary
        counts += c
        images += c > 0
    # the README's per-class table for this split, to the pixel
    col = 0 if split == "train" else 2
    assert {v: int(counts[v]) for v in VOC_TABLE} == {v: row[col] for v, row in VOC_TABLE.items()}
    assert {v: int(images[v]) for v in VOC_TABLE} == {v: row[col + 1] for v, row in VOC_TABLE.items()}
    assert int(counts.sum()) == VOC_TOTAL[split][0]


@requires_voc
def test_voc_splits_are_disjoint_and_the_dataset_refuses_images_it_does_not_have():
    train, val = read_split(VOC_MASKS, "train"), read_split(VOC_MASKS, "val")
    assert (len(train), len(val)) == (1464, 1449)
    assert not set(train) & set(val)
    assert SAMPLE_ID in val
    assert find_voc_dir(VOC_MASKS) == VOC_MASKS  # the folder itself holds ImageSets/
    ds = voc_dataset(VOC_MASKS, "val", masks_only=True)
    with pytest.raises(DataError, match="masks only"):
        ds[0]


@requires_voc
def test_voc_mode_p_masks_keep_their_indices_not_their_colours():
    pal = voc_palette()
    ids = read_split(VOC_MASKS, "train")[:5] + [SAMPLE_ID]
    for i in ids:
        path = VOC_MASKS / "SegmentationClass" / f"{i}.png"
        with Image.open(path) as im:
            assert im.mode == "P"
            raw = np.array(im)
            file_pal = np.array(im.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
            rgb = np.array(im.convert("RGB"))
        assert np.array_equal(file_pal[:21], pal[:21]) and np.array_equal(file_pal[255], pal[255])
        for palette in (None, VOC_INFO.palette):  # with or without a palette: indices, never colours
            m = load_mask(path, palette)
            assert m.shape == raw.shape and np.array_equal(m, raw)
        assert np.array_equal(pal[m], rgb)  # and the indices are the ones the colours stand for


@requires_voc
def test_voc_train_class_stats_match_the_readme_exactly():
    st = class_stats(voc_dataset(VOC_MASKS, "train", masks_only=True), cache_dir=None, progress=False)
    assert st["pixels"] == [VOC_TABLE[c][0] for c in range(21)]
    assert st["images"] == [VOC_TABLE[c][1] for c in range(21)]
    assert st["void_pixels"] == 14335564
    assert st["void_images"] == 1464
    assert st["total_pixels"] == 262462800
    assert st["num_masks"] == 1464
    assert st["classes"] == list(VOC_INFO.classes)


@requires_voc
def test_voc_sample_pair_loads_aligned_through_segmentation_dataset():
    sample = VOC_MASKS / "sample"
    image_path = sample / "JPEGImages" / f"{SAMPLE_ID}.jpg"
    mask_path = sample / "SegmentationClass" / f"{SAMPLE_ID}.png"
    ds = SegmentationDataset([image_path], [mask_path], VOC_INFO, [SAMPLE_ID])
    image, mask = ds.read(0)
    assert image.shape == (500, 334, 3) and image.dtype == np.uint8  # 334 wide x 500 high
    assert mask.shape == (500, 334)
    assert set(np.unique(mask).tolist()) == {0, 2, 15, 255}
    official = load_mask(VOC_MASKS / "SegmentationClass" / f"{SAMPLE_ID}.png")
    assert np.array_equal(mask, official)  # the mode-L sample mask equals the official palette mask
    img_t, mask_t = ds[0]  # default eval transform, native size
    assert img_t.dtype == torch.float32 and tuple(img_t.shape) == (3, 500, 334)
    assert mask_t.dtype == torch.int64 and torch.equal(mask_t, torch.from_numpy(official).long())
    # the image really is this mask's picture: the person (15) and bicycle (2) regions differ from background
    means = {c: image[mask == c].mean(0) for c in (0, 2, 15)}
    assert np.abs(means[15] - means[0]).max() > 10


# ------------------------------------------------------------------------------------ synthetic VOC tree
def test_find_voc_dir_accepts_the_root_or_the_voc2012_folder(tmp_path, voc_tree):
    assert voc_tree == tmp_path / "VOCdevkit" / "VOC2012"
    assert find_voc_dir(tmp_path) == voc_tree
    assert find_voc_dir(str(voc_tree)) == voc_tree
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="VOCdevkit/VOC2012") as exc:
        find_voc_dir(empty)
    assert str(empty) in str(exc.value)


def test_synthetic_tree_loads(tmp_path, voc_tree):
    ds = voc_dataset(tmp_path, "train")
    assert ds.ids == ["2000_000001", "2000_000002"]
    assert not ds.uniform_size  # real-VOC tree (no SYNTHETIC.json): sizes may vary
    img, mask = ds[1]
    assert tuple(img.shape) == (3, 10, 12) and img.dtype == torch.float32
    assert torch.equal(mask, torch.from_numpy(load_mask(voc_tree / "SegmentationClass" / "2000_000002.png")).long())
    assert mask[0].eq(255).all() and int(mask[1:].max()) <= 20
    assert len(voc_dataset(voc_tree, "val")) == 1


def test_missing_split_list_names_the_file(tmp_path, voc_tree):
    with pytest.raises(DataError) as exc:
        voc_dataset(tmp_path, "test")
    msg = str(exc.value)
    assert str(voc_tree / "ImageSets" / "Segmentation" / "test.txt") in msg
    assert "train, val" in msg  # and says which splits exist


def test_duplicate_and_empty_split_lists_are_refused(voc_tree):
    lst = voc_tree / "ImageSets" / "Segmentation" / "train.txt"
    lst.write_text("2000_000001\n2000_000002\n2000_000001\n")
    with pytest.raises(DataError, match="duplicate") as exc:
        read_split(voc_tree, "train")
    assert str(lst) in str(exc.value) and "2000_000001" in str(exc.value)
    lst.write_text("\n\n")
    with pytest.raises(DataError, match="empty") as exc:
        read_split(voc_tree, "train")
    assert str(lst) in str(exc.value)


@requires_voc
def test_real_sample_via_a_symlinked_tree(tmp_path):
    """voc_dataset over a tmp tree whose files are symlinks to the shared sample (nothing copied)."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for sub, name in (("JPEGImages", f"{SAMPLE_ID}.jpg"), ("SegmentationClass", f"{SAMPLE_ID}.png")):
        (voc / sub).mkdir(parents=True)
        (voc / sub / name).symlink_to(VOC_MASKS / "sample" / sub / name)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text(f"{SAMPLE_ID}\n")
    ds = voc_dataset(tmp_path, "val", transform=None)
    img, mask = ds[0]
    assert tuple(img.shape) == (3, 500, 334) and set(mask.unique().tolist()) == {0, 2, 15, 255}
    assert not any(p.is_file() and not p.is_symlink() for p in (voc / "JPEGImages").iterdir())
