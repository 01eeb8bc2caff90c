"""Test-time augmentation: a trained model's logits averaged over the image and its horizontal mirror.

Wrapping the model (instead of changing `evaluate`) keeps every consumer — validation, `evaluate`, `predict`,
the report's figures — on the same predictions. The wrapper holds no weights of its own; checkpoints store the
bare model.
"""

from __future__ import annotations

import torch
from torch import nn

TTA_CHOICES = (None, "flip")


class FlipTTA(nn.Module):
    """Logits of the image and of its mirror (flipped back), averaged: one more forward pass per image."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) + self.model(x.flip(-1)).flip(-1)) / 2


def with_tta(model: nn.Module, tta: str | None) -> nn.Module:
    """`model` as it predicts under `tta` (None: the model itself; "flip": FlipTTA around it, never twice)."""
    if tta not in TTA_CHOICES:
        raise ValueError(f"unknown test-time augmentation {tta!r}; expected one of {TTA_CHOICES}")
    if tta is None or isinstance(model, FlipTTA):
        return model
    return FlipTTA(model)


def bare(model: nn.Module) -> nn.Module:
    """The trained network inside a test-time wrapper (or `model` itself)."""
    return model.model if isinstance(model, FlipTTA) else model
