"""The engine: repeatable CPU runs, weights reach the loss, early stopping, checkpoints of plain data."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from starter_code.config import BASELINE, EXPERIMENTS, Config, get_experiment
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.engine import build_criterion, early_stop_epoch, fit, resolve_device


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
    assert set(get_experiment("cosine").diff()) == {"name", "scheduler"}
    assert Config.from_dict(BASELINE.to_dict()) == BASELINE
    with pytest.raises(KeyError, match="unknown experiment"):
        get_experiment("nope")


def test_device_auto_is_cpu_here() -> None:
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"


def test_time_limit_rule() -> None:
    from starter_code.engine import over_time_limit

    rows = [{"seconds": 50.0}, {"seconds": 70.0}]
    cfg = replace(BASELINE, time_limit_min=3.0)  # 180 s
    assert not over_time_limit(cfg, 100.0, rows)  # 100 + the slowest epoch (70) = 170 <= 180
    assert over_time_limit(cfg, 111.0, rows)  # 181 > 180
    assert not over_time_limit(cfg, 111.0, [])  # no epoch measured yet
    assert not over_time_limit(BASELINE, 1e9, rows)  # no limit


def test_time_limit_stops_early_and_keeps_the_best_epoch(syn, tmp_path) -> None:
    res = fit(small(syn, epochs=3, time_limit_min=1e-6, patience=None), tmp_path / "t", progress=False)
    assert len(res.history) == 1 and res.stopped_epoch == 1 and res.best_epoch == 1
    assert (tmp_path / "t" / "best.pt").exists() and (tmp_path / "t" / "metrics.json").exists()
