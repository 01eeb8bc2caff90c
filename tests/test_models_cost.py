"""models/cost.py: the one FLOP counter, checked against the layer arithmetic of the report's Table 1 FCN."""

from __future__ import annotations

import torch

from starter_code.config import EXPERIMENTS
from starter_code.models import build_model
from starter_code.models.cost import cost_table, forward_flops, meta_model, train_step_flops

# (in channels, out channels, side of the map the 3x3 kernel slides over) for BaselineFCN at 224x224
ENCODER = [(3, 32, 112), (32, 64, 56), (64, 128, 28), (128, 256, 14), (256, 512, 7)]  # strided conv: output side
DECODER = [(512, 512, 7), (512, 256, 14), (256, 128, 28), (128, 64, 56), (64, 32, 112)]  # transposed: input side
CLASSIFIER = 2 * 32 * 21 * 224 * 224


def _conv3x3(layers: list[tuple[int, int, int]]) -> int:
    return sum(2 * cin * cout * 9 * side * side for cin, cout, side in layers)  # a multiply-add = 2 FLOPs


def test_forward_flops_equal_the_layer_arithmetic_of_the_baseline() -> None:
    expected = _conv3x3(ENCODER) + _conv3x3(DECODER) + CLASSIFIER
    assert forward_flops(meta_model("baseline"), 224) == expected == 2_632_433_664


def test_train_step_is_three_forwards_minus_the_input_gradient() -> None:
    """The backward costs two forwards (input and weight gradients), except no gradient for the image itself."""
    fwd = forward_flops(meta_model("baseline"), 224)
    first_layer = _conv3x3(ENCODER[:1])
    assert train_step_flops(meta_model("baseline"), 224) == 3 * fwd - first_layer


def test_meta_and_real_models_count_the_same_and_modes_are_restored() -> None:
    torch.manual_seed(0)
    real = build_model("baseline")  # on the CPU, train mode
    assert forward_flops(real, (64, 96)) == forward_flops(meta_model("baseline"), (64, 96))
    real.eval()
    assert train_step_flops(real, 64) == train_step_flops(meta_model("baseline"), 64)
    assert not real.training and all(p.grad is None for p in real.parameters())


def test_meta_model_never_asks_for_pretrained_weights() -> None:
    m = meta_model("resnet34_fcn")  # the registry's default is pretrained=True; no file, no network here
    assert next(m.parameters()).device.type == "meta"


def test_cost_table_relative_to_the_reference() -> None:
    configs = {k: EXPERIMENTS[k] for k in ("baseline", "unet_cpu", "resnet34_fcn")}
    table = cost_table(configs, image_size=224)
    col = "GFLOP / image (224x224, forward)"
    assert list(table.index) == ["baseline", "unet_cpu", "resnet34_fcn"]
    assert table.loc["baseline", col] == 2.632433664
    assert table.loc["baseline", "GFLOP x baseline"] == 1.0 and table.loc["baseline", "parameters x baseline"] == 1.0
    assert table.loc["resnet34_fcn", "parameters"] > table.loc["baseline", "parameters"]
    assert "GFLOP x baseline" not in cost_table({"unet_cpu": EXPERIMENTS["unet_cpu"]}).columns
