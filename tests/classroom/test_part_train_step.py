"""Part train_step (10 points): the core of one step in `train_one_epoch`: forward under autocast, loss,
zero_grad, backward, optimizer step (through the GradScaler under AMP). Public tests: small fixed examples (the
grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from starter_code.engine import train_one_epoch

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Recording(nn.Module):
    """A tiny segmentation model that notes whether it ran under autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
        self.autocast: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.net(x)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 6, 6, generator=g)
    masks = torch.randint(0, 3, (4, 6, 6), generator=g)
    masks[:, 0] = 255
    return [(images[:2], masks[:2]), (images[2:], masks[2:])]


def _model() -> Recording:
    torch.manual_seed(0)
    return Recording()


def test_one_epoch_does_forward_loss_backward_step_per_batch() -> None:
    model, batches = _model(), _batches()
    ref = copy.deepcopy(model)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    # by hand: plain SGD (no momentum), so a missing zero_grad (accumulated gradients) changes the weights
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    losses = []
    for images, masks in batches:
        loss = criterion(ref(images), masks)
        losses.append(loss.item())
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
    mean = train_one_epoch(model, batches, criterion, torch.optim.SGD(model.parameters(), lr=0.5), CPU, 0,
                           progress=False)
    assert mean == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6), f"{name} differs from one SGD step per batch"
    assert model.autocast == [False, False] and model.training


def test_loss_goes_down() -> None:
    model, batches = _model(), _batches()
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = [train_one_epoch(model, batches, criterion, opt, CPU, e, progress=False) for e in range(3)]
    assert losses[0] > losses[1] > losses[2]


class FakeScaler:
    """Stands in for torch.amp.GradScaler: records the calls, scales by 1."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.calls: list[str] = []
        self.optimizer = optimizer

    def is_enabled(self) -> bool:
        return True

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        self.calls.append("scale")
        return loss * 1.0

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        assert optimizer is self.optimizer
        self.calls.append("step")
        optimizer.step()

    def update(self) -> None:
        self.calls.append("update")


def test_amp_goes_through_the_scaler_under_autocast() -> None:
    model, batches = _model(), _batches()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    steps = []
    plain_step = opt.step
    opt.step = lambda *a, **k: (steps.append(1), plain_step(*a, **k))[1]
    scaler = FakeScaler(opt)
    mean = train_one_epoch(model, batches, nn.CrossEntropyLoss(ignore_index=255), opt, CPU, 0, scaler,
                           progress=False)
    assert model.autocast == [True, True], "the forward pass must run under torch.autocast when AMP is on"
    assert scaler.calls.count("scale") == 2 and scaler.calls[-3:] == ["scale", "step", "update"]
    assert scaler.calls == ["scale", "step", "update"] * 2
    assert len(steps) == 2, "under AMP the optimizer steps only through scaler.step"
    assert mean == mean and any(not torch.equal(p, before[k]) for k, p in model.state_dict().items())
