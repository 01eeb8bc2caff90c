"""The report's baseline FCN (its Table 1) and its dropout variant (its Table 2)."""

from __future__ import annotations

import torch
from torch import nn

from .common import AnySize, xavier_init
from .fast_cpu import pointwise_conv

ENCODER_CHANNELS = (3, 32, 64, 128, 256, 512)
DECODER_CHANNELS = (512, 512, 256, 128, 64, 32)


def down(cin: int, cout: int) -> nn.Sequential:
    """Conv2d k3 s2 p1 -> ReLU -> BatchNorm2d (the report's order: BN after the activation)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def up(cin: int, cout: int) -> nn.Sequential:
    """ConvTranspose2d k3 s2 p1 output_padding 1 -> ReLU -> BatchNorm2d: doubles H and W exactly."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    )


def transposed_decoder(channels: tuple[int, ...] = DECODER_CHANNELS) -> nn.Sequential:
    """Five 2x up-sampling blocks, 512-512-256-128-64-32: stride 32 back to full resolution."""
    return nn.Sequential(*[up(a, b) for a, b in zip(channels[:-1], channels[1:])])


class BaselineFCN(AnySize):
    """Encoder 5 x down (3-32-64-128-256-512), decoder 5 x up (512-512-256-128-64-32), 1x1 classifier.

    With `dropout=True` (the report's Table 2): element-wise nn.Dropout p=0.1 after the first encoder block and
    p=0.15 after the first decoder block. Element-wise, not Dropout2d, because the report used nn.Dropout; at these
    early, wide feature maps channel dropout would remove a whole 32-channel map's worth of signal at a time.
    """

    def __init__(self, num_classes: int = 21, dropout: bool = False) -> None:
        super().__init__()
        enc = [down(a, b) for a, b in zip(ENCODER_CHANNELS[:-1], ENCODER_CHANNELS[1:])]
        dec = list(transposed_decoder())
        if dropout:
            enc.insert(1, nn.Dropout(p=0.1))
            dec.insert(1, nn.Dropout(p=0.15))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.classifier = nn.Conv2d(DECODER_CHANNELS[-1], num_classes, kernel_size=1)
        xavier_init(self)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        # the 1x1 classifier as `self.classifier(...)`, computed faster on channels_last CPU input (fast_cpu.py)
        return pointwise_conv(self.decoder(self.encoder(x)), self.classifier)
