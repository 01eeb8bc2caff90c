"""Shared test helpers: where the real data lives, skip markers, and a tiny synthetic VOC tree builder.

The real data (read-only, never copied into the project) lives next to the repository:
`<repo>/../shared/data/{voc2012-masks,camvid}`. Tests that need it skip only when that folder is absent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from starter_code.config import BASELINE, Config
from starter_code.data.classes import voc_palette
from starter_code.data.synthetic import generate_synthetic_voc

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VOC_MASKS = SHARED / "voc2012-masks"
CAMVID = SHARED / "camvid"

requires_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data folder {SHARED} is absent")
requires_voc = requires_shared
requires_camvid = requires_shared


@pytest.fixture
def torch_single_thread():
    """Run a test with one intra-op thread (restored afterwards). The tests use small tensors; with several engineers
    sharing 2 cores, OpenMP threads waiting on each other made them up to 50x slower. Results are identical."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_index_png(path: Path, mask: np.ndarray, mode: str = "P") -> Path:
    """Write an HxW uint8 index mask as a palette ('P', VOC colours) or greyscale ('L') PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))  # mode L, values = indices
    if mode == "P":
        im.putpalette(voc_palette().reshape(-1).tolist())  # L -> P, the indices are kept as they are
    assert im.mode == mode
    im.save(path)
    return path


def save_jpeg(path: Path, hw: tuple[int, int], seed: int = 0) -> Path:
    """Write a small random RGB JPEG of size H x W."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return path


def make_voc_tree(root: Path, splits: dict[str, list[str]], hw: tuple[int, int] = (10, 12)) -> Path:
    """A tiny VOC layout ROOT/VOCdevkit/VOC2012 with one JPEG + palette mask per id; returns the VOC2012 dir."""
    voc = root / "VOCdevkit" / "VOC2012"
    seg = voc / "ImageSets" / "Segmentation"
    seg.mkdir(parents=True, exist_ok=True)
    ids = sorted({i for lst in splits.values() for i in lst})
    for n, i in enumerate(ids):
        save_jpeg(voc / "JPEGImages" / f"{i}.jpg", hw, seed=n)
        mask = (np.arange(hw[0] * hw[1]).reshape(hw) + n) % 21
        mask[0, :] = 255
        save_index_png(voc / "SegmentationClass" / f"{i}.png", mask.astype(np.uint8))
    for split, lst in splits.items():
        (seg / f"{split}.txt").write_text("".join(f"{i}\n" for i in lst))
    return voc


@pytest.fixture
def voc_tree(tmp_path: Path) -> Path:
    """A tiny valid VOC tree under tmp_path (train: a, b; val: c); returns the VOC2012 directory."""
    return make_voc_tree(tmp_path, {"train": ["2000_000001", "2000_000002"], "val": ["2000_000003"]})


def tiny(root: Path, **kw) -> Config:
    """16 train / 8 val images at 48 px, a 4-channel U-Net: eight epochs in a few seconds."""
    base = {"name": "tiny", "data_root": str(root), "image_size": 48, "batch_size": 8, "epochs": 8, "device": "cpu",
            "workers": 0, "model": "unet", "model_kwargs": {"base_width": 4}, "patience": 2}
    return replace(BASELINE, **{**base, **kw})


@pytest.fixture(scope="session")
def syn48(tmp_path_factory) -> Path:
    """The synthetic set `tiny` runs train on, generated once per test session."""
    root = tmp_path_factory.mktemp("syn48")
    generate_synthetic_voc(root, n_train=16, n_val=8, size=48, seed=0, progress=False)
    return root
