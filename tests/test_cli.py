"""End to end through the CLI, as a student would type it: generate, train, evaluate, predictions on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CAMVID, requires_camvid
from PIL import Image

from starter_code.cli import build_parser, main, train_config


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
                "--out", str(out), "--epochs", "2", "--batch-size", "8", "--image-size", "64", "--set", "seed=3",
                "--quiet")
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
    assert ckpt["config"]["seed"] == 3 and json.loads((trained_run / "config.json").read_text())["seed"] == 3
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


HEAVY = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "PIL")
PROBE = """
import json, runpy, sys
argv, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["python -m starter_code", *argv]
try:
    runpy.run_module("starter_code", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "heavy": sorted(m for m in heavy if m in sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"],
                                  ["report", "--help"], ["data", "synthetic", "--help"], ["classroom", "--help"]])
def test_help_imports_no_torch(argv) -> None:
    """Building the parser (all sub-commands) imports none of the heavy libraries: `--help` is instant."""
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}
    assert "usage: python -m starter_code" in r.stdout


def test_benchmarks_are_not_a_student_command() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "gpu-estimate"])


def test_train_flags_and_set_go_through_make_config() -> None:
    args = build_parser().parse_args(["train", "--experiment", "cosine", "--dataset", "voc", "--data-root", "d",
                                      "--epochs", "4", "--lr", "0.01", "--set", "scheduler=none",
                                      "--set", "model_kwargs={\"dropout\": true}", "--set", "epochs=5"])
    cfg = train_config(args)
    assert (cfg.name, cfg.dataset, cfg.data_root, cfg.lr, cfg.scheduler) == ("cosine", "voc", "d", 0.01, None)
    assert cfg.epochs == 5 and cfg.model_kwargs == {"dropout": True}  # --set comes last
    fast = train_config(build_parser().parse_args(["train", "--experiment", "camvid_fast", "--epochs", "2"]))
    assert (fast.epochs, fast.image_size, fast.dataset) == (2, 224, "camvid")  # a flag is the user's own choice


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "epochs=abc"], "error: --set epochs=abc: epochs expects int"),
    (["--set", "colour=red"], "error: --set colour=red: colour is not a config field"),
    (["--experiment", "camvid_fast", "--dataset", "synthetic", "--data-root", "x"],
     "error: experiment camvid_fast is a camvid recipe; it cannot run on synthetic"),
    (["--dataset", "voc"], "error: --dataset voc needs --data-root"),
])
def test_train_settings_errors_are_one_line(argv, message, capsys) -> None:
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


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


@requires_camvid
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


@requires_camvid
def test_camvid_fast_recipe_runs_with_its_own_settings(tmp_path) -> None:
    """The camvid_fast recipe end to end on a slice of CamVid: only size and length shrunk, everything else its own."""
    out = tmp_path / "fast"
    assert main(["train", "--experiment", "camvid_fast", "--dataset", "camvid", "--data-root", str(CAMVID),
                 "--out", str(out), "--epochs", "2", "--image-size", "64", "--limit-train", "16",
                 "--limit-val", "8", "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["model"], cfg["augment"], cfg["class_weights"], cfg["scheduler"]) == \
        ("unet_small", "paper_color", "median", "cosine")
    assert cfg["cache"] is True and cfg["patience"] is None and cfg["budget_min"] == 29.0
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]) == 2 and hist["stopped_epoch"] is None  # 2 epochs fit the 29-minute budget
    assert hist["history"][1]["lr"] < hist["history"][0]["lr"]  # cosine decay
    assert 0.0 < json.loads((out / "metrics.json").read_text())["miou"] <= 1.0


def test_the_final_line_names_why_a_run_stopped() -> None:
    from starter_code.cli import stop_note
    from starter_code.config import EXPERIMENTS
    from starter_code.runs import Run

    def run(name: str, reason: str | None, stopped: int | None) -> Run:
        return Run(EXPERIMENTS[name], Path("runs/x"), [{}] * (stopped or 12), {}, 3, stopped, reason, [])

    assert stop_note(run("baseline", "early_stop", 8)) == \
        "best epoch 3 kept; early stop after epoch 8 (no better val mIoU for 5 epochs)"
    assert stop_note(run("camvid_fast", "budget", 40)) == \
        "last epoch 3 kept; time budget of 29 min spent after epoch 40, schedule completed"
    assert stop_note(run("baseline", None, None)) == "best epoch 3 kept; all 12 epochs run"


def test_a_relative_data_root_for_the_notebooks_means_the_callers_folder(monkeypatch) -> None:
    """Notebooks execute with notebooks/ as their folder: `-p data_root ../shared/data/camvid` typed at the
    repository root must reach them as that folder, not as notebooks/../shared/data/camvid."""
    import starter_code.workspace as workspace

    seen = {}

    def fake_execute(paths, out, params):
        seen.update(params)
        return []

    monkeypatch.setattr(workspace, "execute_notebooks", fake_execute)
    assert main(["notebooks", "--only", "00", "-p", "data_root", "../camvid", "-p", "epochs", "4"]) == 0
    assert seen == {"data_root": str(Path.cwd().parent / "camvid"), "epochs": 4}
