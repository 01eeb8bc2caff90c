"""U-Net (Ronneberger et al. 2015) as in the report's Table 6, with BatchNorm and same-padding convs.

Encoder: double 3x3 conv (padding 1) + BN + ReLU blocks of base*[1, 2, 4, 8, 16] channels (64-128-256-512-1024
for base_width=64, the paper), 2x2 max-pool between them (four pools: stride 16). Decoder: 2x2 transposed conv
(stride 2) halving the channels, concatenation of the encoder block at that scale, double conv; 1x1 classifier.
Padding-1 convs keep every skip the same size as the up-sampled map (the paper's valid convs needed cropping),
and AnySize pads the input to a multiple of 16, so any H x W works and the logits are exactly H x W.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import AnySize, xavier_init


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """(3x3 conv padding 1, no bias -> BatchNorm2d -> ReLU) x 2."""
    # BEGIN SOLUTION
    # HINT: (3x3 conv padding 1 without bias -> BatchNorm2d -> ReLU) twice, cin -> cout -> cout
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )
    # END SOLUTION


class UpConcat(nn.Module):
    """2x2 transposed conv (stride 2) cin -> cin/2, concatenate the skip (cin/2), double conv -> cout."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        self.conv = double_conv(cin // 2 + cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(AnySize):
    """`encoder`: five double-conv blocks (the last is the bottleneck), `decoder`: four UpConcat blocks,
    `classifier`: 1x1 conv. Conv weights Xavier-uniform like every seed model."""

    stride = 16

    def __init__(self, num_classes: int = 21, base_width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be a positive channel count, got {base_width}")
        chs = tuple(base_width * m for m in (1, 2, 4, 8, 16))
        self.encoder_channels = chs
        self.decoder_channels = tuple(reversed(chs[:-1]))
        self.encoder = nn.ModuleList([double_conv(a, b) for a, b in zip((in_channels, *chs[:-1]), chs)])
        self.pool = nn.MaxPool2d(2)
        self.decoder = nn.ModuleList([UpConcat(a, b) for a, b in zip(chs[:0:-1], self.decoder_channels)])
        self.classifier = nn.Conv2d(chs[0], num_classes, kernel_size=1)
        xavier_init(self)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.classifier(x)
