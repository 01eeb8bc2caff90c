"""ResNet-34 transfer models and U-Net: any-size output, offline pretrained-weight handling, channel counts.

No test touches the internet: the download function is replaced by one that raises URLError, and urllib's
urlopen is blocked as well, so a mistake shows up as a failure rather than a real download.
"""

from __future__ import annotations

import urllib.request
from urllib.error import URLError

import pytest
import torch
import torchvision
from torch import nn

from starter_code.config import Config
from starter_code.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from starter_code.engine import param_groups
from starter_code.models import MODELS, build_model
from starter_code.models.resnet import (
    WEIGHTS_FILE,
    WEIGHTS_URL,
    PretrainedWeightsUnavailable,
    ResNet34Encoder,
    weights_cache_path,
    weights_normalization,
)
from starter_code.models.unet import UNet

SIZES = [(375, 500), (97, 131)]
SMALL = {  # name -> kwargs that keep a CPU forward at 375x500 cheap
    "resnet34_fcn": {"pretrained": False},
    "resnet34_unet": {"pretrained": False},
    "unet": {"base_width": 8},
    "unet_small": {},
}


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path and no network; restores torch.hub's dir afterwards."""
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("url"))
        raise URLError("network unreachable (test)")

    old_dir = torch.hub.get_dir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "urlopen", no_network, raising=False)  # torch.hub imported it by name
    try:
        yield tmp_path / "torch" / "hub" / "checkpoints", calls
    finally:
        torch.hub.set_dir(old_dir)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_output_is_input_size(name, size):
    torch.manual_seed(0)
    model = build_model(name, num_classes=21, **SMALL[name]).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 21, *size)
    assert torch.isfinite(out).all()


def test_registered():
    assert {"resnet34_fcn", "resnet34_unet", "unet", "unet_small"} <= set(MODELS)


def test_weights_metadata_matches_dataset_normalisation():
    mean, std = weights_normalization()
    assert mean == pytest.approx(IMAGENET_MEAN) and std == pytest.approx(IMAGENET_STD)
    t = torchvision.models.ResNet34_Weights.IMAGENET1K_V1.transforms()
    assert list(t.mean) == list(IMAGENET_MEAN) and list(t.std) == list(IMAGENET_STD)


def test_weights_file_and_url():
    assert WEIGHTS_FILE == "resnet34-b627a593.pth"
    assert WEIGHTS_URL == "https://download.pytorch.org/models/resnet34-b627a593.pth"


@pytest.mark.parametrize("name", ["resnet34_fcn", "resnet34_unet"])
def test_offline_without_cache_raises_clear_error(name, offline_cache):
    cache_dir, calls = offline_cache
    expected = cache_dir / WEIGHTS_FILE
    assert weights_cache_path() == expected
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        build_model(name, num_classes=21, pretrained=True)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert WEIGHTS_FILE in msg
    assert str(expected) in msg
    assert WEIGHTS_URL in msg
    assert "pretrained=False" in msg
    assert calls == [WEIGHTS_URL]  # one download attempt, through the (blocked) torch.hub function


def test_corrupt_cached_file_is_reported(offline_cache):
    cache_dir, calls = offline_cache
    cache_dir.mkdir(parents=True)
    (cache_dir / WEIGHTS_FILE).write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(PretrainedWeightsUnavailable, match="cannot be read"):
        build_model("resnet34_fcn", pretrained=True)
    assert calls == []


@pytest.mark.parametrize("name", ["resnet34_fcn", "resnet34_unet"])
def test_cached_weights_load_without_network(name, offline_cache):
    cache_dir, calls = offline_cache
    cache_dir.mkdir(parents=True)
    torch.manual_seed(123)
    state = torchvision.models.resnet34(weights=None).state_dict()
    torch.save(state, cache_dir / WEIGHTS_FILE)
    torch.manual_seed(7)  # a different stream: the model's own init would not reproduce `state`
    model = build_model(name, num_classes=21, pretrained=True)
    assert calls == []
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.encoder.layer4[2].bn2.running_var, state["layer4.2.bn2.running_var"])


def test_pretrained_false_never_touches_cache_or_network(offline_cache):
    cache_dir, calls = offline_cache
    build_model("resnet34_unet", pretrained=False)
    assert calls == [] and not cache_dir.exists()


def test_encoder_is_resnet34_without_head():
    enc = ResNet34Encoder(pretrained=False)
    assert [n for n, _ in enc.named_children()] == ["conv1", "bn1", "relu", "maxpool",
                                                    "layer1", "layer2", "layer3", "layer4"]
    ref = torchvision.models.resnet34(weights=None).state_dict()
    assert set(enc.state_dict()) == {k for k in ref if not k.startswith("fc.")}
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        feats = enc.eval().features(x)
        assert torch.equal(feats[-1], enc(x))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 48), (64, 16, 24), (128, 8, 12), (256, 4, 6),
                                                   (512, 2, 3)]


@pytest.mark.parametrize("name", ["resnet34_fcn", "resnet34_unet"])
def test_param_groups_split_encoder(name):
    model = build_model(name, num_classes=5, pretrained=False)
    assert isinstance(model.encoder, nn.Module)
    groups = param_groups(model, Config(encoder_lr=1e-4, lr=1e-3))
    assert [g["name"] for g in groups] == ["encoder", "decoder"]
    assert [g["lr"] for g in groups] == [1e-4, 1e-3]
    enc, dec = ({id(p) for p in g["params"]} for g in groups)
    assert not enc & dec and len(enc) + len(dec) == len(list(model.parameters()))
    assert {id(p) for p in model.classifier.parameters()} <= dec
    # freeze_encoder_epochs toggles exactly this
    model.encoder.requires_grad_(False)
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())


def test_decoder_xavier_encoder_untouched(offline_cache):
    cache_dir, _ = offline_cache
    cache_dir.mkdir(parents=True)
    state = torchvision.models.resnet34(weights=None).state_dict()
    torch.save(state, cache_dir / WEIGHTS_FILE)
    model = build_model("resnet34_fcn", pretrained=True)
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert torch.count_nonzero(model.classifier.bias) == 0  # xavier_init zeroes biases
    up = model.decoder[0][0]
    bound = (6 / (up.weight.shape[0] * 9 + up.weight.shape[1] * 9)) ** 0.5
    assert up.weight.abs().max() <= bound


def test_unet_paper_channels():
    model = UNet(num_classes=21, base_width=64)  # built, never run: 31M parameters
    assert model.encoder_channels == (64, 128, 256, 512, 1024)
    assert model.decoder_channels == (512, 256, 128, 64)
    convs = [[m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d)] for block in model.encoder]
    assert convs == [[c, c] for c in (64, 128, 256, 512, 1024)]
    for block, c in zip(model.decoder, (512, 256, 128, 64)):
        assert isinstance(block.up, nn.ConvTranspose2d) and block.up.kernel_size == (2, 2) and block.up.stride == (2, 2)
        assert (block.up.in_channels, block.up.out_channels) == (2 * c, c)
        first = block.conv[0]
        assert (first.in_channels, first.out_channels, first.kernel_size, first.padding) == (2 * c, c, (3, 3), (1, 1))
    assert isinstance(model.pool, nn.MaxPool2d) and model.pool.kernel_size == 2
    assert model.classifier.in_channels == 64 and model.classifier.kernel_size == (1, 1)
    assert model.stride == 16
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(31.04e6, rel=0.01)


def test_unet_small_width_and_validation():
    assert build_model("unet_small").encoder_channels == (16, 32, 64, 128, 256)
    assert build_model("unet", base_width=8).decoder_channels == (64, 32, 16, 8)
    with pytest.raises(ValueError):
        UNet(base_width=0)


def test_backward_runs():
    model = build_model("resnet34_unet", num_classes=3, pretrained=False)
    out = model(torch.randn(2, 3, 45, 61))
    out.mean().backward()
    assert model.encoder.conv1.weight.grad is not None
