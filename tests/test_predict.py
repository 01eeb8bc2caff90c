"""Prediction on your own images: a hand-made run directory (no training), odd image sizes, bad files, the CLI."""

from __future__ import annotations

import urllib.request
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from starter_code.cli import build_parser
from starter_code.config import Config
from starter_code.data import DataError
from starter_code.data.classes import IGNORE_INDEX, VOC_CLASSES, VOC_INFO
from starter_code.models import build_model
from starter_code.predict import (
    cmd_predict,
    overlay,
    predict_files,
    predict_image,
    save_prediction,
)


def make_run(run_dir, model_name="baseline", model_kwargs=None, eval_size=-1, image_size=32):
    torch.manual_seed(0)
    cfg = Config(name="handmade", dataset="synthetic", model=model_name, model_kwargs=model_kwargs or {},
                 image_size=image_size, eval_size=eval_size, device="cpu")
    build_kwargs = {**(model_kwargs or {}), **({"pretrained": False} if model_name.startswith("resnet") else {})}
    model = build_model(model_name, num_classes=len(VOC_CLASSES), **build_kwargs)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "classes": list(VOC_CLASSES), "epoch": 1,
                "metrics": {}}, run_dir / "best.pt")
    return run_dir


def write_jpeg(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
    return path


@pytest.fixture
def images(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    return [write_jpeg(src / "wide.jpg", 131, 97, 1), write_jpeg(src / "tall.jpg", 45, 60, 2)]


def test_predict_files_writes_three_pngs_per_image(tmp_path, images):
    run = make_run(tmp_path / "run")
    out = tmp_path / "out"
    results = predict_files(run, images, out, device="cpu")
    assert len(results) == 2
    for r, img, (w, h) in zip(results, images, [(131, 97), (45, 60)]):
        assert r["image"] == img and r["size"] == (h, w)
        assert r["mask"] == out / f"{img.stem}.png"
        assert r["overlay"] == out / f"{img.stem}_overlay.png"
        assert r["legend"] == out / f"{img.stem}_legend.png"
        with Image.open(r["mask"]) as m:
            assert m.size == (w, h) and m.mode == "P"
            mask = np.array(m)
        assert mask.max() < len(VOC_CLASSES)
        assert r["classes"] == [VOC_CLASSES[i] for i in np.unique(mask)]
        with Image.open(r["overlay"]) as o:
            assert o.size == (w, h) and o.mode == "RGB"
        with Image.open(r["legend"]) as leg:
            assert leg.size[0] > 20 and leg.size[1] > 10


def test_eval_size_rescales_but_mask_stays_native(tmp_path, images):
    run = make_run(tmp_path / "run", eval_size=40)
    model = build_model("baseline", num_classes=21).eval()
    mask = predict_image(model, images[0], VOC_INFO, eval_size=40)
    assert mask.shape == (97, 131) and mask.dtype == np.uint8
    results = predict_files(run, images[:1], tmp_path / "out")
    assert results[0]["size"] == (97, 131)


def test_predict_image_matches_forward_and_accepts_arrays(images):
    torch.manual_seed(0)
    model = build_model("baseline", num_classes=21).eval()
    rgb = np.array(Image.open(images[1]).convert("RGB"))
    a = predict_image(model, images[1], VOC_INFO)
    b = predict_image(model, rgb, VOC_INFO)
    c = predict_image(model, Image.open(images[1]), VOC_INFO)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    x = torch.from_numpy(rgb).permute(2, 0, 1)
    from starter_code.data.transforms import normalize

    with torch.no_grad():
        ref = model(normalize(x)[None]).argmax(1)[0].numpy()
    assert np.array_equal(a, ref)
    model.train()
    predict_image(model, rgb, VOC_INFO)
    assert model.training  # flag restored


def test_non_image_raises_data_error_naming_it(tmp_path, images):
    run = make_run(tmp_path / "run")
    fake = tmp_path / "in" / "notes.jpg"
    fake.write_text("this is not a picture\n")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="notes.jpg is not an image PIL can read"):
        predict_files(run, [images[0], fake], out)
    assert not out.exists()  # checked before anything is written
    with pytest.raises(DataError, match="missing.jpg"):
        predict_files(run, [tmp_path / "missing.jpg"], out)


def test_overlay_blends_and_keeps_void():
    img = np.full((2, 3, 3), 200, dtype=np.uint8)
    mask = np.array([[0, 1, IGNORE_INDEX], [15, 15, 0]], dtype=np.uint8)
    out = overlay(img, mask, VOC_INFO.palette, alpha=0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[0, 2], img[0, 2])  # void untouched
    expected = np.round(0.5 * 200 + 0.5 * VOC_INFO.palette[15].astype(float)).astype(np.uint8)
    assert np.array_equal(out[1, 0], expected)
    assert np.array_equal(overlay(img, mask, VOC_INFO.palette, alpha=0.0), img)
    with pytest.raises(ValueError):
        overlay(img, mask[:1], VOC_INFO.palette)


def test_save_prediction_refuses_to_overwrite_input(tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(src)
    with pytest.raises(ValueError, match="overwrite"):
        save_prediction(src, np.zeros((5, 7), dtype=np.uint8), tmp_path, VOC_INFO)
    assert np.asarray(Image.open(src)).shape == (5, 7, 3)
    paths = save_prediction(src, np.zeros((5, 7), dtype=np.uint8), tmp_path / "o", VOC_INFO)
    assert sorted(paths) == ["legend", "mask", "overlay"] and all(p.exists() for p in paths.values())


def test_same_stem_in_two_folders_does_not_overwrite(tmp_path):
    run = make_run(tmp_path / "run")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [write_jpeg(tmp_path / "a" / "x.jpg", 20, 10), write_jpeg(tmp_path / "b" / "x.jpg", 12, 16)]
    results = predict_files(run, paths, tmp_path / "out")
    assert [r["mask"].name for r in results] == ["x.png", "x-2.png"]


def test_no_two_inputs_share_an_output_file(tmp_path):
    """x-2.jpg, x.jpg and b/x.jpg once gave x-2 twice; a.jpg's overlay is a_overlay.jpg's mask name; X.jpg and
    x.jpg are one file on macOS and Windows. Every image must end with its own three files, none overwritten."""
    run = make_run(tmp_path / "run")
    (tmp_path / "b").mkdir()
    named = ["x-2.jpg", "x.jpg", "b/x.jpg", "a.jpg", "a_overlay.jpg", "X.jpg"]
    paths = [write_jpeg(tmp_path / n, 10 + i, 20 + i, seed=i) for i, n in enumerate(named)]
    out = tmp_path / "out"
    results = predict_files(run, paths, out)
    assert [r["mask"].stem for r in results] == ["x-2", "x", "x-3", "a", "a_overlay-2", "X-4"]  # X-2, X-3 = x-2, x-3
    written = [r[k] for r in results for k in ("mask", "overlay", "legend")]
    assert len({p.name.casefold() for p in written}) == 3 * len(paths) == len(list(out.iterdir()))
    for path, r in zip(paths, results):  # each mask is its own image's (sizes differ), not a later one's
        w, h = Image.open(path).size
        assert Image.open(r["mask"]).size == (w, h) == Image.open(r["overlay"]).size


def test_resnet_run_predicts_offline_without_imagenet_cache(tmp_path, images, monkeypatch):
    """A run trained with pretrained=True must still load where the ImageNet weights are not cached."""

    def no_network(*args, **kwargs):
        raise URLError("network unreachable (test)")

    old = torch.hub.get_dir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    try:
        run = make_run(tmp_path / "run", "resnet34_unet", {"pretrained": True})
        results = predict_files(run, images[1:], tmp_path / "out")
    finally:
        torch.hub.set_dir(old)
    assert results[0]["size"] == (60, 45)


def test_cmd_predict(tmp_path, images, capsys):
    run = make_run(tmp_path / "run")
    out = tmp_path / "cli_out"
    args = build_parser().parse_args(["predict", "--run", str(run), *map(str, images), "--out", str(out),
                                      "--device", "cpu"])
    assert cmd_predict(args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{img.stem}{s}" for img in images for s in (".png", "_overlay.png", "_legend.png"))
    assert "2 image(s)" in capsys.readouterr().out
