"""models.resnet's weights helpers: whether the ImageNet weights can be used here (never raising, never touching
the network unless asked), and how a config's encoder starts."""

from __future__ import annotations

import pytest
import torch

from starter_code.config import EXPERIMENTS
from starter_code.models import resnet


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("the network must not be touched"))
    return tmp_path / "hub" / "checkpoints" / resnet.WEIGHTS_FILE


def test_missing_weights_give_a_banner_not_an_error(empty_hub, capsys) -> None:
    assert resnet.pretrained_available() is False
    out = capsys.readouterr().out
    assert "WEIGHTS NOT AVAILABLE" in out and f"put it at   : {empty_hub}" in out and resnet.WEIGHTS_URL in out
    assert "no download was tried" in out


def test_a_broken_weights_file_is_named_with_the_fix(empty_hub, capsys) -> None:
    empty_hub.parent.mkdir(parents=True)
    empty_hub.write_text("<html>not a checkpoint</html>")
    assert resnet.pretrained_available(verbose=True) is False
    assert f"fix         : delete {empty_hub}" in capsys.readouterr().out


def test_download_is_tried_only_when_asked(empty_hub, monkeypatch, capsys) -> None:
    tried = []

    def fail(*a, **k):
        tried.append(a[0])
        raise OSError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    assert resnet.pretrained_available(download=True, verbose=False) is False
    assert tried == [resnet.WEIGHTS_URL] and capsys.readouterr().out == ""


def test_encoder_init_reads_the_config() -> None:
    assert resnet.encoder_init(EXPERIMENTS["baseline"]) == "random (no encoder to pretrain)"
    assert resnet.encoder_init(EXPERIMENTS["unet_cpu"]) == "random (no encoder to pretrain)"
    assert resnet.encoder_init(EXPERIMENTS["resnet34_fcn"]) == "ImageNet"
    assert resnet.encoder_init(EXPERIMENTS["resnet34_unet_scratch"]) == "random (scratch)"
