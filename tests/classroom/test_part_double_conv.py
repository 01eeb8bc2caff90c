"""Part double_conv (10 points): U-Net's block, (3x3 conv padding 1 without bias -> BatchNorm2d -> ReLU) x 2.
Public tests: small fixed examples (the grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from starter_code.models.unet import UNet, double_conv


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_structure() -> None:
    block = double_conv(3, 5)
    assert isinstance(block, nn.Sequential)
    assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 2
    c1, b1, _, c2, b2, _ = block
    for conv, cin in ((c1, 3), (c2, 5)):
        assert (conv.in_channels, conv.out_channels) == (cin, 5)
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
        assert conv.bias is None
    assert b1.num_features == b2.num_features == 5


def test_output_shape_and_non_negative() -> None:
    torch.manual_seed(0)
    y = double_conv(3, 4)(torch.randn(2, 3, 9, 11))
    assert y.shape == (2, 4, 9, 11)
    assert bool((y >= 0).all()) and bool((y > 0).any())


def test_unet_built_from_it() -> None:
    torch.manual_seed(0)
    model = UNet(num_classes=3, base_width=2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 20, 28)).shape == (1, 3, 20, 28)
    assert model.encoder[0][0].out_channels == 2 and model.encoder[-1][3].out_channels == 32
