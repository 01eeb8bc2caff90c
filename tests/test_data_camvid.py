"""data/camvid.py: the real CamVid pairs in ../shared/data (read in place, never copied), void mapping, README
statistics, and build_dataset on CamVid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CAMVID, requires_camvid
from PIL import Image

from starter_code.data import build_dataset
from starter_code.data.camvid import camvid_dataset
from starter_code.data.stats import class_stats, class_weights

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# ------------------------------------------------------------------------------------ README tables (exact)
# camvid/README.md: train pixels and images per class, void (11) separately, and the recomputed median weights
CAMVID_TRAIN_PIXELS = [10682767, 14750079, 623349, 20076880, 2845085, 6166762, 743859, 714595, 3719877, 405385,
                       184967]
CAMVID_TRAIN_IMAGES = [366, 365, 366, 367, 349, 319, 351, 173, 360, 317, 201]
CAMVID_TRAIN_VOID = 2503995
CAMVID_TRAIN_TOTAL = 63417600
CAMVID_MEDIAN_WEIGHTS = [0.2793, 0.2017, 4.7865, 0.1490, 1.0000, 0.4217, 3.8467, 1.9736, 0.7889, 6.3747, 8.8587]


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
