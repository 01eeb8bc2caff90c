"""The seed's baseline FCN (its Table 1) and its dropout variant (its Table 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import AnySize, xavier_init

ENCODER_CHANNELS = (3, 32, 64, 128, 256, 512)
DECODER_CHANNELS = (512, 512, 256, 128, 64, 32)


def down(cin: int, cout: int) -> nn.Sequential:
    """Conv2d k3 s2 p1 -> ReLU -> BatchNorm2d (the seed's order: BN after the activation)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def up(cin: int, cout: int) -> nn.Sequential:
    """ConvTranspose2d k3 s2 p1 output_padding 1 -> ReLU -> BatchNorm2d: doubles H and W exactly."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    )


def pointwise_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(x)` for a 1x1, stride-1, ungrouped conv, computed as ONE matrix product over the pixels when x is
    channels_last (N x H x W x C in memory): oneDNN's 1x1 convolution with few (21) output channels runs at a few
    GFLOP/s on CPU, a GEMM near the matmul rate. Same weights, same math (float rounding aside); the result keeps
    the channels_last layout. Falls back to `conv(x)` for any other layout."""
    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return conv(x)
    y = F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)  # (N, H, W, K), contiguous
    return y.permute(0, 3, 1, 2)  # (N, K, H, W) view in channels_last layout


def transposed_decoder(channels: tuple[int, ...] = DECODER_CHANNELS) -> nn.Sequential:
    """Five 2x up-sampling blocks, 512-512-256-128-64-32: stride 32 back to full resolution."""
    return nn.Sequential(*[up(a, b) for a, b in zip(channels[:-1], channels[1:])])


class BaselineFCN(AnySize):
    """Encoder 5 x down (3-32-64-128-256-512), decoder 5 x up (512-512-256-128-64-32), 1x1 classifier.

    With `dropout=True` (the seed's Table 2): element-wise nn.Dropout p=0.1 after the first encoder block and
    p=0.15 after the first decoder block. Element-wise, not Dropout2d, because the seed used nn.Dropout; at these
    early, wide feature maps channel dropout would remove a whole 32-channel map's worth of signal at a time.

    `fast` (default True) only changes HOW the classifier is computed on channels_last input (`pointwise_conv`),
    never the parameters or the result; `model.fast = False` gives the plain formulation (the benchmarks'
    reference loop and the equivalence tests use it).
    """

    fast: bool = True

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
        x = self.decoder(self.encoder(x))
        return pointwise_conv(x, self.classifier) if self.fast else self.classifier(x)
