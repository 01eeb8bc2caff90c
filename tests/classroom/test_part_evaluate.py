"""Part evaluate (15 points): `evaluate` runs the model in eval mode over the whole loader, counts every non-void
pixel into ONE confusion matrix (at the mask's resolution) and averages the loss over the samples. Public tests:
small fixed examples (the grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from starter_code.engine import evaluate

CPU = torch.device("cpu")


class Fixed(nn.Module):
    """Predicts class 1 where the image's first channel is positive, else class 0; notes its mode."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        one = (x[:, :1] > 0).float()
        return torch.cat([1 - one, one], 1) * 4


def _batch(pred: list[list[int]], target: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.tensor(pred, dtype=torch.float32)[None, None].expand(1, 3, -1, -1) * 2 - 1
    return image, torch.tensor(target)[None]


# batch 1 only has class 0 right, batch 2 only class 1: per-batch mIoU averages would differ from the split's
LOADER = [_batch([[0, 0, 1]], [[0, 0, 0]]), _batch([[1, 1, 0], [1, 1, 1]], [[1, 1, 1], [255, 1, 1]])]


def test_one_matrix_over_the_split() -> None:
    model = Fixed().train()
    m = evaluate(model, LOADER, 2, CPU, progress=False)
    assert m["confusion"] == [[2, 1], [1, 4]] and m["num_pixels"] == 8
    assert m["miou"] == pytest.approx((2 / 4 + 4 / 6) / 2)
    assert model.modes and not any(model.modes), "evaluate must put the model in eval mode"
    assert math.isnan(m["loss"])


def test_loss_is_averaged_over_samples() -> None:
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    m = evaluate(Fixed(), LOADER, 2, CPU, criterion=criterion, progress=False)
    losses = [criterion(Fixed()(x), y).item() for x, y in LOADER]
    assert m["loss"] == pytest.approx((losses[0] * 1 + losses[1] * 1) / 2)
