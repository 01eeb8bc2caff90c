"""A CPU speed-up for the 1x1 classifier, kept apart from the models so they read like the paper's tables.

On a channels_last CPU tensor oneDNN has no fast kernel for a 1x1 conv with 21 output channels (PyTorch falls
back to its slow conv2d), and channels_last logits then make the loss's log-softmax slow and copy them.
`pointwise_conv` computes the same conv as batched GEMMs with NCHW-contiguous logits, which cuts the classifier +
loss time by about a third (docs/BENCHMARKS.md). Same weights, same math, float rounding aside.
"""

from __future__ import annotations

import torch
from torch import nn


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


def pointwise_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(x)` for a 1x1 classifier: as batched GEMMs when x is a channels_last CPU tensor of the conv's dtype
    (outside autocast); anything else (NCHW, CUDA, autocast, dtype mix) runs `conv(x)` itself."""
    if (x.dim() != 4 or x.device.type != "cpu" or x.is_contiguous()
            or not x.is_contiguous(memory_format=torch.channels_last) or x.dtype != conv.weight.dtype
            or torch.is_autocast_enabled("cpu")):
        return conv(x)
    return _PointwiseChannelsLast.apply(x, conv.weight, conv.bias)
