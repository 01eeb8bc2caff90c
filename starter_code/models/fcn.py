"""The seed's baseline FCN (its Table 1) and its dropout variant (its Table 2)."""

from __future__ import annotations

import torch
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


class _PointwiseChannelsLast(torch.autograd.Function):
    """A 1x1 conv (weight K x C x 1 x 1, bias K) on a channels_last input, as batched GEMMs over the pixels that
    read the N x H x W x C memory in place and write NCHW-contiguous logits; the input gradient comes back
    channels_last. Exactly the conv's math (sums over C, over N and pixels for the weight gradient)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        n, c, h, w = x.shape
        xs = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of the channels_last memory
        w2 = weight.reshape(weight.shape[0], c)
        out = torch.bmm(w2.expand(n, -1, -1), xs.transpose(1, 2))  # (N, K, H*W), contiguous
        if bias is not None:
            out += bias[:, None]
        ctx.save_for_backward(xs, w2)
        ctx.dims, ctx.weight_shape, ctx.has_bias = (n, c, h, w), weight.shape, bias is not None
        return out.view(n, -1, h, w)

    @staticmethod
    def backward(ctx, grad):
        xs, w2 = ctx.saved_tensors
        n, c, h, w = ctx.dims
        g = grad.reshape(n, -1, h * w)  # (N, K, H*W)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.bmm(g.transpose(1, 2), w2.expand(n, -1, -1)).view(n, h, w, c).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            gw = torch.bmm(g, xs).sum(0).reshape(ctx.weight_shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum((0, 2))
        return gx, gw, gb


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def pointwise_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(x)` for the 1x1 classifier, computed differently (same weights, same math, float rounding aside) when
    x is a channels_last CPU tensor: there oneDNN has no fast kernel for 21 output channels (PyTorch falls back to
    its slow conv2d), and channels_last logits then make the loss's log-softmax slow and copy them. Batched GEMMs
    with NCHW-contiguous logits cut the classifier + loss time by about a third (docs/BENCHMARKS.md).
    Anything else (NCHW, CUDA, autocast, dtype mix) runs `conv(x)` itself."""
    if (x.dim() != 4 or x.device.type != "cpu" or x.is_contiguous()
            or not x.is_contiguous(memory_format=torch.channels_last) or x.dtype != conv.weight.dtype
            or _autocast_on()):
        return conv(x)
    return _PointwiseChannelsLast.apply(x, conv.weight, conv.bias)


def transposed_decoder(channels: tuple[int, ...] = DECODER_CHANNELS) -> nn.Sequential:
    """Five 2x up-sampling blocks, 512-512-256-128-64-32: stride 32 back to full resolution."""
    return nn.Sequential(*[up(a, b) for a, b in zip(channels[:-1], channels[1:])])


class BaselineFCN(AnySize):
    """Encoder 5 x down (3-32-64-128-256-512), decoder 5 x up (512-512-256-128-64-32), 1x1 classifier.

    With `dropout=True` (the seed's Table 2): element-wise nn.Dropout p=0.1 after the first encoder block and
    p=0.15 after the first decoder block. Element-wise, not Dropout2d, because the seed used nn.Dropout; at these
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
        return pointwise_conv(self.decoder(self.encoder(x)), self.classifier)
