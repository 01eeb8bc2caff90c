"""The engine: repeatable CPU runs, weights reach the loss, early stopping, the time limit, resume on a new
machine, loaders under torchrun."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from torch.utils.data import Dataset

import starter_code.engine as engine
from starter_code.checkpoint import TrainingError, load_checkpoint, save_last
from starter_code.config import BASELINE, EXPERIMENTS, Config, make_config
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.distributed import DistInfo
from starter_code.engine import build_criterion, early_stop_epoch, fit, make_loader, resolve_device
from starter_code.runs import load_run


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    generate_synthetic_voc(root, n_train=24, n_val=8, size=64, seed=1, progress=False)
    return root


def small(syn, **kw) -> Config:
    base = {"data_root": str(syn), "image_size": 64, "batch_size": 8, "epochs": 2, "device": "cpu"}
    return replace(BASELINE, **{**base, **kw})


def strip_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_same_seed_same_history_on_cpu(syn, tmp_path) -> None:
    cfg = small(syn, augment="strong")
    a = fit(cfg, tmp_path / "a", progress=False)
    b = fit(cfg, tmp_path / "b", progress=False)
    assert strip_time(a.history) == strip_time(b.history)
    c = fit(replace(cfg, seed=1), tmp_path / "c", progress=False)
    assert strip_time(c.history) != strip_time(a.history)


def test_history_and_metrics_fields(syn, tmp_path) -> None:
    run = fit(small(syn), tmp_path / "r", progress=False)
    assert [h["epoch"] for h in run.history] == [1, 2]
    for key in ("train_loss", "val_loss", "val_miou", "val_pixel_acc", "lr", "seconds"):
        assert key in run.history[0]
    assert set(run.metrics["iou"]) == set(run.classes) and run.metrics["epoch"] == run.best_epoch
    best = max(run.history, key=lambda h: h["val_miou"])
    assert run.metrics["miou"] == pytest.approx(best["val_miou"])


def test_early_stop_rule() -> None:
    assert early_stop_epoch([0.1, 0.2, 0.3], 1) is None
    assert early_stop_epoch([0.1, 0.3, 0.2, 0.25, 0.3], 2) == 4  # two epochs in a row not above 0.3
    assert early_stop_epoch([0.1, 0.3, 0.2, 0.35, 0.3, 0.1], 2) == 6
    assert early_stop_epoch([0.5, 0.1, 0.1], None) is None


def test_fit_stops_where_the_rule_says(syn, tmp_path) -> None:
    run = fit(small(syn, epochs=5, patience=1, lr=1e-2), tmp_path / "r", progress=False)
    scores = [h["val_miou"] for h in run.history]
    expected = early_stop_epoch(scores, 1)
    assert run.stopped_epoch == expected
    assert run.stop_reason == (None if expected is None else "early_stop")
    assert len(run.history) == (expected or 5)
    assert run.best_epoch == 1 + scores.index(max(scores))


def test_class_weights_reach_the_criterion(syn) -> None:
    from starter_code.data import build_datasets

    cfg = small(syn, class_weights="inverse")
    train_ds, _ = build_datasets(cfg)
    crit = build_criterion(cfg, train_ds, torch.device("cpu"))
    assert crit.weight is not None and crit.ignore_index == 255
    assert crit.weight.shape == (21,) and not torch.allclose(crit.weight, torch.ones(21))
    assert build_criterion(small(syn), train_ds, torch.device("cpu")).weight is None


def test_experiments_are_diffs_of_baseline() -> None:
    assert EXPERIMENTS["baseline"] is BASELINE
    assert set(make_config("cosine").diff()) == {"name", "scheduler"}
    assert Config.from_dict(BASELINE.to_dict()) == BASELINE
    with pytest.raises(KeyError, match="unknown experiment"):
        make_config("nope")


def test_device_resolution() -> None:
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="device 'cuda' requested but CUDA is not available"):
            resolve_device("cuda")


def test_time_limit_rule() -> None:
    from starter_code.engine import over_time_limit

    rows = [{"seconds": 50.0}, {"seconds": 70.0}]
    cfg = replace(BASELINE, time_limit_min=3.0)  # 180 s
    assert not over_time_limit(cfg, 100.0, rows)  # 100 + the slowest epoch (70) = 170 <= 180
    assert over_time_limit(cfg, 111.0, rows)  # 181 > 180
    assert not over_time_limit(cfg, 111.0, [])  # no epoch measured yet
    assert not over_time_limit(BASELINE, 1e9, rows)  # no limit


def test_time_limit_stops_early_and_keeps_the_best_epoch(syn, tmp_path) -> None:
    res = fit(small(syn, epochs=3, time_limit_min=1e-6, patience=1), tmp_path / "t", progress=False)
    assert len(res.history) == 1 and res.stopped_epoch == 1 and res.best_epoch == 1
    assert res.stop_reason == "time_limit"  # never reported as an early stop, even with patience set
    assert (tmp_path / "t" / "best.pt").exists() and (tmp_path / "t" / "metrics.json").exists()
    saved = json.loads((tmp_path / "t" / "history.json").read_text())
    assert saved["stop_reason"] == "time_limit" and saved["stopped_epoch"] == 1
    assert load_run(tmp_path / "t", weights=False).stop_reason == "time_limit"


# ------------------------------------------------------------------------------------------------------ resume
class Interrupt(BaseException):
    """Stands in for a kill at a chosen point of an in-process run."""


def crash_in_epoch(monkeypatch, index: int) -> None:
    """Make fit die while training the 0-based epoch `index` (after epoch `index` was saved)."""
    real = engine.train_one_epoch

    def crashing(*a, **k):
        if a[5] == index:
            raise Interrupt(f"killed in epoch {index + 1}")
        return real(*a, **k)

    monkeypatch.setattr(engine, "train_one_epoch", crashing)


def tiny(root, **kw) -> Config:
    """16 train / 8 val images at 48 px, a 4-channel U-Net: eight epochs in a few seconds."""
    base = {"name": "tiny", "data_root": str(root), "image_size": 48, "batch_size": 8, "epochs": 8, "device": "cpu",
            "workers": 0, "model": "unet", "model_kwargs": {"base_width": 4}, "patience": 2}
    return replace(BASELINE, **{**base, **kw})


@pytest.fixture(scope="module")
def syn48(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn48")
    generate_synthetic_voc(root, n_train=16, n_val=8, size=48, seed=0, progress=False)
    return root


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count for every run compared bit for bit
    yield
    torch.set_num_threads(before)


def test_resume_on_a_new_machine_keeps_the_best_model(syn48, tmp_path, monkeypatch, one_thread) -> None:
    """train --out LOCAL --checkpoint-dir DRIVE, killed during the last epoch (the best epoch is an earlier one),
    LOCAL lost with the machine, resumed with --out LOCAL2 --checkpoint-dir DRIVE: exactly the uninterrupted run."""
    cfg = tiny(syn48)
    ref = fit(cfg, tmp_path / "ref", progress=False)
    assert ref.stopped_epoch == 8 and ref.best_epoch < 7, "premise: the best epoch is before the kill"
    local, drive, local2 = tmp_path / "local", tmp_path / "drive", tmp_path / "local2"
    crash_in_epoch(monkeypatch, 7)
    with pytest.raises(Interrupt):
        fit(cfg, local, progress=False, checkpoint_dir=drive)
    monkeypatch.undo()
    assert load_checkpoint(drive / "last.pt")["epoch"] == 6  # epochs 1-7 saved
    shutil.rmtree(local)  # the VM's disk is gone

    res = fit(cfg, local2, progress=False, resume=True, checkpoint_dir=drive)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in ref.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in res.history] == strip
    assert (res.best_epoch, res.stopped_epoch, res.stop_reason) == (ref.best_epoch, 8, "early_stop")
    assert json.dumps(res.metrics) == json.dumps(ref.metrics)  # bit-exact, NaNs included
    assert (local2 / "metrics.json").read_text() == (tmp_path / "ref" / "metrics.json").read_text()
    want = load_checkpoint(tmp_path / "ref" / "best.pt")
    for d in (local2, drive):
        got = load_checkpoint(d / "best.pt")
        assert got["epoch"] == ref.best_epoch and all(torch.equal(got["model"][k], v)
                                                      for k, v in want["model"].items())
    assert all(torch.equal(res.model.state_dict()[k], v) for k, v in want["model"].items())


def test_resume_without_the_best_weights_anywhere_says_so(syn48, tmp_path, monkeypatch) -> None:
    """A checkpoint folder from before best.pt was kept there: one line naming the file and the way out."""
    cfg = tiny(syn48, epochs=3, patience=None, lr=0.05)
    local, drive = tmp_path / "local", tmp_path / "drive"
    crash_in_epoch(monkeypatch, 2)
    with pytest.raises(Interrupt):
        fit(cfg, local, progress=False, checkpoint_dir=drive)
    monkeypatch.undo()
    last = load_checkpoint(drive / "last.pt")
    last["best"] = {**last["best"], "epoch": 1}  # as if epoch 1 were the best and its weights only on LOCAL
    save_last(drive / "last.pt", last)
    (drive / "best.pt").unlink()
    shutil.rmtree(local)
    with pytest.raises(TrainingError) as e:
        fit(cfg, tmp_path / "local2", progress=False, resume=True, checkpoint_dir=drive)
    assert str(e.value).startswith(f"{drive / 'best.pt'}: the best epoch's weights (epoch 1) are neither in ")
    assert str(e.value).endswith("train it again in a new --out folder")


def test_time_limit_and_fit_seconds_count_every_session(syn48, tmp_path, monkeypatch) -> None:
    """A first session that used 59.9 s of a 1-minute limit: the resumed session stops after one more epoch
    (instead of restarting the clock), says it was the time limit, and fit_seconds includes the first session."""
    cfg = tiny(syn48, epochs=4, patience=None, time_limit_min=1.0)
    crash_in_epoch(monkeypatch, 1)
    with pytest.raises(Interrupt):
        fit(cfg, tmp_path / "run", progress=False)
    monkeypatch.undo()
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["elapsed"] > 0
    last["elapsed"] = 59.9  # stands in for a long first session (a slow machine, a long data cache fill)
    save_last(tmp_path / "run" / "last.pt", last)
    res = fit(cfg, tmp_path / "run", progress=False, resume=True)
    assert len(res.history) == 2 and res.stopped_epoch == 2 and res.stop_reason == "time_limit"
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["fit_seconds"] == res.fit_seconds and res.fit_seconds > 59.9
    assert load_checkpoint(tmp_path / "run" / "last.pt")["elapsed"] > 59.9


# ------------------------------------------------------------------------------------------ loaders under torchrun
class Draws(Dataset):
    """Each item: its index and a random draw (what an augmentation would use) from the worker's generator."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor(i), torch.rand(())


def test_each_process_share_decides_drop_last() -> None:
    """24 images, batch 16, 2 processes: each share is 12 images, one (partial) batch each, never zero steps."""
    ds = Draws(24)
    shares = [make_loader(ds, 16, True, torch.device("cpu"), 0, 0, 0, DistInfo(r, 2)) for r in range(2)]
    assert [len(loader) for loader in shares] == [1, 1]
    seen = [torch.cat([i for i, _ in loader]).tolist() for loader in shares]
    assert sorted(seen[0] + seen[1]) == list(range(24))  # disjoint shares covering the set
    assert len(make_loader(ds, 8, True, torch.device("cpu"), 0, 0, 0, DistInfo(0, 2))) == 1  # 12 = 8 + 4 dropped
    assert len(make_loader(ds, 16, True, torch.device("cpu"), 0)) == 1  # single process: 24 = 16 + 8 dropped


def test_loader_worker_draws_depend_on_the_rank() -> None:
    """Same (seed, epoch), different rank: different augmentation draws in the workers; same rank: the same."""
    ds = Draws(8)

    def draws(rank: int) -> list[float]:
        loader = make_loader(ds, 4, True, torch.device("cpu"), 1, 3, 5, DistInfo(rank, 2))
        return torch.cat([d for _, d in loader]).tolist()

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
