"""benchmarks/voc_scale.py: the VOC-scale set rendered onto the genuine masks, the CPU-side measurement of the Colab
profile, and the README's T4 table built from it (numbers are reported, never asserted)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import VOC_MASKS, requires_voc
from PIL import Image, JpegImagePlugin

from benchmarks.__main__ import main
from benchmarks.gpu_estimate import VOC_TRAIN, VOC_VAL
from benchmarks.voc_scale import (
    MARKER,
    TINY,
    MasksNotFound,
    make_voc_scale,
    measure_preset,
    read_marker,
    render_image,
    t4_markdown,
    t4_table,
)
from starter_code.config import expected_runs
from starter_code.data import load_mask
from starter_code.data.voc import read_split, voc_dataset

pytestmark = requires_voc


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_voc_scale(tmp_path_factory.mktemp("voc_scale"), VOC_MASKS, tiny=True, workers=2, progress=False)


def test_tiny_set_is_the_official_ids_on_their_genuine_masks(tiny_root) -> None:
    voc = tiny_root / "VOCdevkit" / "VOC2012"
    for split in ("train", "val"):
        ids = read_split(voc, split)
        assert ids == read_split(VOC_MASKS, split)[:TINY[split]]
        for i in ids:
            genuine = load_mask(VOC_MASKS / "SegmentationClass" / f"{i}.png")
            assert np.array_equal(load_mask(voc / "SegmentationClass" / f"{i}.png"), genuine)
            with Image.open(voc / "JPEGImages" / f"{i}.jpg") as im:
                assert im.mode == "RGB" and im.size == (genuine.shape[1], genuine.shape[0])
    assert read_split(voc, "trainval") == read_split(voc, "train") + read_split(voc, "val")
    assert not (voc / "SYNTHETIC.json").exists()  # the kit must see VOC's varying sizes (no batched evaluation)
    assert voc_dataset(tiny_root, "val").uniform_size is False


def test_jpegs_are_saved_like_vocs(tiny_root, tmp_path) -> None:
    ref = tmp_path / "q95.jpg"  # libjpeg's quality-95 tables, the ones the genuine VOC sample carries
    Image.new("RGB", (16, 16)).save(ref, quality=95)
    with Image.open(ref) as r, Image.open(VOC_MASKS / "sample" / "JPEGImages" / "2007_000129.jpg") as real:
        assert real.quantization == r.quantization
        tables = r.quantization
    jpg = next((tiny_root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))
    with Image.open(jpg) as im:
        assert im.quantization == tables and JpegImagePlugin.get_sampling(im) == 2  # 4:2:0, as the sample
    stats = read_marker(tiny_root)
    assert (stats["train"], stats["val"], stats["images"]) == (TINY["train"], TINY["val"], sum(TINY.values()))
    assert 3.0 < stats["bits_per_pixel_mean"] < 6.0  # VOC: ~4.5 bits per pixel (the sample: 5.1)


def test_rendering_is_deterministic_per_seed_and_follows_the_mask() -> None:
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 15
    mask[29, 40:120] = 255
    a = render_image(mask, np.random.default_rng(1))
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_image(mask, np.random.default_rng(1)))
    assert not np.array_equal(a, render_image(mask, np.random.default_rng(2)))
    # the person region carries its own texture: its mean colour differs from the background's around it
    inside, outside = a[35:85, 45:115].reshape(-1, 3).mean(0), a[:25].reshape(-1, 3).mean(0)
    assert np.abs(inside - outside).max() > 1.0


def test_reused_when_unchanged_never_touches_a_foreign_tree(tiny_root, tmp_path) -> None:
    jpg = next((tiny_root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))
    before = jpg.stat().st_mtime_ns
    assert make_voc_scale(tiny_root, VOC_MASKS, tiny=True, progress=False) == tiny_root
    assert jpg.stat().st_mtime_ns == before
    foreign = tmp_path / "foreign"
    (foreign / "VOCdevkit" / "VOC2012").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=f"no {MARKER}"):
        make_voc_scale(foreign, VOC_MASKS, tiny=True, progress=False)
    with pytest.raises(MasksNotFound, match="pass --masks DIR"):
        make_voc_scale(tmp_path / "x", tmp_path / "no-masks", tiny=True, progress=False)
    assert not (tmp_path / "x").exists()


def test_measure_preset_caches_what_fit_caches(tiny_root, torch_single_thread) -> None:
    r = measure_preset(tiny_root, "none", workers=(0,), cold_workers=(0,))
    assert (r["experiment"], r["image_size"], r["batch_size"]) == ("baseline", 224, 16)  # the Colab profile
    assert (r["train_images"], r["val_images"]) == (TINY["train"], TINY["val"])
    masks = voc_dataset(tiny_root, "val").masks
    native = sum(4 * m.shape[0] * m.shape[1] for m in map(load_mask, masks))  # RGB image + mask, one byte each
    assert r["cache_bytes"]["val"] == native  # validation is cached at native size
    assert 0 < r["cache_bytes"]["train"] < 4 * 224 * 500 * TINY["train"]  # training at the 224 px shorter side
    lm = r["loader"]["workers=0"]
    assert lm["train_images"] == 16  # one full batch of 16 (drop_last), as fit's loader
    assert min(lm["train_images_per_s"], lm["val_images_per_s"], r["cold"]["workers=0"]["train_images_per_s"]) > 0
    assert lm["peak_tree_pss_bytes"] > 0 and r["rss_bytes"]["after_val_fill"] > r["rss_bytes"]["before_fill"]


def _fake_measurement(train_ips: float, val_ips: float) -> dict:
    preset = {"cache_fill": {"total_s": 20.0}, "cache_bytes": {"train": 4e8, "val": 1.1e9},
              "loader": {"workers=1": {"train_images_per_s": train_ips, "val_images_per_s": val_ips}}}
    return {"presets": {"none": preset, "paper": preset, "strong": preset}}


def test_t4_table_marks_measured_and_estimated_and_covers_the_gpu_course() -> None:
    table = t4_table(_fake_measurement(train_ips=146.4, val_ips=144.9))
    rows = table["rows"]
    covered = {name for r in rows for name in r["experiments"]}
    assert covered == set(expected_runs(pretrained=True, cpu=False))  # unet_cpu is a CPU-profile run
    by = {(r["model"], r["preset"]): r for r in rows}
    assert {("baseline", "paper"), ("baseline", "strong"), ("unet", "none")} <= set(by)
    base = by[("baseline", "none")]
    assert base["cpu_train_s"] == pytest.approx(VOC_TRAIN / 146.4) and base["cpu_val_s"] == pytest.approx(
        VOC_VAL / 144.9)
    # the baseline's GPU compute is far below the CPU side: the CPU side sets its epoch
    assert base["epoch_s"] == pytest.approx([base["cpu_train_s"] + base["cpu_val_s"]] * 2)
    unet = by[("unet", "none")]
    assert all(e > unet["cpu_train_s"] + unet["cpu_val_s"] for e in unet["epoch_s"])  # the U-Net is GPU-bound
    md = t4_markdown(table)
    header = md.splitlines()[0]
    assert "**measured**" in header and "**estimated**" in header
    assert len(md.splitlines()) == 2 + len(rows)


def test_cli_tiny_measures_and_the_t4_table_never_overwrites_it(tiny_root, tmp_path, torch_single_thread,
                                                                capsys) -> None:
    out = tmp_path / "vs.json"
    assert main(["voc-scale", "--root", str(tiny_root), "--presets", "none", "--workers", "1", "--no-eval",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r["presets"]) == {"none"} and r["set"]["params"]["tiny"] is True
    assert r["machine"]["loadavg"] and len(r["loadavg_end"]) == 3 and "eval" not in r
    md = tmp_path / "t4.json"
    assert main(["voc-scale", "--t4-table", str(out), "--json", str(md)]) == 0
    assert "| notebook(s) |" in capsys.readouterr().out
    assert json.loads(md.read_text())["rows"] and os.path.getsize(out) > 0
