"""benchmarks/gpu_check.py: without CUDA it stops in one line; `--tiny` runs every step on the CPU at toy size."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import requires_voc

from benchmarks.__main__ import main
from benchmarks.common import REPO, RESULTS
from benchmarks.gpu_check import NO_GPU, amp_train_steps, scratch_workspace
from starter_code.models import MODELS
from starter_code.workspace import project_root, workspace


def test_without_cuda_and_without_tiny_one_line_and_nonzero(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as e:
        main(["gpu-check", "--out", str(tmp_path / "out")])
    assert e.value.code == NO_GPU  # SystemExit with a message: printed to stderr, exit status 1
    assert "\n" not in NO_GPU and "CUDA GPU" in NO_GPU and "--tiny" in NO_GPU
    assert not (tmp_path / "out").exists()


def test_a_failing_model_is_reported_and_the_others_still_run(monkeypatch, torch_single_thread) -> None:
    def broken(num_classes: int = 21) -> torch.nn.Module:
        raise RuntimeError("CUDA out of memory\nsecond line")

    monkeypatch.setattr("starter_code.models.MODELS", {"baseline": MODELS["baseline"], "broken": broken})
    rows = amp_train_steps(torch.device("cpu"), image_size=64, batch_size=2, steps=1, warmup=0)
    assert [r["model"] for r in rows] == ["baseline", "broken"]
    assert rows[0]["ok"] and math.isfinite(rows[0]["loss"]) and rows[0]["amp"] is False  # no AMP on the CPU
    assert rows[1] == {"model": "broken", "ok": False, "error": "RuntimeError: CUDA out of memory"}


def test_scratch_workspace_is_where_the_notebook_writes(tmp_path, monkeypatch) -> None:
    ws = scratch_workspace(tmp_path)
    monkeypatch.chdir(ws / "notebooks")  # papermill runs a notebook in its own folder
    assert project_root() == ws and workspace().root == ws and workspace().data == ws / "data"
    assert (ws / "notebooks" / "01_baseline_fcn.ipynb").read_bytes() == (
        REPO / "notebooks" / "01_baseline_fcn.ipynb").read_bytes()
    (ws / "runs" / "baseline-voc").mkdir(parents=True)  # a finished run of an earlier check would be reused
    assert scratch_workspace(tmp_path) == ws and not (ws / "runs").exists()


@pytest.mark.slow
@requires_voc
def test_tiny_runs_every_step_on_the_cpu(tmp_path, monkeypatch, torch_single_thread) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the notebook's kernel too: the test machine's cores are shared
    saved = RESULTS / "gpu_check.json"
    before = saved.stat().st_mtime_ns if saved.exists() else None
    out = tmp_path / "check"
    assert main(["gpu-check", "--tiny", "--out", str(out)]) == 0
    r = json.loads((out / "gpu_check.json").read_text())
    assert (saved.stat().st_mtime_ns if saved.exists() else None) == before  # a CPU smoke run is no GPU result
    assert r["ok"] == {"train_steps": True, "voc_epoch": True, "notebook": True, "all": True}
    assert [s["model"] for s in r["train_steps"]] == list(MODELS)
    assert all(s["ok"] and math.isfinite(s["loss"]) for s in r["train_steps"])
    e = r["voc_epoch"]
    assert (e["train_images"], e["val_images"], e["workers"]) == (24, 12, 1) and math.isfinite(e["train_loss"])
    nb = r["notebook"]
    assert nb["parameters"] == {"profile": "colab", "dataset": "voc", "data_root": str(out / "data"),
                                "epochs": 1, "image_size": 64, "batch_size": 4}
    assert nb["epochs_run"] == 1 and nb["run_dir"] == str(out / "workspace" / "runs" / "baseline-voc")
    assert {"baseline_voc_curves.png", "baseline_voc_masks.png"} <= set(nb["figures"])
    md = (out / "gpu_check.md").read_text()
    assert md.count("\n## ") == 4 and "**PASS**" in md and all(m in md for m in MODELS)
