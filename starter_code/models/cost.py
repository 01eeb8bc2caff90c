"""What a model costs: parameters and FLOPs, counted on the meta device (no memory, no compute, no weights file).

FLOPs are what torch.utils.flop_counter counts: convolutions and matrix products, a multiply-add = 2 FLOPs;
BatchNorm, ReLU, pooling and the loss are not counted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Config


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs that torch.utils.flop_counter counts while running `fn()`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))


def forward_flops(model: nn.Module, image_size: int | tuple[int, int] = 224) -> int:
    """FLOPs of one forward pass (eval mode, no grad) on one image of image_size (a side, or (H, W))."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, *_hw(image_size), device=device)
    try:
        with torch.no_grad():
            return count_flops(lambda: model(x))
    finally:
        model.train(was_training)


def train_step_flops(model: nn.Module, image_size: int | tuple[int, int] = 224, num_classes: int = 21) -> int:
    """FLOPs of forward + backward (train mode, cross-entropy loss) for one image of image_size: about 3x the
    forward (the backward computes the gradients of both the inputs and the weights of every layer). The
    gradients are computed, not accumulated: the model's `.grad`s are left as they were."""
    device = next(model.parameters()).device
    hw = _hw(image_size)
    x = torch.zeros(1, 3, *hw, device=device)
    y = torch.zeros(1, *hw, dtype=torch.long, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.train()
    try:
        return count_flops(lambda: torch.autograd.grad(nn.functional.cross_entropy(model(x), y, ignore_index=255),
                                                       params))
    finally:
        model.train(was_training)


def meta_model(name: str, num_classes: int = 21, **kwargs: Any) -> nn.Module:
    """A registered model built on the meta device, with pretrained=False where the factory takes it."""
    from . import MODELS, build_model

    if "pretrained" in inspect.signature(MODELS[name]).parameters:
        kwargs["pretrained"] = False
    with torch.device("meta"):
        return build_model(name, num_classes=num_classes, **kwargs)


def cost_table(configs: Mapping[str, Config], image_size: int = 224, reference: str | None = "baseline",
               num_classes: int = 21) -> pd.DataFrame:
    """Per config: model, parameters and forward GFLOPs for one image_size x image_size image (`forward_flops`),
    and both relative to `reference` when it is among the configs (a DataFrame)."""
    import pandas as pd

    flops_col = f"GFLOP / image ({image_size}x{image_size}, forward)"
    rows = []
    for name, cfg in configs.items():
        model = meta_model(cfg.model, num_classes, **cfg.model_kwargs)
        rows.append({"name": name, "model": cfg.model, "parameters": sum(p.numel() for p in model.parameters()),
                     flops_col: forward_flops(model, image_size) / 1e9})
    df = pd.DataFrame(rows).set_index("name")
    if reference is not None and reference in configs:
        for col in ("parameters", flops_col):
            df[f"{col.split(' ')[0]} x {reference}"] = df[col] / df.loc[reference, col]
    return df
