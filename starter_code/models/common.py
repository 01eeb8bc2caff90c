"""Pieces shared by every model: any-size input handling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad H and W (bottom/right) up to a multiple; returns the padded tensor and the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


class AnySize(nn.Module):
    """Base for models whose layers need H, W divisible by `stride`: pads the input and crops the logits back,
    so the output is always exactly the input's H x W."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.stride)
        return self.forward_padded(x)[..., :h, :w]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform conv weights, zero biases (the report's choice); BatchNorm keeps its (1, 0) default."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
