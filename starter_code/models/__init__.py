"""Model registry: `build_model("baseline", num_classes=21)` builds any model by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

TORCH_FLOOR = (2, 4)  # torch.is_autocast_enabled(device_type) and torch.amp.GradScaler(device); requirements.txt


def check_torch(version: str = torch.__version__) -> None:
    """Refuse a torch older than TORCH_FLOOR with one line saying how to upgrade (instead of a TypeError later)."""
    major, minor = (int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")[:2])
    if (major, minor) < TORCH_FLOOR:
        need = ".".join(map(str, TORCH_FLOOR))
        raise ImportError(f"torch {version} is too old for this kit, which needs torch>={need}: "
                          f"pip install -U 'torch>={need}' 'torchvision>=0.{TORCH_FLOOR[1] + 15}'")


check_torch()

from .fcn import BaselineFCN  # noqa: E402

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model factory to the registry under `name`."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = fn
        return fn

    return deco


@register("baseline")
def baseline(num_classes: int = 21) -> nn.Module:
    """The report's Table 1 FCN."""
    return BaselineFCN(num_classes)


@register("baseline_dropout")
def baseline_dropout(num_classes: int = 21) -> nn.Module:
    """The report's Table 2: the baseline with dropout 0.1 / 0.15."""
    return BaselineFCN(num_classes, dropout=True)


def build_model(name: str, num_classes: int = 21, **kwargs: Any) -> nn.Module:
    """Build a registered model by name."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------- transfer learning and U-Net (appended)
from .resnet import PretrainedWeightsUnavailable as PretrainedWeightsUnavailable  # noqa: E402
from .resnet import ResNet34FCN, ResNet34UNet  # noqa: E402
from .unet import UNet  # noqa: E402


@register("resnet34_fcn")
def resnet34_fcn(num_classes: int = 21, pretrained: bool = True) -> nn.Module:
    """The report's Table 4: ImageNet ResNet-34 encoder + the baseline's transposed-conv decoder."""
    return ResNet34FCN(num_classes, pretrained=pretrained)


@register("resnet34_unet")
def resnet34_unet(num_classes: int = 21, pretrained: bool = True) -> nn.Module:
    """ImageNet ResNet-34 encoder + U-Net decoder with skips at strides 16, 8, 4, 2 (not in the report)."""
    return ResNet34UNet(num_classes, pretrained=pretrained)


@register("unet")
def unet(num_classes: int = 21, base_width: int = 64) -> nn.Module:
    """The report's Table 6 U-Net, 64-128-256-512-1024 (base_width=64)."""
    return UNet(num_classes, base_width=base_width)


@register("unet_small")
def unet_small(num_classes: int = 21, base_width: int = 16) -> nn.Module:
    """U-Net at a quarter of the width (16-32-64-128-256) for CPU runs."""
    return UNet(num_classes, base_width=base_width)
