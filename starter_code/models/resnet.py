"""ResNet-34 transfer learning: the report's Table 4 FCN (`resnet34_fcn`) and a U-Net-style decoder with skips
(`resnet34_unet`), both on torchvision's ImageNet ResNet-34.

Pretrained weights are read from torch.hub's cache (`torch.hub.get_dir()/checkpoints/resnet34-b627a593.pth`,
i.e. `$TORCH_HOME/hub/checkpoints/`). The cache is checked first, so an offline machine that has the file never
touches the network; when it is missing one download is tried, and any failure raises
`PretrainedWeightsUnavailable` saying which file to fetch from where and where to put it. Nothing falls back
silently to random weights: pass `pretrained=False` to train from scratch.

The weights expect the ImageNet normalisation the datasets already apply (`data.transforms.IMAGENET_MEAN/STD`);
`weights_normalization()` returns the weights' own metadata and loading checks that the two agree.
`pretrained_available()` says (loudly, never raising) whether the weights can be used here; `encoder_init(cfg)`
how a config's encoder starts.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet34_Weights, resnet34

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .common import AnySize, xavier_init
from .fcn import DECODER_CHANNELS, transposed_decoder

if TYPE_CHECKING:
    from ..config import Config

WEIGHTS = ResNet34_Weights.IMAGENET1K_V1
WEIGHTS_URL: str = WEIGHTS.url  # https://download.pytorch.org/models/resnet34-b627a593.pth
WEIGHTS_FILE: str = Path(urlparse(WEIGHTS_URL).path).name  # resnet34-b627a593.pth
DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation (connect / each read), not for the whole file
ENCODER_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
SKIP_CHANNELS = (64, 64, 128, 256, 512)  # relu (stride 2), layer1 (4), layer2 (8), layer3 (16), layer4 (32)


class PretrainedWeightsUnavailable(RuntimeError):
    """The ImageNet weights are neither in torch.hub's cache nor downloadable; the message says how to fix it."""


def weights_cache_path() -> Path:
    """Where torchvision (and this module) look for the ResNet-34 weights: torch.hub.get_dir()/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def weights_normalization() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the pretrained weights were trained with, from torchvision's metadata."""
    t = WEIGHTS.transforms()
    return tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)


def _unavailable(reason: str) -> PretrainedWeightsUnavailable:
    path = weights_cache_path()
    return PretrainedWeightsUnavailable(
        f"ImageNet ResNet-34 weights unavailable: {reason}. On a machine with internet download {WEIGHTS_URL} "
        f"and copy the file, named exactly {WEIGHTS_FILE}, to {path} (the folder is torch.hub.get_dir()/checkpoints; "
        f"set TORCH_HOME to use another cache); or pass pretrained=False to train from scratch")


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torch.hub opens URLs without a timeout; bound each socket operation for the duration of the download."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def load_imagenet_state_dict(timeout: float = DOWNLOAD_TIMEOUT) -> dict[str, torch.Tensor]:
    """The torchvision ResNet-34 ImageNet state dict: from the cache if present, else one download attempt."""
    mean, std = weights_normalization()
    if mean != tuple(IMAGENET_MEAN) or std != tuple(IMAGENET_STD):  # would mean the datasets feed the wrong input
        raise RuntimeError(f"ResNet-34 weights expect mean {mean} / std {std} but the datasets normalise with "
                           f"{IMAGENET_MEAN} / {IMAGENET_STD}; update data.transforms")
    path = weights_cache_path()
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated copy, HTML error page saved under the name, ...
            raise _unavailable(f"{path} exists but cannot be read ({type(e).__name__}: {e}); delete it") from e
    try:
        with _socket_timeout(timeout):
            # looked up on torch.hub at call time (tests replace it); check_hash verifies the b627a593 prefix
            return torch.hub.load_state_dict_from_url(WEIGHTS_URL, model_dir=str(path.parent), map_location="cpu",
                                                      progress=False, check_hash=True, file_name=WEIGHTS_FILE,
                                                      weights_only=True)
    except (URLError, OSError, RuntimeError) as e:  # URLError/timeouts are OSErrors; a bad hash is a RuntimeError
        raise _unavailable(f"{WEIGHTS_FILE} is not in the cache and downloading it failed "
                           f"({type(e).__name__}: {e})") from e


def pretrained_available(download: bool = False, verbose: bool = True) -> bool:
    """True when the ImageNet ResNet-34 weights load into the encoder: from torch.hub's cache
    (`weights_cache_path()`), or after one download attempt when `download` (notebooks pass True on Colab only;
    elsewhere the network is never touched). Otherwise prints a loud banner with the exact file name, where to put
    it and where to get it, and returns False: a missing or unreadable file never raises here."""
    path = weights_cache_path()
    reason = f"{path} does not exist and no download was tried (downloads are tried on Colab only)"
    if path.is_file() or download:
        try:
            ResNet34Encoder(pretrained=True)  # loads the cache (or downloads once) and checks every key
            if verbose:
                print(f"ImageNet weights AVAILABLE: {WEIGHTS} loaded from {path}")
            return True
        except PretrainedWeightsUnavailable as e:
            reason = str(e).split(". On a machine")[0].removeprefix("ImageNet ResNet-34 weights unavailable: ")
            reason = reason.splitlines()[0] if reason else type(e).__name__
            reason = reason if len(reason) <= 240 else reason[:240] + " ..."
            if path.is_file():
                reason += f"\n  fix         : delete {path}; it is not the right file"
    if verbose:
        line = "!" * 98
        print(f"{line}\nPRETRAINED ImageNet ResNet-34 WEIGHTS NOT AVAILABLE: a ResNet-34 model can only be trained "
              f"FROM SCRATCH here\n(model_kwargs={{'pretrained': False}}); nothing can be fine-tuned from ImageNet.\n"
              f"  file needed : {WEIGHTS_FILE}\n  put it at   : {path}\n"
              f"  get it from : {WEIGHTS_URL} (on a machine with internet)\n  why         : {reason}\n{line}")
    return False


def encoder_init(cfg: Config) -> str:
    """How a config's encoder starts: 'ImageNet' or 'random (scratch)' for models with a `pretrained` switch,
    'random (no encoder to pretrain)' for the others."""
    from . import MODELS  # the registry of this package (its __init__ imports this module first)

    factory = MODELS.get(cfg.model)
    param = inspect.signature(factory).parameters.get("pretrained") if factory else None
    if param is None:
        return "random (no encoder to pretrain)"
    return "ImageNet" if cfg.model_kwargs.get("pretrained", param.default) else "random (scratch)"


class ResNet34Encoder(nn.Sequential):
    """torchvision ResNet-34 without avgpool and fc: conv1, bn1, relu, maxpool, layer1..4 (512 ch at stride 32).

    Child names equal torchvision's, so the ImageNet state dict loads key for key. Calling it returns the
    stride-32 map; `features(x)` returns the five stages a U-Net decoder needs (strides 2, 4, 8, 16, 32)."""

    def __init__(self, pretrained: bool = True) -> None:
        net = resnet34(weights=None)
        if pretrained:
            state = load_imagenet_state_dict()
            try:
                net.load_state_dict(state)
            except RuntimeError as e:
                raise _unavailable(f"{weights_cache_path()} is not a torchvision ResNet-34 state dict ({e}); "
                                   "delete it") from e
        super().__init__(OrderedDict((name, getattr(net, name)) for name in ENCODER_PARTS))
        self.pretrained = pretrained

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[relu (64 ch, /2), layer1 (64, /4), layer2 (128, /8), layer3 (256, /16), layer4 (512, /32)]."""
        x = self.relu(self.bn1(self.conv1(x)))
        feats = [x]
        x = self.maxpool(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


class ResNet34FCN(AnySize):
    """The report's Table 4: ResNet-34 encoder, the baseline's five transposed-conv up blocks
    (512-512-256-128-64-32), 1x1 classifier. Xavier init for decoder and classifier only."""

    stride = 32

    def __init__(self, num_classes: int = 21, pretrained: bool = True) -> None:
        super().__init__()
        self.encoder = ResNet34Encoder(pretrained)
        self.decoder = transposed_decoder()
        self.classifier = nn.Conv2d(DECODER_CHANNELS[-1], num_classes, kernel_size=1)
        xavier_init(self.decoder)
        xavier_init(self.classifier)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.decoder(self.encoder(x)))


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv (padding 1, no bias) -> BatchNorm2d -> ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """Bilinear 2x up-sampling to the skip's size, concatenate the skip, two 3x3 conv+BN+ReLU."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class ResNet34UNet(AnySize):
    """ResNet-34 encoder + U-Net decoder with skips from every encoder stage.

    layer4 (512, /32) -> up + layer3 (256) -> 256 -> up + layer2 (128) -> 128 -> up + layer1 (64) -> 64
    -> up + stem relu (64, /2) -> 64 -> bilinear 2x to full resolution -> 3x3 conv+BN+ReLU 32 -> 1x1 classifier.
    Bilinear up-sampling + convs (no transposed convs) avoids checkerboard artefacts. Xavier init for everything
    but the encoder."""

    stride = 32
    decoder_channels = (256, 128, 64, 64, 32)

    def __init__(self, num_classes: int = 21, pretrained: bool = True) -> None:
        super().__init__()
        self.encoder = ResNet34Encoder(pretrained)
        c = self.decoder_channels
        self.decoder = nn.ModuleList([
            UpBlock(SKIP_CHANNELS[4], SKIP_CHANNELS[3], c[0]),
            UpBlock(c[0], SKIP_CHANNELS[2], c[1]),
            UpBlock(c[1], SKIP_CHANNELS[1], c[2]),
            UpBlock(c[2], SKIP_CHANNELS[0], c[3]),
        ])
        self.head = conv_bn_relu(c[3], c[4])
        self.classifier = nn.Conv2d(c[4], num_classes, kernel_size=1)
        for m in (self.decoder, self.head, self.classifier):
            xavier_init(m)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        f2, f4, f8, f16, f32 = self.encoder.features(x)
        y = f32
        for block, skip in zip(self.decoder, (f16, f8, f4, f2)):
            y = block(y, skip)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.head(y))
