"""torchrun + DDP on CPU (gloo): one run directory, every process trains, metrics equal a single-process
evaluation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from starter_code.cli import main
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.distributed import ShardSampler


def test_shard_sampler_covers_every_index_once() -> None:
    for n, world in [(10, 2), (11, 2), (7, 3), (2, 4)]:
        shards = [list(ShardSampler(n, r, world)) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(n))
        assert all(len(ShardSampler(n, r, world)) == len(shards[r]) for r in range(world))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process_evaluate(tmp_path) -> None:
    """24 training images, batch 16, 2 processes: each share (12) is smaller than a batch but still trains."""
    data = tmp_path / "syn"
    generate_synthetic_voc(data, n_train=24, n_val=7, size=48, seed=3, progress=False)  # odd val count: no padding
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "starter_code", "train", "--dataset", "synthetic",
           "--data-root", str(data), "--out", str(out), "--epochs", "2", "--image-size", "48", "--batch-size", "16",
           "--device", "cpu", "--workers", "0", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("run saved to") == 1  # only rank 0 reports
    names = sorted(p.name for p in out.iterdir())
    assert names == ["best.pt", "config.json", "figures", "history.json", "last.pt", "metrics.json"]
    hist = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(h["train_loss"] > 0.1 for h in hist), hist  # zero steps used to report a train loss of 0.0
    ddp = json.loads((out / "metrics.json").read_text())
    single = tmp_path / "single.json"
    assert main(["evaluate", "--run", str(out), "--split", "val", "--json", str(single), "--device", "cpu",
                 "--quiet"]) == 0
    ref = json.loads(single.read_text())
    assert ddp["miou"] == pytest.approx(ref["miou"], abs=1e-6)
    assert ddp["pixel_acc"] == pytest.approx(ref["pixel_acc"], abs=1e-6)
    for name, v in ref["iou"].items():
        assert (v != v and ddp["iou"][name] != ddp["iou"][name]) or ddp["iou"][name] == pytest.approx(v, abs=1e-6)
