"""engine.lr_factor / build_scheduler: linear warmup then cosine, checked against the closed form epoch by epoch."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from starter_code.config import BASELINE
from starter_code.engine import build_scheduler, lr_factor

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def closed_form(epoch: int, base: float, epochs: int, warmup: int, eta_min: float, cosine: bool = True) -> float:
    """The intended learning rate at 0-based `epoch`, written independently of the engine."""
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    if not cosine:
        return base
    t, total = epoch - warmup, max(1, epochs - warmup)
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * t / total))


@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_cosine_lr_factor_matches_closed_form_every_epoch(warmup):
    cfg = replace(BASELINE, scheduler="cosine", epochs=10, lr=1e-3, eta_min=1e-5, warmup_epochs=warmup)
    for e in range(cfg.epochs):
        expected = closed_form(e, cfg.lr, cfg.epochs, warmup, cfg.eta_min)
        assert cfg.lr * lr_factor(cfg, e, cfg.lr) == pytest.approx(expected, rel=1e-12), e


def test_cosine_hand_values():
    cfg = replace(BASELINE, scheduler="cosine", epochs=4, lr=1.0, eta_min=0.0, warmup_epochs=0)
    got = [lr_factor(cfg, e, 1.0) for e in range(4)]
    c = math.cos(math.pi / 4)
    assert got == pytest.approx([1.0, (1 + c) / 2, 0.5, (1 - c) / 2])
    cfg = replace(cfg, warmup_epochs=2, epochs=6)  # warmup 1/3, 2/3, then cosine over 4 epochs from 1.0
    got = [lr_factor(cfg, e, 1.0) for e in range(6)]
    assert got == pytest.approx([1 / 3, 2 / 3, 1.0, (1 + c) / 2, 0.5, (1 - c) / 2])


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
