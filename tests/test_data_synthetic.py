"""The synthetic VOC-format generator: layout, mask format, void band, determinism, reuse, atomicity, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from starter_code.data import synthetic
from starter_code.data.classes import VOC_CLASSES, VOC_VOID, voc_palette
from starter_code.data.stats import class_stats
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.data.voc import voc_dataset

SMALL = dict(n_train=40, n_val=10, size=80, seed=3)


def _ids(voc: Path, split: str) -> list[str]:
    return (voc / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def _files(voc: Path) -> dict[str, bytes]:
    return {f"{d}/{p.name}": p.read_bytes() for d in ("JPEGImages", "SegmentationClass")
            for p in sorted((voc / d).iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_synthetic_voc(tmp_path_factory.mktemp("syn_a"), progress=False, **SMALL)


@pytest.fixture(scope="module")
def stats_set(tmp_path_factory) -> Path:
    """A moderately sized set (300 images at 64 px) for frequency checks."""
    return generate_synthetic_voc(tmp_path_factory.mktemp("syn_stats"), n_train=300, n_val=0, size=64, seed=0,
                                  progress=False)


def test_tree_layout_and_lists(small: Path) -> None:
    assert small.name == "VOC2012" and small.parent.name == "VOCdevkit"
    train, val, trainval = (_ids(small, s) for s in ("train", "val", "trainval"))
    assert train == [f"syn_train_{i:06d}" for i in range(40)]
    assert val == [f"syn_val_{i:06d}" for i in range(10)]
    assert trainval == train + val
    for i in trainval:
        assert (small / "JPEGImages" / f"{i}.jpg").is_file()
        assert (small / "SegmentationClass" / f"{i}.png").is_file()
    assert len(list((small / "JPEGImages").iterdir())) == 50
    meta = json.loads((small / "SYNTHETIC.json").read_text())
    assert {k: meta[k] for k in SMALL} == SMALL and meta["version"] == synthetic.GENERATOR_VERSION
    assert [p.name for p in small.parent.parent.iterdir()] == ["VOCdevkit"]  # no temp dirs left behind


def test_masks_are_voc_palette_pngs_matching_images(small: Path) -> None:
    pal = voc_palette()
    allowed = set(range(len(VOC_CLASSES))) | {VOC_VOID}
    for i in _ids(small, "trainval"):
        m = Image.open(small / "SegmentationClass" / f"{i}.png")
        im = Image.open(small / "JPEGImages" / f"{i}.jpg")
        assert m.mode == "P" and m.format == "PNG"
        assert im.mode == "RGB" and im.format == "JPEG"
        assert m.size == im.size == (80, 80)
        np.testing.assert_array_equal(np.asarray(m.getpalette(), np.uint8).reshape(-1, 3)[:256], pal)
        assert set(np.unique(np.asarray(m)).tolist()) <= allowed


def test_void_band_on_outlines(small: Path) -> None:
    total = void = 0
    for i in _ids(small, "trainval"):
        lab = np.asarray(Image.open(small / "SegmentationClass" / f"{i}.png"))
        total += lab.size
        void += int((lab == VOC_VOID).sum())
        objects = (lab > 0) & (lab != VOC_VOID)
        if objects.any():
            assert (lab == VOC_VOID).any(), i
        # no object pixel touches background directly: the band separates them (4-neighbours)
        for a, b in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
            assert not (((a == 0) & (b > 0) & (b != VOC_VOID)) | ((b == 0) & (a > 0) & (a != VOC_VOID))).any(), i
    assert 0.01 < void / total < 0.12  # VOC 2012 train: 5.5 %


def test_same_seed_is_byte_identical(small: Path, tmp_path: Path) -> None:
    again = generate_synthetic_voc(tmp_path, progress=False, **SMALL)
    assert again != small
    assert _files(again) == _files(small)


def test_images_do_not_depend_on_counts(small: Path, tmp_path: Path) -> None:
    fewer = generate_synthetic_voc(tmp_path, n_train=5, n_val=3, size=80, seed=3, progress=False)
    a, b = _files(fewer), _files(small)
    assert a and all(b[k] == v for k, v in a.items())


def test_different_seed_differs(small: Path, tmp_path: Path) -> None:
    other = generate_synthetic_voc(tmp_path, progress=False, **{**SMALL, "seed": 4})
    a, b = _files(other), _files(small)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a) == len(a)


def test_reuse_same_params_and_refuse_other_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = dict(n_train=6, n_val=2, size=64, seed=1)
    voc = generate_synthetic_voc(tmp_path, progress=False, **params)
    meta_mtime = (voc / "SYNTHETIC.json").stat().st_mtime_ns

    def must_not_synthesize(rng, size):
        raise AssertionError("regenerated a set that already exists with the same parameters")

    with monkeypatch.context() as m:  # reuse: nothing is synthesized or rewritten
        m.setattr(synthetic, "synthesize_example", must_not_synthesize)
        assert generate_synthetic_voc(tmp_path, progress=False, **params) == voc
    assert (voc / "SYNTHETIC.json").stat().st_mtime_ns == meta_mtime
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_synthetic_voc(tmp_path, progress=False, **{**params, "n_train": 7})
    assert len(_ids(voc, "train")) == 6  # untouched
    voc2 = generate_synthetic_voc(tmp_path, progress=False, overwrite=True, **{**params, "n_train": 7})
    assert voc2 == voc and len(_ids(voc, "train")) == 7
    assert json.loads((voc / "SYNTHETIC.json").read_text())["n_train"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["VOCdevkit"]


def test_never_touches_a_foreign_tree(tmp_path: Path) -> None:
    foreign = tmp_path / "VOCdevkit" / "VOC2012"
    (foreign / "JPEGImages").mkdir(parents=True)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not made by this generator"):
            generate_synthetic_voc(tmp_path, n_train=2, n_val=1, size=32, progress=False, overwrite=overwrite)
    assert (foreign / "JPEGImages").is_dir()


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = dict(n_train=4, n_val=2, size=48, seed=0)
    voc = generate_synthetic_voc(tmp_path, progress=False, **params)
    before = _files(voc)
    real = synthetic.synthesize_example
    calls = {"n": 0}

    def failing(rng, size):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(rng, size)

    monkeypatch.setattr(synthetic, "synthesize_example", failing)
    with pytest.raises(KeyboardInterrupt):  # replacing: the old tree survives intact
        generate_synthetic_voc(tmp_path, progress=False, overwrite=True, **{**params, "seed": 9})
    assert _files(voc) == before and json.loads((voc / "SYNTHETIC.json").read_text())["seed"] == 0
    calls["n"] = 0
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):  # first generation: nothing at all is left
        generate_synthetic_voc(fresh, progress=False, **params)
    assert list(fresh.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOCdevkit", "fresh"]  # no temp dirs either


def test_class_and_background_frequencies_look_like_voc(stats_set: Path) -> None:
    st = class_stats(voc_dataset(stats_set, "train", masks_only=True), cache_dir=None, progress=False)
    counts = dict(zip(st["classes"][1:], st["images"][1:]))
    assert max(counts, key=counts.get) == "person"
    others = sorted(n for c, n in counts.items() if c != "person")
    assert counts["person"] > 1.5 * others[-1]
    assert min(counts.values()) >= 1, counts  # every class appears
    assert 0.60 <= st["pixels"][0] / sum(st["pixels"]) <= 0.85  # background share of the labelled pixels


def test_colour_alone_does_not_tell_the_class(stats_set: Path) -> None:
    """A per-pixel colour histogram classifier over object pixels does no better than always saying 'person'."""
    xs, ys = [], []
    for i in _ids(stats_set, "train"):
        img = np.asarray(Image.open(stats_set / "JPEGImages" / f"{i}.jpg").convert("RGB")).reshape(-1, 3)
        lab = np.asarray(Image.open(stats_set / "SegmentationClass" / f"{i}.png")).ravel()
        keep = (lab > 0) & (lab != VOC_VOID)
        xs.append(img[keep] // 32)
        ys.append(lab[keep])
    half = len(xs) // 2
    bins = [np.concatenate([x[:, 0] * 64 + x[:, 1] * 8 + x[:, 2] for x in part]) for part in (xs[:half], xs[half:])]
    (b_fit, b_test), (y_fit, y_test) = bins, [np.concatenate(p) for p in (ys[:half], ys[half:])]
    hist = np.zeros((512, 21))
    np.add.at(hist, (b_fit, y_fit), 1)
    acc = float((hist.argmax(1)[b_test] == y_test).mean())
    prior = float((y_test == np.bincount(y_fit).argmax()).mean())
    assert acc < prior + 0.05, (acc, prior)


def test_synthesize_example_shapes() -> None:
    img, lab = synthetic.synthesize_example(np.random.default_rng(0), 96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    assert lab.shape == (96, 96) and lab.dtype == np.uint8
    img2, lab2 = synthetic.synthesize_example(np.random.default_rng(0), 96)
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lab, lab2)
