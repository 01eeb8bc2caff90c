"""Model registry and the report's baseline (Table 1) / dropout (Table 2) architectures."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from starter_code.models import MODELS, build_model

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ODD_SIZES = [(375, 500), (97, 131), (33, 47)]
LEAF_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.ReLU, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)


def build_offline(name: str, num_classes: int = 21) -> nn.Module:
    """A registered model without pretrained weights (no download; the shapes do not depend on the weights)."""
    params = inspect.signature(MODELS[name]).parameters
    kwargs = {"pretrained": False} if "pretrained" in params else {}
    return build_model(name, num_classes=num_classes, **kwargs)


def forward_order(model: nn.Module, size: tuple[int, int] = (64, 64)) -> list[nn.Module]:
    """The leaf modules in the order they actually run in a forward pass (recorded with hooks)."""
    calls: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append(mod))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, *size))
    finally:
        for h in hooks:
            h.remove()
    return calls


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_returns_logits_of_the_input_size(name):
    torch.manual_seed(0)
    model = build_offline(name, num_classes=21).eval()
    with torch.no_grad():
        for h, w in ODD_SIZES:
            out = model(torch.randn(1, 3, h, w))
            assert tuple(out.shape) == (1, 21, h, w), (name, h, w)
            assert torch.isfinite(out).all()


def test_num_classes_sets_the_logit_channels():
    model = build_model("baseline", num_classes=11).eval()
    with torch.no_grad():
        assert tuple(model(torch.zeros(2, 3, 33, 47)).shape) == (2, 11, 33, 47)


def test_baseline_has_the_seed_table1_structure():
    model = build_model("baseline", num_classes=21)
    calls = forward_order(model)
    assert all(isinstance(m, LEAF_TYPES) for m in calls), [type(m).__name__ for m in calls]
    assert len(calls) == 5 * 3 + 5 * 3 + 1
    # every leaf module runs exactly once, and there are no others
    assert len({id(m) for m in calls}) == len(calls)
    assert len([m for m in model.modules() if not list(m.children())]) == len(calls)

    enc_ch = [3, 32, 64, 128, 256, 512]
    for i in range(5):
        conv, act, bn = calls[3 * i: 3 * i + 3]
        assert type(conv) is nn.Conv2d
        assert (conv.in_channels, conv.out_channels) == (enc_ch[i], enc_ch[i + 1])
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (2, 2), (1, 1))
        assert type(act) is nn.ReLU  # ReLU, THEN BatchNorm (the report's order)
        assert type(bn) is nn.BatchNorm2d and bn.num_features == enc_ch[i + 1]

    dec_ch = [512, 512, 256, 128, 64, 32]
    for i in range(5):
        deconv, act, bn = calls[15 + 3 * i: 15 + 3 * i + 3]
        assert type(deconv) is nn.ConvTranspose2d
        assert (deconv.in_channels, deconv.out_channels) == (dec_ch[i], dec_ch[i + 1])
        assert (deconv.kernel_size, deconv.stride, deconv.padding) == ((3, 3), (2, 2), (1, 1))
        assert deconv.output_padding == (1, 1)
        assert type(act) is nn.ReLU
        assert type(bn) is nn.BatchNorm2d and bn.num_features == dec_ch[i + 1]

    head = calls[-1]
    assert type(head) is nn.Conv2d
    assert (head.in_channels, head.out_channels, head.kernel_size) == (32, 21, (1, 1))


@pytest.mark.parametrize("name", ["baseline", "baseline_dropout"])
def test_xavier_uniform_init_and_zero_biases(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=21)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 11
    for m in convs:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = m.weight.detach()
        assert float(w.abs().max()) <= bound + 1e-7, m
        assert float(w.abs().max()) > 0.9 * bound, m  # fills the whole Xavier range (PyTorch's default does not)
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.12), m  # std of U(-a, a)
        assert m.bias is not None and torch.count_nonzero(m.bias) == 0, m
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_baseline_dropout_positions_and_rates():
    model = build_model("baseline_dropout", num_classes=21)
    drops = [m for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.Dropout3d))]
    assert len(drops) == 2 and all(type(d) is nn.Dropout for d in drops)  # element-wise, as in the report
    calls = forward_order(model)
    kinds = [type(m).__name__ for m in calls]
    i, j = [k for k, m in enumerate(calls) if type(m) is nn.Dropout]
    # right after the first encoder block (Conv, ReLU, BN) and right after the first decoder block
    assert kinds[:4] == ["Conv2d", "ReLU", "BatchNorm2d", "Dropout"] and calls[i].p == pytest.approx(0.1)
    assert i == 3
    assert kinds[j - 3: j] == ["ConvTranspose2d", "ReLU", "BatchNorm2d"] and calls[j].p == pytest.approx(0.15)
    assert kinds.index("ConvTranspose2d") == j - 3  # the first decoder block
    # otherwise identical to the baseline
    base = build_model("baseline", num_classes=21)
    assert [v.shape for v in model.state_dict().values()] == [v.shape for v in base.state_dict().values()]
    assert [t for t in kinds if t != "Dropout"] == [type(m).__name__ for m in forward_order(base)]


def test_baseline_dropout_is_deterministic_in_eval_and_stochastic_in_train():
    torch.manual_seed(0)
    model = build_model("baseline_dropout", num_classes=21)
    x = torch.randn(2, 3, 33, 47)
    with torch.no_grad():
        model.eval()
        a, b = model(x), model(x)
        assert torch.equal(a, b)
        model.train()
        c, d = model(x), model(x)
        assert not torch.equal(c, d)


def test_build_model_unknown_name_lists_the_registered_names():
    with pytest.raises(KeyError) as exc:
        build_model("no_such_model")
    msg = str(exc.value)
    assert "no_such_model" in msg
    for name in MODELS:
        assert name in msg


def test_torch_floor_is_the_one_requirements_state_and_older_torch_is_refused_in_one_line() -> None:
    import re
    from pathlib import Path

    from starter_code.models import TORCH_FLOOR, check_torch

    root = Path(__file__).resolve().parents[1]
    need = ".".join(map(str, TORCH_FLOOR))
    for name in ("requirements.txt", "pyproject.toml"):
        floors = re.findall(r"torch>=([0-9.]+)", (root / name).read_text())
        assert floors == [need], f"{name} states torch>={floors}, the code needs {need}"
    check_torch(torch.__version__)  # the installed torch passes
    check_torch(f"{need}.0+cu121")
    with pytest.raises(ImportError, match=rf"torch 2\.3\.1 is too old.*torch>={need}"):
        check_torch("2.3.1")
    with pytest.raises(ImportError, match="too old"):
        check_torch("1.13.1+cpu")
