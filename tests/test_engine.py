"""The engine: repeatable CPU runs, weights reach the loss, the unweighted val cross-entropy, early stopping, the
time budget (on a virtual clock: a box twice as slow), the kept epoch, resume on a new machine, loaders under
torchrun."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from conftest import tiny
from torch.utils.data import Dataset

import starter_code.engine as engine
from starter_code import slowdown
from starter_code.checkpoint import TrainingError, load_checkpoint, save_last
from starter_code.config import BASELINE, EXPERIMENTS, Config, make_config
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.distributed import DistInfo
from starter_code.engine import build_criterion, early_stop_epoch, evaluate, fit, make_loader, resolve_device
from starter_code.runs import load_run

# one thread: the runs compared bit for bit use the same thread count, and tiny models run fastest on a shared box
pytestmark = pytest.mark.usefixtures("torch_single_thread")


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
    for key in ("train_loss", "val_loss", "val_ce", "val_miou", "val_pixel_acc", "lr", "seconds"):
        assert key in run.history[0]
    assert set(run.metrics["iou"]) == set(run.classes) and run.metrics["epoch"] == run.best_epoch
    best = max(run.history, key=lambda h: h["val_miou"])
    assert run.metrics["miou"] == pytest.approx(best["val_miou"])
    assert run.metrics["ce"] == best["val_ce"] and json.loads((run.run_dir / "metrics.json").read_text())["ce"]
    assert all(h["val_ce"] == pytest.approx(h["val_loss"], rel=1e-6) for h in run.history)  # unweighted training loss


def test_val_ce_is_the_unweighted_loss_whatever_the_training_loss(syn, tmp_path) -> None:
    """A weighted run's val_loss is its own weighted loss; val_ce is the plain cross-entropy of the same pass."""
    run = fit(small(syn, epochs=1, class_weights="inverse"), tmp_path / "w", progress=False)
    row = run.history[0]
    assert row["val_ce"] != pytest.approx(row["val_loss"], rel=1e-3)
    from starter_code.data import build_datasets

    _, val_ds = build_datasets(run.config)
    plain = torch.nn.CrossEntropyLoss(ignore_index=255)
    again = evaluate(run.model, make_loader(val_ds, 8, False, torch.device("cpu"), 0), 21, torch.device("cpu"),
                     plain, channels_last=run.config.channels_last, progress=False)
    assert again["loss"] == pytest.approx(row["val_ce"], rel=1e-5) == again["ce"]


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



def test_the_fused_optimizer_takes_the_default_adam_step() -> None:
    from starter_code.engine import build_optimizer
    from starter_code.models import build_model

    torch.manual_seed(0)
    cfg = replace(BASELINE, weight_decay=1e-4)
    fused_model = build_model("baseline", num_classes=21)
    plain_model = build_model("baseline", num_classes=21)
    plain_model.load_state_dict(fused_model.state_dict())
    start = next(fused_model.parameters()).detach().clone()
    fused = build_optimizer(fused_model, cfg, torch.device("cpu"))
    plain = torch.optim.Adam(plain_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    assert fused.defaults["fused"] is True
    for _ in range(3):
        grads = [torch.randn_like(p) for p in fused_model.parameters()]
        for model in (fused_model, plain_model):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
        fused.step()
        plain.step()
    for pf, pp in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(pf, pp, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(fused_model.parameters()), start)

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


def test_a_spent_budget_stops_and_keeps_the_best_epoch(syn, tmp_path) -> None:
    """Without a scheduler a budget only stops: here before the second epoch."""
    res = fit(small(syn, epochs=3, budget_min=1e-6, patience=1), tmp_path / "t", progress=False)
    assert len(res.history) == 1 and res.stopped_epoch == 1 and res.best_epoch == 1
    assert res.stop_reason == "budget"  # never reported as an early stop, even with patience set
    assert (tmp_path / "t" / "best.pt").exists() and (tmp_path / "t" / "metrics.json").exists()
    saved = json.loads((tmp_path / "t" / "history.json").read_text())
    assert saved["stop_reason"] == "budget" and saved["stopped_epoch"] == 1
    assert load_run(tmp_path / "t", weights=False).stop_reason == "budget"


def test_validation_every_k_epochs_and_always_the_last(syn, tmp_path) -> None:
    run = fit(small(syn, epochs=5, val_every=2, patience=None), tmp_path / "v", progress=False)
    validated = [h["epoch"] for h in run.history if h["val_miou"] is not None]
    assert validated == [2, 4, 5]
    assert all(h["val_loss"] is None and h["val_ce"] is None for h in run.history if h["epoch"] not in validated)
    assert run.best_epoch in validated and run.metrics["miou"] == max(h["val_miou"] for h in run.history
                                                                      if h["val_miou"] is not None)
    saved = json.loads((tmp_path / "v" / "history.json").read_text())["history"]
    assert saved[0]["val_miou"] is None and saved[1]["val_miou"] == run.history[1]["val_miou"]


def test_keep_last_reports_the_last_epoch(syn, tmp_path) -> None:
    run = fit(small(syn, epochs=3, patience=None, lr=0.05, keep="last"), tmp_path / "k", progress=False)
    assert run.best_epoch == run.metrics["epoch"] == 3 and run.metrics["miou"] == run.history[-1]["val_miou"]
    best, last = load_checkpoint(tmp_path / "k" / "best.pt"), load_checkpoint(tmp_path / "k" / "last.pt")
    assert best["epoch"] == 3 and all(torch.equal(best["model"][k], v) for k, v in last["model"].items())


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


def test_resume_on_a_new_machine_keeps_the_best_model(syn48, tmp_path, monkeypatch) -> None:
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


def test_budget_and_fit_seconds_count_every_session(syn48, tmp_path, monkeypatch) -> None:
    """A first session that used 59.9 s of a 1-minute budget: the resumed session stops after one more epoch
    (instead of restarting the clock), says it was the budget, and fit_seconds includes the first session."""
    cfg = tiny(syn48, epochs=4, patience=None, budget_min=1.0)
    crash_in_epoch(monkeypatch, 1)
    with pytest.raises(Interrupt):
        fit(cfg, tmp_path / "run", progress=False)
    monkeypatch.undo()
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["elapsed"] > 0
    last["elapsed"] = 59.9  # stands in for a long first session (a slow machine, a long data cache fill)
    save_last(tmp_path / "run" / "last.pt", last)
    res = fit(cfg, tmp_path / "run", progress=False, resume=True)
    assert len(res.history) == 2 and res.stopped_epoch == 2 and res.stop_reason == "budget"
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["fit_seconds"] == res.fit_seconds and res.fit_seconds > 59.9
    assert load_checkpoint(tmp_path / "run" / "last.pt")["elapsed"] > 59.9


# ------------------------------------------------------------------------------- the budget on a virtual clock
class VirtualClock:
    """Time that passes only while the slow-box hook sleeps: the engine's clock and the hook's sleep, swapped in.
    A run's timing is then exact, so "a box twice as slow" is exactly twice the delay per training step."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    c = VirtualClock()
    monkeypatch.setattr(engine, "perf_counter", c)
    monkeypatch.setattr(slowdown, "sleep", c.sleep)
    return c


def budgeted(root, **kw) -> Config:
    """tiny() with a 1-minute budget and a cosine schedule; 2 training steps per epoch, `epochs` only a cap."""
    return tiny(root, **{"epochs": 100, "patience": None, "scheduler": "cosine", "budget_min": 1.0, **kw})


def test_a_box_twice_as_slow_trains_half_the_epochs_and_still_ends_at_eta_min(syn48, tmp_path, monkeypatch,
                                                                            clock) -> None:
    cfg = budgeted(syn48, keep="last")
    runs = {}
    for delay in (2.0, 4.0):  # 2 steps per epoch: 4 s per epoch, then a box twice as slow (8 s)
        clock.now = 1000.0  # the wall clock's origin does not matter
        monkeypatch.setenv(slowdown.ENV_VAR, str(delay))
        runs[delay] = fit(cfg, tmp_path / f"delay{delay}", progress=False)
    fast, slow = runs[2.0], runs[4.0]
    assert (fast.epochs_run, slow.epochs_run) == (15, 7)  # 60 s / 4 s, and the 7 whole 8-s epochs that fit
    for run in (fast, slow):
        lrs = [h["lr"] for h in run.history]
        assert lrs[0] == cfg.lr and lrs[-1] == pytest.approx(cfg.eta_min, rel=1e-9)  # the whole schedule
        assert all(a > b for a, b in zip(lrs, lrs[1:]))
        assert run.fit_seconds <= 60 and (run.stopped_epoch, run.stop_reason) == (run.epochs_run, "budget")
        saved = json.loads((run.run_dir / "history.json").read_text())
        assert (saved["stop_reason"], saved["stopped_epoch"]) == ("budget", run.epochs_run)
        assert load_run(run.run_dir, weights=False).stop_reason == "budget"
        assert run.best_epoch == run.epochs_run  # keep="last": nothing picked on val
    assert fast.fit_seconds == 60.0 and slow.fit_seconds == 56.0


def test_a_budgeted_run_validates_its_planned_last_epoch(syn48, tmp_path, monkeypatch, clock) -> None:
    monkeypatch.setenv(slowdown.ENV_VAR, "2.0")
    run = fit(budgeted(syn48, val_every=4, keep="last"), tmp_path / "v", progress=False)
    assert [h["epoch"] for h in run.history if h["val_miou"] is not None] == [4, 8, 12, 15]
    assert run.best_epoch == run.epochs_run == 15 and run.history[-1]["lr"] == pytest.approx(run.config.eta_min)


def test_a_budgeted_run_resumed_ends_as_the_uninterrupted_one(syn48, tmp_path, monkeypatch, clock) -> None:
    """Killed in epoch 7 and resumed much later: the elapsed time is kept, so the plan, every learning rate, the
    weights and the stop are those of the run that was never interrupted."""
    cfg = budgeted(syn48)
    monkeypatch.setenv(slowdown.ENV_VAR, "2.0")
    ref = fit(cfg, tmp_path / "ref", progress=False)
    clock.now = 0.0
    with monkeypatch.context() as m:
        crash_in_epoch(m, 6)
        with pytest.raises(Interrupt):
            fit(cfg, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["elapsed"] == 24.0  # 6 epochs of 4 s
    clock.now = 5000.0  # resumed an hour later
    res = fit(cfg, tmp_path / "run", progress=False, resume=True)
    assert strip_time(res.history) == strip_time(ref.history) and len(res.history) == 15
    assert (res.stopped_epoch, res.stop_reason, res.fit_seconds) == (15, "budget", 60.0)
    assert json.dumps(res.metrics) == json.dumps(ref.metrics)


def test_a_bad_step_delay_is_one_line(syn48, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(slowdown.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"^STARTER_CODE_STEP_DELAY='fast': expected seconds per training step"):
        fit(tiny(syn48, epochs=1), tmp_path / "bad", progress=False)


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
