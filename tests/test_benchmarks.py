"""benchmarks/: the one entry point, each benchmark on a tiny setting (numbers are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CAMVID, requires_camvid

from benchmarks.__main__ import BENCHMARKS, build_parser, main
from benchmarks.epoch import bench_epoch
from benchmarks.gpu_estimate import gpu_estimate, gpu_estimate_markdown
from benchmarks.loader import bench_loader
from benchmarks.train_step import bench_train_step, parse_variant
from starter_code.models.cost import meta_model, train_step_flops

REPO = Path(__file__).resolve().parents[1]


def test_train_step_reports_rates_ratios_and_the_step_flops() -> None:
    r = bench_train_step("baseline", image_size=64, batch_size=2, steps=1, rounds=1, threads=1,
                         variants={"nchw": {"channels_last": False}}, matmul_size=256)
    for key in ("images_per_s", "reference_images_per_s", "ratio", "gflops_per_s", "matmul_gflops_per_s"):
        assert r[key] > 0, key
    assert r["machine"]["torch"] == torch.__version__ and r["machine"]["cpu_model"]
    assert set(r["variants"]) == {"nchw"} and r["variants"]["nchw"]["overrides"] == {"channels_last": False}
    assert r["flops_per_step"] == train_step_flops(meta_model("baseline"), 64) * 2
    assert len(r["round_seconds"]["default"]) == len(r["round_seconds"]["reference"]) == 1


def test_gpu_estimate_table_has_every_notebook_model() -> None:
    est = gpu_estimate()
    names = [row["model"] for row in est["rows"]]
    assert names == ["baseline", "baseline_dropout", "resnet34_fcn", "resnet34_unet", "unet"]
    by = {row["model"]: row for row in est["rows"]}
    assert by["unet"]["gflop_per_image_train"] > by["resnet34_unet"]["gflop_per_image_train"] \
        > by["baseline"]["gflop_per_image_train"] > 0
    assert gpu_estimate_markdown(est).count("\n") == len(names) + 1


def test_variants_are_typed_as_config_fields() -> None:
    assert parse_variant("c=compile:true,channels_last:false") == ("c", {"compile": True, "channels_last": False})
    assert parse_variant("t1=threads:1") == ("t1", {"threads": 1})
    with pytest.raises(ValueError, match="channels_last expects bool"):
        parse_variant("x=channels_last:maybe")
    with pytest.raises(ValueError, match="expected NAME=KEY:VALUE"):
        parse_variant("channels_last:false")


def test_one_entry_point_with_a_json_default_per_benchmark(tmp_path) -> None:
    assert set(BENCHMARKS) == {"train-step", "loader", "eval", "epoch", "synthetic", "gpu-estimate",
                               "camvid-recipe", "voc-scale", "gpu-check", "camvid-epoch", "optimizer"}
    args = build_parser().parse_args(["train-step"])
    assert (args.image_size, args.batch_size, args.steps, args.rounds) == (224, 8, 1, 8)
    assert Path(args.json) == REPO / "benchmarks" / "results" / "train_step.json"
    out = tmp_path / "g.json"
    assert main(["gpu-estimate", "--epochs", "12", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["epochs"] == 12 and saved["command"].endswith("gpu-estimate --epochs 12 --json " + str(out))


def test_python_m_benchmarks_help_lists_every_benchmark() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert all(name in r.stdout for name in BENCHMARKS)


def test_epoch_refuses_a_bad_setting_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match="--set epochs=x: epochs expects int"):
        bench_epoch("synthetic", tmp_path / "never-generated", overrides=["epochs=x"])
    assert not (tmp_path / "never-generated").exists()


@requires_camvid
def test_loader_reports_cold_prefilled_and_warm_rates() -> None:
    r = bench_loader("camvid", CAMVID, image_size=64, batch_size=4, workers=(0, 1), cache=(False, True),
                     augment="strong", max_batches=2, repeats=1)
    s = r["summary"]
    assert set(s) == {f"workers={w},cache={c}" for w in (0, 1) for c in (False, True)}
    for w in (0, 1):
        assert set(s[f"workers={w},cache=False"]) == {"workers", "cache", "cold_images_per_s"}
        on = s[f"workers={w},cache=True"]
        assert min(on["cold_images_per_s"], on["prefilled_images_per_s"], on["warm_images_per_s"]) > 0
    assert all(row["images"] == 8 for row in r["runs"])


def test_optimizer_benchmark_times_both_adams_on_the_same_steps(tmp_path) -> None:
    out = tmp_path / "opt.json"
    assert main(["optimizer", "--models", "baseline", "--image-size", "32", "--batch-size", "2", "--steps", "1",
                 "--rounds", "2", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["experiment"] == "baseline" and row["parameters"] > 1_000_000
    assert len(row["times"]["fused"]) == len(row["times"]["default"]) == 2
    assert row["default_over_fused"]["median"] > 0
