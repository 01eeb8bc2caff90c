"""engine.lr_factor / build_scheduler: linear warmup then cosine from the base lr (first epoch) to eta_min (last epoch),
checked against the closed form epoch by epoch; the budget's plan (next_position) on hand-made timings."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from starter_code.config import BASELINE
from starter_code.engine import build_scheduler, epochs_that_fit, lr_factor, next_position, planned_epochs

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def closed_form(epoch: int, base: float, epochs: int, warmup: int, eta_min: float, cosine: bool = True) -> float:
    """The intended learning rate at 0-based `epoch`, written independently of the engine."""
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    if not cosine:
        return base
    t, last = epoch - warmup, epochs - warmup - 1  # the cosine runs over t = 0 .. last
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * t / last)) if last > 0 else base


@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_cosine_lr_factor_matches_closed_form_every_epoch(warmup):
    cfg = replace(BASELINE, scheduler="cosine", epochs=10, lr=1e-3, eta_min=1e-5, warmup_epochs=warmup)
    for e in range(cfg.epochs):
        expected = closed_form(e, cfg.lr, cfg.epochs, warmup, cfg.eta_min)
        assert cfg.lr * lr_factor(cfg, e, cfg.lr) == pytest.approx(expected, rel=1e-12), e


def test_cosine_hand_values():
    cfg = replace(BASELINE, scheduler="cosine", epochs=5, lr=1.0, eta_min=0.0, warmup_epochs=0)
    got = [lr_factor(cfg, e, 1.0) for e in range(5)]
    c = math.cos(math.pi / 4)
    assert got == pytest.approx([1.0, (1 + c) / 2, 0.5, (1 - c) / 2, 0.0])
    cfg = replace(cfg, warmup_epochs=2, epochs=7)  # warmup 1/3, 2/3, then cosine over 5 epochs from 1.0
    got = [lr_factor(cfg, e, 1.0) for e in range(7)]
    assert got == pytest.approx([1 / 3, 2 / 3, 1.0, (1 + c) / 2, 0.5, (1 - c) / 2, 0.0])


@pytest.mark.parametrize(("epochs", "warmup"), [(12, 0), (6, 2), (2, 0)])
def test_cosine_starts_at_the_base_lr_and_ends_at_eta_min(epochs, warmup):
    cfg = replace(BASELINE, scheduler="cosine", epochs=epochs, lr=1e-3, eta_min=1e-5, warmup_epochs=warmup)
    lrs = [cfg.lr * lr_factor(cfg, e, cfg.lr) for e in range(epochs)]
    assert lrs[warmup] == pytest.approx(cfg.lr, rel=1e-12)
    assert lrs[-1] == pytest.approx(cfg.eta_min, rel=1e-12)


def test_one_cosine_epoch_trains_at_the_base_lr():
    cfg = replace(BASELINE, scheduler="cosine", epochs=3, warmup_epochs=2, lr=1e-3)
    assert cfg.lr * lr_factor(cfg, 2, cfg.lr) == pytest.approx(cfg.lr)
    assert lr_factor(replace(cfg, epochs=1, warmup_epochs=0), 0, cfg.lr) == 1.0


def test_a_position_places_the_epoch_on_the_cosine():
    cfg = replace(BASELINE, scheduler="cosine", epochs=10, lr=1.0, eta_min=0.0)
    assert lr_factor(cfg, 3, 1.0, position=0.5) == pytest.approx(0.5)
    assert lr_factor(cfg, 3, 1.0, position=1.0) == lr_factor(cfg, 3, 1.0, position=1.5) == pytest.approx(0.0)
    assert lr_factor(replace(cfg, warmup_epochs=5), 3, 1.0, position=1.0) == pytest.approx(4 / 6)  # warmup first


def test_warmup_without_scheduler_then_constant():
    cfg = replace(BASELINE, scheduler=None, epochs=6, warmup_epochs=2)
    assert [lr_factor(cfg, e, 1e-3) for e in range(6)] == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1])
    cfg = replace(cfg, warmup_epochs=0)
    assert [lr_factor(cfg, e, 1e-3) for e in range(6)] == [1.0] * 6


def test_unknown_scheduler_raises():
    cfg = replace(BASELINE, scheduler="step")
    with pytest.raises(ValueError, match="step"):
        lr_factor(cfg, 0, 1e-3)


@pytest.mark.parametrize("warmup", [0, 2])
def test_lambda_lr_from_build_scheduler_follows_closed_form(warmup):
    cfg = replace(BASELINE, scheduler="cosine", epochs=8, lr=2e-3, eta_min=1e-4, warmup_epochs=warmup)
    enc, dec = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    # two groups with different base lrs (as with encoder_lr): each follows its own closed form
    opt = torch.optim.SGD([{"params": [enc], "lr": 5e-4}, {"params": [dec], "lr": cfg.lr}], lr=cfg.lr)
    sched = build_scheduler(cfg, opt)
    for e in range(cfg.epochs):
        got = [g["lr"] for g in opt.param_groups]
        want = [closed_form(e, b, cfg.epochs, warmup, cfg.eta_min) for b in (5e-4, cfg.lr)]
        assert got == pytest.approx(want, rel=1e-9), e
        opt.step()
        sched.step()


# ------------------------------------------------------------------------------------------ the budget's plan
def test_epochs_that_fit_use_the_slowest_of_the_last_three():
    cfg = replace(BASELINE, budget_min=3.0)  # 180 s
    assert epochs_that_fit(cfg, 100.0, [50.0, 10.0, 20.0, 25.0]) == 3  # 80 s left / 25 s (not the old 50 s)
    assert epochs_that_fit(cfg, 100.0, [10.0, 30.0]) == 2
    assert epochs_that_fit(cfg, 190.0, [10.0]) == 0  # past the budget
    assert epochs_that_fit(BASELINE, 1e9, [10.0]) is None  # no budget


def test_the_plan_spreads_the_cosine_over_the_epochs_that_fit():
    cfg = replace(BASELINE, scheduler="cosine", epochs=100, budget_min=1.0)
    assert next_position(cfg, 1, 0.0, 9) == pytest.approx(1 / 9)  # as if the run had 10 epochs
    assert next_position(cfg, 5, 0.3, 1) == 1.0  # one more fits: it is the last, at eta_min
    assert next_position(cfg, 5, 0.3, 0) == 1.0  # a slow epoch: the eta_min epoch still runs
    assert next_position(cfg, 6, 1.0, 5) is None  # the last epoch trained at eta_min: stop
    assert next_position(cfg, 3, 0.5, 20) == 0.5  # the box got faster: the position never goes back
    assert next_position(replace(cfg, epochs=8), 3, 0.0, 50) == pytest.approx(3 / 7)  # epochs caps the plan
    assert next_position(replace(cfg, warmup_epochs=2), 4, 0.0, 4) == pytest.approx(2 / 5)  # after the warmup


def test_the_progress_total_follows_the_plan():
    cfg = replace(BASELINE, scheduler="cosine", epochs=55, budget_min=29.0)
    assert planned_epochs(cfg, 11, None, 0.3, 16) == 27  # a slow box: 16 more fit, not the 44 of epochs=55
    assert planned_epochs(cfg, 11, None, 0.2, 60) == 55  # a fast box: capped at epochs
    assert planned_epochs(cfg, 26, None, 1.0, 0) == 27  # the next epoch is the last, at eta_min
    assert planned_epochs(cfg, 27, 27, 1.0, 0) == 27  # stopped: the total is what ran
    assert planned_epochs(BASELINE, 3, None, 0.0, None) == BASELINE.epochs  # no budget


def test_without_a_scheduler_the_budget_only_marks_the_last_epoch_and_stops():
    cfg = replace(BASELINE, scheduler=None, budget_min=1.0)
    assert next_position(cfg, 3, 0.0, 2) == 0.0
    assert next_position(cfg, 3, 0.0, 1) == 1.0  # the last epoch (validated), then stop
    assert next_position(cfg, 4, 1.0, 3) is None
    assert next_position(cfg, 3, 0.0, 0) is None  # no time for another epoch: stop at once


def test_with_validation_every_k_epochs_a_validated_epoch_is_in_the_estimate():
    cfg = replace(BASELINE, budget_min=1.0, val_every=5)  # 60 s
    costs = [2.0, 2.0, 2.0, 2.0, 5.0, 2.0, 2.0, 2.0]  # epoch 5 was validated (5 s), the others not
    assert epochs_that_fit(cfg, 20.0, costs) == 8  # 40 s / 5 s: the validated epoch counts
    assert epochs_that_fit(replace(cfg, val_every=1), 20.0, costs) == 20  # last three only
