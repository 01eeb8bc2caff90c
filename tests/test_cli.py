"""End to end through the CLI, as a student would type it: generate, train, evaluate, predictions on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from starter_code.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMVID = SHARED / "camvid"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "starter_code", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    assert main(["data", "synthetic", "--root", str(root), "--train", "24", "--val", "8", "--size", "64"]) == 0
    return root


@pytest.fixture(scope="module")
def trained_run(tiny_synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "baseline"
    r = run_cli("train", "--experiment", "baseline", "--dataset", "synthetic", "--data-root", str(tiny_synthetic),
                "--out", str(out), "--epochs", "2", "--batch-size", "8", "--image-size", "64", "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"run saved to {out}" in r.stdout and "val mIoU" in r.stdout
    return out


def test_train_writes_the_run_directory(trained_run) -> None:
    for name in ("config.json", "history.json", "best.pt", "last.pt", "metrics.json"):
        assert (trained_run / name).is_file(), name
    for name in ("curves", "masks", "class_iou"):
        assert (trained_run / "figures" / f"baseline_synthetic_{name}.png").is_file()
    ckpt = torch.load(trained_run / "best.pt", weights_only=True)  # plain data only
    assert ckpt["config"]["name"] == "baseline" and len(ckpt["classes"]) == 21
    last = torch.load(trained_run / "last.pt", weights_only=True)
    assert last["epoch"] == 1 and len(last["history"]) == 2


def test_evaluate_saves_native_size_index_pngs(trained_run, tiny_synthetic, tmp_path) -> None:
    preds = tmp_path / "preds"
    out_json = tmp_path / "m.json"
    assert main(["evaluate", "--run", str(trained_run), "--dataset", "synthetic", "--data-root", str(tiny_synthetic),
                 "--split", "val", "--save-predictions", str(preds), "--json", str(out_json), "--quiet"]) == 0
    ids = (tiny_synthetic / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").read_text().split()
    assert sorted(p.stem for p in preds.glob("*.png")) == sorted(ids)
    for i in ids:
        im = Image.open(preds / f"{i}.png")
        src = Image.open(tiny_synthetic / f"VOCdevkit/VOC2012/JPEGImages/{i}.jpg")
        assert im.mode == "P" and im.size == src.size
        assert np.asarray(im).max() < 21


def test_bad_arguments_fail_with_one_line(tmp_path) -> None:
    r = run_cli("train", "--dataset", "voc", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"))
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error:") and "nowhere" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("evaluate", "--run", str(tmp_path / "missing-run"))
    assert r.returncode != 0 and "best.pt" in r.stderr and "Traceback" not in r.stderr


def test_report_lists_runs(trained_run, capsys) -> None:
    assert main(["report", "--runs", str(trained_run.parent)]) == 0
    assert "| baseline | baseline | synthetic |" in capsys.readouterr().out


def test_report_section_for_one_run_rebuilds_results_md(trained_run, tmp_path) -> None:
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    (docs / "results" / "a_other.md").write_text("## other\n\nkept as it was\n")
    section = docs / "results" / "recipe.md"
    assert main(["report", "--runs", str(trained_run.parent), "--section", str(trained_run), str(section),
                 "--title", "My recipe"]) == 0
    text = section.read_text()
    metrics = json.loads((trained_run / "metrics.json").read_text())
    hist = json.loads((trained_run / "history.json").read_text())
    assert text.startswith("## My recipe") and f"--out {trained_run.as_posix()}" in text
    assert f"| {metrics['miou']:.4f} |" in text  # the best epoch's mIoU, as in metrics.json
    assert f"**{hist['fit_seconds'] / 60:.1f} min**" in text
    assert f"scored val mIoU {hist['history'][-1]['val_miou']:.4f}" in text  # the last epoch, chosen by nothing
    assert "| " + " | ".join(metrics["iou"]) + " |" in text  # one per-class IoU column per class
    results = (docs / "RESULTS.md").read_text()
    assert "kept as it was" in results and "## My recipe" in results


@pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/camvid not present")
def test_camvid_train_and_evaluate_write_101_predictions(tmp_path) -> None:
    out = tmp_path / "cv"
    r = run_cli("train", "--dataset", "camvid", "--data-root", str(CAMVID), "--out", str(out), "--epochs", "1",
                "--image-size", "64", "--batch-size", "8", "--limit-train", "16", "--limit-val", "8", "--quiet")
    assert r.returncode == 0, r.stderr
    preds = tmp_path / "preds"
    r = run_cli("evaluate", "--run", str(out), "--split", "val", "--save-predictions", str(preds), "--quiet")
    assert r.returncode == 0, r.stderr
    files = sorted(preds.glob("*.png"))
    assert len(files) == 101
    for f in files[:5]:
        im = Image.open(f)
        assert im.mode == "L" and im.size == (480, 360) and np.asarray(im).max() <= 10


@pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/camvid not present")
def test_camvid_fast_recipe_runs_with_its_own_settings(tmp_path) -> None:
    """The issue-7 recipe end to end on a slice of CamVid: only size and length shrunk, everything else its own."""
    out = tmp_path / "fast"
    assert main(["train", "--experiment", "camvid_fast", "--dataset", "camvid", "--data-root", str(CAMVID),
                 "--out", str(out), "--epochs", "2", "--image-size", "64", "--limit-train", "16",
                 "--limit-val", "8", "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["model"], cfg["augment"], cfg["class_weights"], cfg["scheduler"]) == \
        ("unet_small", "paper", "median", "cosine")
    assert cfg["cache"] is True and cfg["patience"] is None and cfg["time_limit_min"] == 29.0
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]) == 2 and hist["stopped_epoch"] is None  # the 29-minute guard stayed quiet
    assert hist["history"][1]["lr"] < hist["history"][0]["lr"]  # cosine decay
    assert 0.0 < json.loads((out / "metrics.json").read_text())["miou"] <= 1.0
