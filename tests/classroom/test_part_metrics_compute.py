"""Part metrics_compute (15 points): `ConfusionMatrix.compute` derives every metric from the accumulated matrix.
Public tests: small fixed examples (the grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

import math

import pytest
import torch

from starter_code.metrics import ConfusionMatrix

# rows = ground truth, columns = prediction; class 2 never occurs, class 3 is predicted once but never true
MAT = [[3, 1, 0, 1],
       [2, 4, 0, 0],
       [0, 0, 0, 0],
       [0, 0, 0, 0]]


def _computed(mat: list[list[int]]) -> dict:
    cm = ConfusionMatrix(len(mat))
    cm.mat = torch.tensor(mat, dtype=torch.int64)
    return cm.compute()


def test_hand_computed_metrics() -> None:
    m = _computed(MAT)
    # tp = [3, 4, 0, 0], ground truth = [5, 6, 0, 0], predicted = [5, 5, 0, 1], 11 pixels
    assert m["pixel_acc"] == pytest.approx(7 / 11)
    iou = m["iou"]
    assert iou[0] == pytest.approx(3 / 7) and iou[1] == pytest.approx(4 / 7)
    assert math.isnan(iou[2]) and iou[3] == 0.0  # absent everywhere -> NaN; predicted but never true -> 0
    assert m["miou"] == pytest.approx((3 / 7 + 4 / 7 + 0) / 3)
    acc = m["class_acc"]
    assert acc[0] == pytest.approx(3 / 5) and acc[1] == pytest.approx(4 / 6)
    assert math.isnan(acc[2]) and math.isnan(acc[3])
    assert m["mean_class_acc"] == pytest.approx((3 / 5 + 4 / 6) / 2)
    assert m["fw_iou"] == pytest.approx(5 / 11 * 3 / 7 + 6 / 11 * 4 / 7)
    assert m["num_pixels"] == 11 and m["confusion"] == MAT


def test_plain_python_values() -> None:
    m = _computed(MAT)
    for key in ("pixel_acc", "mean_class_acc", "miou", "fw_iou"):
        assert type(m[key]) is float, key
    assert isinstance(m["iou"], list) and len(m["iou"]) == 4 and isinstance(m["num_pixels"], int)


def test_perfect_and_empty() -> None:
    perfect = _computed([[2, 0], [0, 5]])
    assert perfect["pixel_acc"] == perfect["miou"] == perfect["mean_class_acc"] == pytest.approx(1.0)
    empty = _computed([[0, 0], [0, 0]])
    assert math.isnan(empty["pixel_acc"]) and math.isnan(empty["miou"]) and empty["num_pixels"] == 0
