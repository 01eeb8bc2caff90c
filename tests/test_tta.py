"""Test-time augmentation (starter_code/models/tta.py): flip averaging, and that a run with tta="flip" predicts
with it everywhere (validation, load_model / evaluate / predict) while its checkpoint stores the bare network."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny
from torch import nn

from starter_code.cli import main
from starter_code.config import BASELINE, CHOICES, EXPERIMENTS
from starter_code.data import build_dataset
from starter_code.engine import evaluate, fit, make_loader
from starter_code.models.tta import TTA_CHOICES, FlipTTA, bare, with_tta
from starter_code.runs import load_model, load_run

pytestmark = pytest.mark.usefixtures("torch_single_thread")


class LeftShift(nn.Module):
    """Logits that are NOT mirror-symmetric: class 0 = the pixel, class 1 = its right-hand neighbour (0 at the
    right edge), so the mirrored pass differs from the plain one and the average is hand-checkable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        right = torch.cat([x[..., 1:], torch.zeros_like(x[..., :1])], dim=-1)
        return torch.cat([x, right], dim=1)


def test_flip_averages_the_image_and_its_mirror_by_hand() -> None:
    x = torch.tensor([[[[1.0, 2.0, 4.0]]]])  # 1 x 1 x 1 x 3
    out = FlipTTA(LeftShift())(x)
    assert torch.equal(out[0, 0, 0], torch.tensor([1.0, 2.0, 4.0]))  # the pixel itself: symmetric
    # plain: right neighbour [2, 4, 0]; mirrored [4, 2, 1] -> right neighbour [2, 1, 0] -> flipped back [0, 1, 2]
    assert torch.equal(out[0, 1, 0], torch.tensor([1.0, 2.5, 1.0]))


def test_flip_tta_is_mirror_equivariant_even_when_the_model_is_not() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, (3, 3), padding=(0, 2)), nn.ReLU(), nn.Conv2d(5, 4, (1, 2)))
    x = torch.randn(2, 3, 9, 11)
    assert not torch.allclose(net(x.flip(-1)), net(x).flip(-1), atol=1e-4), "premise: the net is not symmetric"
    tta = FlipTTA(net)
    torch.testing.assert_close(tta(x.flip(-1)), tta(x).flip(-1))


def test_with_tta_wraps_once_and_names_bad_values() -> None:
    net = nn.Conv2d(3, 2, 1)
    assert with_tta(net, None) is net and bare(net) is net
    wrapped = with_tta(net, "flip")
    assert isinstance(wrapped, FlipTTA) and bare(wrapped) is net
    assert with_tta(wrapped, "flip") is wrapped  # never flipped twice
    assert sum(p.numel() for p in wrapped.parameters()) == sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError, match="unknown test-time augmentation 'five'"):
        with_tta(net, "five")
    assert CHOICES["tta"] == TTA_CHOICES
    assert EXPERIMENTS["camvid_fast"].tta == "flip" and BASELINE.tta is None


def test_a_flip_run_validates_loads_and_checkpoints_consistently(syn48, tmp_path, capsys) -> None:
    cfg = tiny(syn48, name="tiny_flip", epochs=2, patience=None, keep="last", tta="flip")
    run = fit(cfg, tmp_path / "r", progress=False)
    assert isinstance(run.model, FlipTTA)
    val = build_dataset("synthetic", syn48, "val", "eval", 48)
    loader = make_loader(val, 8, False, torch.device("cpu"), 0)
    cpu = torch.device("cpu")
    with_flip = evaluate(run.model, loader, val.info.num_classes, cpu, progress=False)
    assert run.metrics["miou"] == pytest.approx(with_flip["miou"], abs=1e-6)  # validation used the flip
    assert run.history[-1]["val_miou"] == pytest.approx(with_flip["miou"], abs=1e-6)
    images = next(iter(loader))[0]
    with torch.no_grad():
        assert not torch.allclose(run.model(images), bare(run.model)(images)), "the flip changes the logits"
    ckpt = torch.load(tmp_path / "r" / "best.pt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("model.") for k in ckpt["model"]), "the checkpoint stores the bare network"
    loaded, loaded_cfg, _ = load_model(tmp_path / "r")
    assert isinstance(loaded, FlipTTA) and loaded_cfg.tta == "flip"
    again = evaluate(loaded, loader, val.info.num_classes, cpu, progress=False)
    assert again["miou"] == pytest.approx(with_flip["miou"], abs=1e-6)
    assert isinstance(load_run(tmp_path / "r").model, FlipTTA)
    # the command line, as a user meets it: same score, and it says the flip was used
    assert main(["evaluate", "--run", str(tmp_path / "r"), "--data-root", str(syn48), "--split", "val", "--quiet",
                 "--json", str(tmp_path / "e.json")]) == 0
    out = json.loads((tmp_path / "e.json").read_text())
    assert out["tta"] == "flip" and out["miou"] == pytest.approx(with_flip["miou"], abs=1e-6)
    assert "test-time augmentation: flip" in capsys.readouterr().out
