"""Model registry: `build_model("baseline", num_classes=21)` builds any model by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .fcn import BaselineFCN

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model factory to the registry under `name`."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = fn
        return fn

    return deco


@register("baseline")
def baseline(num_classes: int = 21) -> nn.Module:
    """The seed's Table 1 FCN."""
    return BaselineFCN(num_classes)


@register("baseline_dropout")
def baseline_dropout(num_classes: int = 21) -> nn.Module:
    """The seed's Table 2: the baseline with dropout 0.1 / 0.15."""
    return BaselineFCN(num_classes, dropout=True)


def build_model(name: str, num_classes: int = 21, **kwargs: Any) -> nn.Module:
    """Build a registered model by name."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
