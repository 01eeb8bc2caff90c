"""class_weights on hand-made stats, and class_stats on tiny hand-counted masks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import save_index_png

from starter_code.data.classes import CAMVID_INFO, VOC_INFO
from starter_code.data.dataset import SegmentationDataset
from starter_code.data.stats import class_stats, class_weights

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# 4 classes, class 1 absent from train
STATS = {"pixels": [100, 0, 200, 400], "image_pixels": [1000, 0, 400, 800]}


def test_inverse_weights_by_hand():
    # eps = 0: 1/100, 1/200, 1/400 -> mean 7/1200 -> 12/7, 6/7, 3/7 (mean 1 over the 3 present classes)
    assert class_weights(STATS, "inverse", eps=0.0) == pytest.approx([12 / 7, 0.0, 6 / 7, 3 / 7])


def test_inverse_weights_default_eps_formula():
    raw = [1 / (100 + 1), 1 / (200 + 1), 1 / (400 + 1)]
    mean = sum(raw) / 3
    want = [raw[0] / mean, 0.0, raw[1] / mean, raw[2] / mean]
    w = class_weights(STATS, "inverse")
    assert w == pytest.approx(want, rel=1e-12)
    assert np.mean([w[0], w[2], w[3]]) == pytest.approx(1.0)
    assert w[1] == 0.0  # absent class


def test_inverse_weights_clip():
    assert class_weights(STATS, "inverse", clip=1.0, eps=0.0) == pytest.approx([1.0, 0.0, 6 / 7, 3 / 7])
    assert class_weights(STATS, "inverse", clip=100.0, eps=0.0) == pytest.approx([12 / 7, 0.0, 6 / 7, 3 / 7])


def test_median_frequency_by_hand():
    # freq = pixels / pixels of images containing the class = 0.1, -, 0.5, 0.5 ; plus class 4: 50/1000 = 0.05
    stats = {"pixels": [100, 0, 200, 400, 50], "image_pixels": [1000, 0, 400, 800, 1000]}
    # median of [0.1, 0.5, 0.5, 0.05] = (0.1 + 0.5) / 2 = 0.3 -> weights 0.3 / freq
    assert class_weights(stats, "median") == pytest.approx([3.0, 0.0, 0.6, 0.6, 6.0])
    assert class_weights(stats, "median", clip=2.0) == pytest.approx([2.0, 0.0, 0.6, 0.6, 2.0])
    # odd number of present classes: freq 0.1, -, 0.5, 0.5 -> median 0.5 -> weights 5, 0, 1, 1
    assert class_weights(STATS, "median") == pytest.approx([5.0, 0.0, 1.0, 1.0])
    stats = {"pixels": [10, 30, 60], "image_pixels": [100, 100, 100]}
    assert class_weights(stats, "median") == pytest.approx([3.0, 1.0, 0.5])


def test_median_needs_image_pixels_and_unknown_method_raises():
    with pytest.raises(ValueError, match="image_pixels"):
        class_weights({"pixels": [1, 2]}, "median")
    with pytest.raises(ValueError, match="sqrt"):
        class_weights(STATS, "sqrt")


def test_class_stats_counts_by_hand(tmp_path):
    a = np.array([[0, 0, 1], [255, 1, 1]], dtype=np.uint8)  # 6 px: bg 2, class1 3, void 1
    b = np.array([[0, 0], [0, 3]], dtype=np.uint8)  # 4 px: bg 3, class3 1
    masks = [save_index_png(tmp_path / "m" / "a.png", a), save_index_png(tmp_path / "m" / "b.png", b, mode="L")]
    ds = SegmentationDataset([None, None], masks, VOC_INFO, ["a", "b"])
    st = class_stats(ds, cache_dir=None, progress=False)
    want_pixels = [0] * 21
    want_pixels[:4] = [5, 3, 0, 1]
    want_images = [0] * 21
    want_images[:4] = [2, 1, 0, 1]
    want_img_px = [0] * 21
    want_img_px[:4] = [10, 6, 0, 4]
    assert st["pixels"] == want_pixels
    assert st["images"] == want_images
    assert st["image_pixels"] == want_img_px
    assert (st["void_pixels"], st["void_images"], st["total_pixels"], st["num_masks"]) == (1, 1, 10, 2)
    assert st["classes"] == list(VOC_INFO.classes)
    assert not list((tmp_path / "m").glob(".class_stats*"))  # cache_dir=None writes nothing


def test_class_stats_maps_camvid_void_and_caches(tmp_path):
    m = np.array([[0, 11, 11], [10, 3, 11]], dtype=np.uint8)
    path = save_index_png(tmp_path / "annot" / "x.png", m, mode="L")
    ds = SegmentationDataset([None], [path], CAMVID_INFO, ["x"])
    cache = tmp_path / "cache"
    cache.mkdir()
    st = class_stats(ds, cache_dir=cache, progress=False)
    assert len(st["pixels"]) == 11
    assert st["pixels"][0] == st["pixels"][3] == st["pixels"][10] == 1
    assert sum(st["pixels"]) == 3
    assert (st["void_pixels"], st["total_pixels"]) == (3, 6)
    assert len(list(cache.glob(".class_stats_camvid_*.json"))) == 1
    assert class_stats(ds, cache_dir=cache, progress=False) == st  # served from the cache


def test_auto_cache_does_not_write_into_a_read_only_mask_folder(tmp_path):
    """A read-only folder (the shared data) gets no cache file, even for root, whom os.access lets write anywhere."""
    folder = tmp_path / "masks"
    path = save_index_png(folder / "a.png", np.zeros((3, 3), dtype=np.uint8))
    folder.chmod(0o555)
    try:
        ds = SegmentationDataset([None], [path], VOC_INFO, ["a"])
        st = class_stats(ds, progress=False)  # cache_dir="auto"
        assert st["pixels"][0] == 9
        assert [p.name for p in folder.iterdir()] == ["a.png"]
    finally:
        folder.chmod(0o755)
