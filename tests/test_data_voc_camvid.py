"""VOC and CamVid readers: the real masks in ../shared/data (read in place, never copied) and a tiny synthetic VOC
tree built here for every error path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CAMVID, SHARED, VOC_MASKS, requires_camvid, requires_voc, save_index_png, save_jpeg
from PIL import Image

import starter_code
from starter_code.data import build_dataset
from starter_code.data.camvid import camvid_dataset
from starter_code.data.classes import VOC_INFO, voc_palette
from starter_code.data.dataset import DataError, SegmentationDataset, load_mask
from starter_code.data.stats import class_stats, class_weights
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

# camvid/README.md: train pixels and images per class, void (11) separately, and the recomputed median weights
CAMVID_TRAIN_PIXELS = [10682767, 14750079, 623349, 20076880, 2845085, 6166762, 743859, 714595, 3719877, 405385,
                       184967]
CAMVID_TRAIN_IMAGES = [366, 365, 366, 367, 349, 319, 351, 173, 360, 317, 201]
CAMVID_TRAIN_VOID = 2503995
CAMVID_TRAIN_TOTAL = 63417600
CAMVID_MEDIAN_WEIGHTS = [0.2793, 0.2017, 4.7865, 0.1490, 1.0000, 0.4217, 3.8467, 1.9736, 0.7889, 6.3747, 8.8587]

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


# -------------------------------------------------------------------------------------------- real CamVid
@requires_camvid
@pytest.mark.parametrize(("split", "n"), [("train", 367), ("val", 101)])
def test_camvid_pairs_sizes_and_void_mapping(split, n):
    ds = camvid_dataset(CAMVID, split)
    assert len(ds) == n
    assert ds.uniform_size
    for img_path, mask_path in zip(ds.images, ds.masks):
        assert img_path.parent.name == split and mask_path.parent.name == f"{split}annot"
        assert img_path.name == mask_path.name and img_path.is_file() and mask_path.is_file()
    for i in range(n):
        image, mask = ds.read(i)  # decodes the image and checks the sizes match
        assert image.shape == (360, 480, 3) and mask.shape == (360, 480)
        with Image.open(ds.masks[i]) as im:
            assert im.mode == "L"
            raw = np.array(im)
        assert raw.max() <= 11 and not (raw == 255).any()
        assert not (mask == 11).any()  # void 11 never survives ...
        assert set(np.unique(mask).tolist()) <= set(range(11)) | {255}
        assert int((mask == 255).sum()) == int((raw == 11).sum())  # ... it becomes 255, pixel for pixel
        keep = raw != 11
        assert np.array_equal(mask[keep], raw[keep])  # and nothing else changes
    for i in (0, n - 1):
        img_t, mask_t = ds[i]
        assert tuple(img_t.shape) == (3, 360, 480) and img_t.dtype == torch.float32
        assert tuple(mask_t.shape) == (360, 480) and mask_t.dtype == torch.int64


@requires_camvid
def test_camvid_train_stats_and_median_weights_match_the_readme():
    st = class_stats(camvid_dataset(CAMVID, "train"), cache_dir=None, progress=False)
    assert st["pixels"] == CAMVID_TRAIN_PIXELS
    assert st["images"] == CAMVID_TRAIN_IMAGES
    assert st["void_pixels"] == CAMVID_TRAIN_VOID
    assert st["void_images"] == 367
    assert st["total_pixels"] == CAMVID_TRAIN_TOTAL
    weights = class_weights(st, "median")
    assert [round(w, 4) for w in weights] == pytest.approx(CAMVID_MEDIAN_WEIGHTS, abs=1e-9)


@requires_camvid
def test_build_dataset_camvid_eval_and_train_presets():
    val = build_dataset("camvid", CAMVID, "val", "eval", None, limit=2)
    assert len(val) == 2 and tuple(val[1][0].shape) == (3, 360, 480)
    train = build_dataset("camvid", CAMVID, "train", "strong", 96, limit=1)
    torch.manual_seed(0)
    img, mask = train[0]
    assert tuple(img.shape) == (3, 96, 96) and tuple(mask.shape) == (96, 96)
    assert set(mask.unique().tolist()) <= set(range(11)) | {255}


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
