"""ConfusionMatrix and metrics: hand-computed cases, void handling, accumulation, torchmetrics agreement,
the report's per-batch average, and the engine's dataset-level `evaluate`."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from starter_code.engine import evaluate
from starter_code.metrics import ConfusionMatrix, per_batch_mean_iou

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# A tiny 3-class case, written out pixel by pixel (255 = void).
TARGET = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 255, 255])
PRED = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 2, 0])
# rows = ground truth, columns = prediction; the two void pixels are not counted.
EXPECTED_MATRIX = [
    [2, 1, 0],
    [0, 2, 1],
    [1, 0, 1],
]


def _cm(pred: torch.Tensor, target: torch.Tensor, n: int = 3) -> ConfusionMatrix:
    cm = ConfusionMatrix(n, ignore_index=255)
    cm.update(pred, target)
    return cm


def test_hand_computed_three_class_case():
    out = _cm(PRED, TARGET).compute()
    assert out["confusion"] == EXPECTED_MATRIX
    assert out["num_pixels"] == 8
    # tp = [2, 2, 1], ground-truth totals = [3, 3, 2], predicted totals = [3, 3, 2]
    assert out["pixel_acc"] == pytest.approx(5 / 8)
    assert out["class_acc"] == pytest.approx([2 / 3, 2 / 3, 1 / 2])
    assert out["mean_class_acc"] == pytest.approx(11 / 18)  # (2/3 + 2/3 + 1/2) / 3
    # unions = gt + pred - tp = [4, 4, 3]
    assert out["iou"] == pytest.approx([1 / 2, 1 / 2, 1 / 3])
    assert out["miou"] == pytest.approx(4 / 9)
    # frequency-weighted: 3/8 * 1/2 + 3/8 * 1/2 + 2/8 * 1/3 = 11/24
    assert out["fw_iou"] == pytest.approx(11 / 24)


def test_works_on_2d_and_batched_shapes():
    flat = _cm(PRED, TARGET).compute()
    batched = _cm(PRED.view(2, 1, 5), TARGET.view(2, 1, 5)).compute()
    assert batched["confusion"] == flat["confusion"] == EXPECTED_MATRIX


def test_void_pixels_are_skipped_whatever_their_prediction():
    base = _cm(PRED, TARGET).mat.clone()
    # change only the predictions on void pixels: nothing changes
    pred2 = PRED.clone()
    pred2[TARGET == 255] = torch.tensor([1, 1])
    assert torch.equal(_cm(pred2, TARGET).mat, base)
    # an all-void batch adds nothing
    cm = _cm(PRED, TARGET)
    cm.update(torch.zeros(7, dtype=torch.long), torch.full((7,), 255))
    assert torch.equal(cm.mat, base)
    # a different ignore_index is honoured (and 255 is then an out-of-range target)
    cm0 = ConfusionMatrix(3, ignore_index=0)
    cm0.update(torch.tensor([1, 2, 2]), torch.tensor([0, 1, 2]))
    assert cm0.mat.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]


def test_class_absent_from_target_and_pred_is_nan_and_excluded_from_miou():
    # 4 classes, class 3 never appears in either tensor
    out = _cm(PRED, TARGET, n=4).compute()
    assert math.isnan(out["iou"][3]) and math.isnan(out["class_acc"][3])
    assert out["iou"][:3] == pytest.approx([1 / 2, 1 / 2, 1 / 3])
    assert out["miou"] == pytest.approx(4 / 9)  # the mean over the 3 present classes, not 4
    assert out["mean_class_acc"] == pytest.approx(11 / 18)
    assert out["fw_iou"] == pytest.approx(11 / 24)


def test_class_predicted_but_absent_from_target_has_iou_zero_and_counts_in_miou():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])  # class 2 predicted once, never in the target
    out = _cm(pred, target).compute()
    assert out["confusion"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert out["iou"] == pytest.approx([1 / 2, 1.0, 0.0])
    assert out["miou"] == pytest.approx(1.5 / 3)  # class 2 counts as 0
    assert out["class_acc"][:2] == pytest.approx([1 / 2, 1.0])
    assert math.isnan(out["class_acc"][2])  # no ground truth -> no accuracy
    assert out["mean_class_acc"] == pytest.approx(0.75)
    assert out["pixel_acc"] == pytest.approx(3 / 4)
    assert out["fw_iou"] == pytest.approx(2 / 4 * 1 / 2 + 2 / 4 * 1.0)


def test_empty_matrix_gives_nan_not_an_error():
    out = ConfusionMatrix(3).compute()
    assert out["num_pixels"] == 0
    assert all(math.isnan(out[k]) for k in ("pixel_acc", "mean_class_acc", "miou", "fw_iou"))


def test_accumulating_batches_equals_one_update_on_the_concatenation():
    g = torch.Generator().manual_seed(0)
    n = 5
    preds, targets = [], []
    for size in (17, 1, 64, 33):
        t = torch.randint(0, n, (size,), generator=g)
        t[torch.rand(size, generator=g) < 0.2] = 255
        preds.append(torch.randint(0, n, (size,), generator=g))
        targets.append(t)
    acc = ConfusionMatrix(n)
    for p, t in zip(preds, targets):
        acc.update(p, t)
    one = _cm(torch.cat(preds), torch.cat(targets), n)
    assert torch.equal(acc.mat, one.mat)
    a_out, o_out = acc.compute(), one.compute()
    for key in ("pixel_acc", "mean_class_acc", "miou", "fw_iou", "iou", "class_acc"):
        assert a_out[key] == pytest.approx(o_out[key], nan_ok=True), key
    # the matrices of two disjoint parts add up to the whole (how processes combine their shards)
    a, b = ConfusionMatrix(n), ConfusionMatrix(n)
    a.update(torch.cat(preds[:2]), torch.cat(targets[:2]))
    b.update(torch.cat(preds[2:]), torch.cat(targets[2:]))
    assert not torch.equal(a.mat, one.mat)
    assert torch.equal(a.mat + b.mat, one.mat)


def test_agrees_with_torchmetrics_on_random_data_with_void():
    tm = pytest.importorskip("torchmetrics.classification")
    n = 6
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, n - 1, (4, 37, 41), generator=g)  # class n-1 never in the target ...
    target[torch.rand(target.shape, generator=g) < 0.15] = 255
    pred = torch.randint(0, n - 2, (4, 37, 41), generator=g)  # ... nor in the prediction (absent from both)
    pred[0, 0, :5] = 2
    ours = _cm(pred, target, n).compute()

    jac = tm.MulticlassJaccardIndex(num_classes=n, average=None, ignore_index=255)
    acc = tm.MulticlassAccuracy(num_classes=n, average="micro", ignore_index=255)
    recall = tm.MulticlassAccuracy(num_classes=n, average=None, ignore_index=255)
    tm_iou = jac(pred, target)
    # torchmetrics reports 0 (zero_division) for a class absent from both; ours is NaN and left out of mIoU
    present = [c for c in range(n) if (target == c).any() or ((pred == c) & (target != 255)).any()]
    assert present == list(range(n - 1))
    assert math.isnan(ours["iou"][n - 1]) and float(tm_iou[n - 1]) == 0.0
    assert ours["iou"][: n - 1] == pytest.approx(tm_iou[present].tolist(), abs=1e-6)
    assert ours["miou"] == pytest.approx(float(tm_iou[present].mean()), abs=1e-6)
    assert ours["pixel_acc"] == pytest.approx(float(acc(pred, target)), abs=1e-6)
    assert ours["class_acc"][: n - 1] == pytest.approx(recall(pred, target)[present].tolist(), abs=1e-6)


def test_seed_per_batch_average_differs_from_dataset_level_miou():
    # batch A: all background, predicted perfectly -> per-batch mIoU = 1 (class 1 absent, skipped)
    # batch B: target [1, 1, 0, 0], pred all 0 -> IoU0 = 2/4, IoU1 = 0 -> per-batch mIoU = 0.25
    preds = [torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)]
    targets = [torch.tensor([0, 0, 0, 0]), torch.tensor([1, 1, 0, 0])]
    per_batch = per_batch_mean_iou(preds, targets, num_classes=2)
    assert per_batch == pytest.approx((1.0 + 0.25) / 2)  # 0.625
    # dataset level: matrix [[6, 0], [2, 0]] -> IoU0 = 6/8, IoU1 = 0 -> mIoU = 0.375
    cm = ConfusionMatrix(2)
    for p, t in zip(preds, targets):
        cm.update(p, t)
    out = cm.compute()
    assert out["confusion"] == [[6, 0], [2, 0]]
    assert out["miou"] == pytest.approx(0.375)
    assert per_batch != pytest.approx(out["miou"])
    assert math.isnan(per_batch_mean_iou([], [], 2))


def test_shape_mismatch_raises():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(4, 4, dtype=torch.long))
    assert int(cm.mat.sum()) == 0


def test_target_out_of_range_raises():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, -1]))


def test_pred_out_of_range_raises():
    # unchecked, a prediction equal to num_classes would be counted in the NEXT row (here as "gt 1, predicted 0")
    # and 255 would make the bincount longer than n*n
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="pred has values outside 0..2"):
        cm.update(torch.tensor([3, 0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="pred has values outside 0..2"):
        cm.update(torch.tensor([255, 0]), torch.tensor([0, 0]))
    assert int(cm.mat.sum()) == 0


# ------------------------------------------------------------------------------------------ engine.evaluate


class OneHot(nn.Module):
    """A fixed 'model': the logits are the one-hot encoding of the image's first channel (class indices)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0].long(), self.n).permute(0, 3, 1, 2).float()


def test_evaluate_accumulates_one_matrix_over_the_loader():
    n = 3
    g = torch.Generator().manual_seed(2)
    batches = []
    for b in (2, 1, 3):
        pred = torch.randint(0, n, (b, 5, 6), generator=g)
        target = torch.randint(0, n, (b, 5, 6), generator=g)
        target[:, 0, 0] = 255
        batches.append((pred[:, None].float().expand(-1, 3, -1, -1), target))
    out = evaluate(OneHot(n), batches, n, torch.device("cpu"), progress=False)
    ref = _cm(torch.cat([img[:, 0].long() for img, _ in batches]), torch.cat([t for _, t in batches]), n)
    assert out["confusion"] == ref.mat.tolist()
    assert out["miou"] == pytest.approx(ref.compute()["miou"])
    assert math.isnan(out["loss"])  # no criterion given


def test_evaluate_resizes_logits_to_the_mask():
    # the model sees a 2x downscaled image; its logits are resized (bilinear) back to the 8x8 mask
    n = 2
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    image = torch.zeros(1, 3, 4, 4)
    image[:, :, :, 2:] = 1  # predicts class 1 on the right half
    out = evaluate(OneHot(n), [(image, target)], n, torch.device("cpu"), criterion=nn.CrossEntropyLoss(),
                   progress=False)
    assert out["num_pixels"] == 64
    assert out["confusion"] == [[32, 0], [0, 32]]
    assert out["miou"] == 1.0
    assert math.isfinite(out["loss"])
