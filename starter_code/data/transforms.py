"""Joint image+mask transforms (torchvision.transforms.v2), drawn per sample per epoch.

Masks are `tv_tensors.Mask`, so every geometric op resizes them with nearest-neighbour and pads them with
the ignore value 255; photometric ops touch the image only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .classes import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS = ("eval", "none", "paper", "paper_color", "photo", "scale", "strong")
LIGHTING = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.03)  # paper_color and scale
HARSH_LIGHTING = dict(brightness=0.5, contrast=0.5, saturation=0.6, hue=0.05)  # photo
GRAYSCALE_P = 0.2  # photo: share of grey images, so colour alone cannot tell a class
SCALE_RANGE = (0.75, 1.5)  # `scale`: shorter side drawn in this range x size (cache keeps the top of it)
FILL = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}

Pair = tuple[torch.Tensor, torch.Tensor]


def normalize(image: torch.Tensor) -> torch.Tensor:
    """uint8 CHW image -> float, ImageNet-normalised."""
    return TF.normalize(image.float().div_(255), IMAGENET_MEAN, IMAGENET_STD)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize`, clamped to [0, 1] (for plots)."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(-1, 1, 1)
    return (image * std + mean).clamp(0, 1)


class EvalTransform:
    """No randomness. Optionally rescales the IMAGE so its shorter side is `size`; the mask stays native so
    metrics are computed on the real labels (the engine resizes logits back to the mask)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> Pair:
        if self.size is not None and min(image.shape[-2:]) != self.size:
            image = TF.resize(image, self.size, antialias=True)
        return image, mask

    def __repr__(self) -> str:
        return f"EvalTransform(size={self.size})"


def build_transform(preset: str, size: int | None) -> Callable[[torch.Tensor, torch.Tensor], Pair]:
    """A joint transform on (tv_tensors.Image uint8, tv_tensors.Mask) returning tensors of equal H x W.

    - eval: no randomness, image rescaled to shorter side `size` (None = native), mask untouched;
    - none (train_basic): shorter side to `size`, centre crop `size` x `size` (no squashing, no randomness);
    - paper: the report's recipe: random-resized-crop (area 0.9-1.0, aspect 3/4-4/3) on 30% of samples,
      horizontal flip on 30%;
    - paper_color: paper, then colour jitter of the image (brightness, contrast, saturation 0.6-1.4, hue 0.03):
      lighting that differs between videos (CamVid's dusk sequence) seen in training, labels untouched;
    - photo: paper, then a harsher colour jitter (brightness and contrast 0.5-1.5, saturation 0.4-1.6, hue
      0.05) and a grey image on 20%: cameras and lighting unlike any seen in training, shapes kept;
    - scale: shorter side drawn uniformly in SCALE_RANGE x `size`, a random `size` x `size` crop anywhere in the
      frame (padded with void where the frame is smaller), flip on 50%, then paper_color's colour jitter: the whole
      frame at moderate scales, unlike paper's centre crop, which never shows a wide frame's left and right edges;
    - strong: scale jitter 0.5-2.0, random crop (image padded with 0, mask with void 255), flip 0.5, then mild
      colour jitter of the image.
    """
    if preset == "eval":
        return EvalTransform(size)
    if size is None:
        raise ValueError(f"preset {preset!r} needs a fixed training size")
    base = [v2.Resize(size, antialias=True)]
    if preset == "none":
        ops = base + [v2.CenterCrop(size)]
    elif preset == "paper_color":
        ops = [*build_transform("paper", size).transforms,
               v2.ColorJitter(**LIGHTING)]  # image only
    elif preset == "photo":
        ops = [*build_transform("paper", size).transforms, v2.ColorJitter(**HARSH_LIGHTING),
               v2.RandomGrayscale(p=GRAYSCALE_P)]  # image only
    elif preset == "scale":
        lo, hi = (int(f * size) for f in SCALE_RANGE)
        ops = [v2.RandomResize(lo, hi + 1, antialias=True), v2.RandomCrop((size, size), fill=FILL, pad_if_needed=True),
               v2.RandomHorizontalFlip(p=0.5),
               v2.ColorJitter(**LIGHTING)]  # image only
    elif preset == "paper":
        # BEGIN SOLUTION
        # HINT: base, then RandomResizedCrop (scale 0.9-1, ratio 3/4-4/3) on 30% of samples, CenterCrop, flip p=0.3
        ops = base + [
            v2.RandomApply([v2.RandomResizedCrop(size, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3), antialias=True)], p=0.3),
            v2.CenterCrop(size),
            v2.RandomHorizontalFlip(p=0.3),
        ]
        # END SOLUTION
    elif preset == "strong":
        # BEGIN SOLUTION
        # HINT: RandomResize 0.5x-2x size, RandomCrop padded with FILL, flip p=0.5, mild ColorJitter
        ops = [
            v2.RandomResize(int(0.5 * size), int(2.0 * size) + 1, antialias=True),
            v2.RandomCrop(size, pad_if_needed=True, fill=FILL),
            v2.RandomHorizontalFlip(p=0.5),
            v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.02),  # image only
        ]
        # END SOLUTION
    else:
        raise ValueError(f"unknown augmentation preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return v2.Compose(ops)


def to_tv(image: torch.Tensor, mask: torch.Tensor) -> Pair:
    """Wrap plain tensors (uint8 CHW image, HW mask) as tv_tensors so v2 treats each correctly."""
    return tv_tensors.Image(image), tv_tensors.Mask(mask)
