"""Segmentation metrics from one confusion matrix accumulated over a whole split (never averaged per batch)."""

from __future__ import annotations

import math

import torch


class ConfusionMatrix:
    """Dataset-level confusion matrix: rows = ground truth, columns = prediction.

    `update` accumulates on the tensors' device with a single bincount; pixels whose target is
    `ignore_index` are skipped. `compute` derives every metric from the accumulated counts.

    `mat` (int64, num_classes x num_classes) is the count matrix itself, public on purpose: matrices of disjoint
    parts of a split add up to the whole split's matrix, which is how processes combine their shards.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: torch.device | str | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: `pred` class indices with the same shape as `target`."""
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        if self.mat.device != target.device:
            self.mat = self.mat.to(target.device)
        # BEGIN SOLUTION
        # HINT: drop ignore_index pixels, then add one torch.bincount of target * n + pred (minlength n * n) as n x n
        n = self.num_classes
        keep = target != self.ignore_index
        t = target[keep].long()
        p = pred[keep].long()
        if t.device.type == "cpu" and t.numel():  # on GPUs this check would cost a host sync per batch
            if int(t.max()) >= n or int(t.min()) < 0:
                raise ValueError(f"target has values outside 0..{n - 1} other than ignore_index {self.ignore_index}")
            if int(p.max()) >= n or int(p.min()) < 0:
                raise ValueError(f"pred has values outside 0..{n - 1}")
        self.mat += torch.bincount(t * n + p, minlength=n * n).reshape(n, n)
        # END SOLUTION

    def compute(self) -> dict:
        """pixel_acc, mean_class_acc, iou (per class, NaN if absent from target and prediction), miou
        (nanmean of iou), fw_iou (frequency-weighted), class_acc, and the raw matrix."""
        # BEGIN SOLUTION
        # HINT: tp = diagonal, gt = row sums, pred = column sums; IoU = tp / (gt + pred - tp), NaN where undefined
        m = self.mat.double().cpu()
        tp = m.diag()
        gt = m.sum(1)
        pr = m.sum(0)
        total = m.sum()
        union = gt + pr - tp
        nan = float("nan")
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, nan))
        class_acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, nan))
        valid_iou = iou[~iou.isnan()]
        valid_acc = class_acc[~class_acc.isnan()]
        freq = gt / total if total > 0 else gt
        fw = (freq[gt > 0] * iou[gt > 0]).sum() if total > 0 else torch.tensor(nan)
        return {
            "pixel_acc": float(tp.sum() / total) if total > 0 else nan,
            "mean_class_acc": float(valid_acc.mean()) if valid_acc.numel() else nan,
            "miou": float(valid_iou.mean()) if valid_iou.numel() else nan,
            "fw_iou": float(fw),
            "iou": iou.tolist(),
            "class_acc": class_acc.tolist(),
            "num_pixels": int(total),
            "confusion": self.mat.cpu().tolist(),
        }
        # END SOLUTION


def per_batch_mean_iou(preds: list[torch.Tensor], targets: list[torch.Tensor], num_classes: int,
                       ignore_index: int = 255) -> float:
    """The report's (wrong) metric: mIoU over the classes present in each batch, then averaged over batches.

    Kept only to show how far it is from the dataset-level value."""
    scores = []
    for p, t in zip(preds, targets):
        cm = ConfusionMatrix(num_classes, ignore_index)
        cm.update(p, t)
        scores.append(cm.compute()["miou"])
    return sum(scores) / len(scores) if scores else math.nan
