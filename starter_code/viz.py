"""Every plot the notebooks make: loss curves, mask grids, per-class IoU. Saved under figures/<experiment>_*.png."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "ipympl", "widget", "inline")):
    matplotlib.use("Agg")  # headless terminals and CI; notebooks keep their inline backend
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .data.classes import IGNORE_INDEX, DatasetInfo  # noqa: E402
from .data.transforms import denormalize  # noqa: E402

VOID_DRAW = np.array([255, 255, 255], dtype=np.uint8)  # void drawn white, hatched in the legend


def colorize(mask: np.ndarray | torch.Tensor, palette: np.ndarray) -> np.ndarray:
    """Class-index mask HxW -> RGB uint8 HxWx3 through the dataset palette (void in white)."""
    m = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    rgb = palette[m.astype(np.int64).clip(0, 255)]
    rgb[m == IGNORE_INDEX] = VOID_DRAW
    return rgb


def _save(fig: plt.Figure, path: str | Path | None) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_history(history: list[dict[str, Any]], best_epoch: int | None = None, stopped_epoch: int | None = None,
                 title: str = "", path: str | Path | None = None) -> plt.Figure:
    """Train/val loss per epoch, val mIoU and pixel accuracy, and the learning rate; best and early-stop
    epochs marked."""
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    ax.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(ep, [h["val_loss"] for h in history], "s-", label="val loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy (nats / labelled pixel)", title=f"{title} loss".strip())
    ax = axes[1]
    ax.plot(ep, [h["val_miou"] for h in history], "o-", label="val mIoU")
    ax.plot(ep, [h["val_pixel_acc"] for h in history], "s-", label="val pixel accuracy")
    ax.set(xlabel="epoch", ylabel="fraction (0-1)", ylim=(0, 1), title=f"{title} validation metrics".strip())
    ax = axes[2]
    ax.plot(ep, [h["lr"] for h in history], "o-", color="tab:purple", label="learning rate")
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes[:2]:
        if best_epoch:
            ax.axvline(best_epoch, color="tab:green", ls="--", label=f"best epoch ({best_epoch})")
        if stopped_epoch:
            ax.axvline(stopped_epoch, color="tab:red", ls=":", label=f"early stop ({stopped_epoch})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig


def class_legend(info: DatasetInfo, present: Sequence[int] | None = None, void: bool = True) -> list[Patch]:
    """Legend patches for the classes in `present` (default all) plus void."""
    idx = range(info.num_classes) if present is None else sorted(int(i) for i in present if i != IGNORE_INDEX)
    handles = [Patch(facecolor=info.palette[i] / 255, edgecolor="k", label=f"{i} {info.classes[i]}") for i in idx]
    if void:
        handles.append(Patch(facecolor="white", edgecolor="k", hatch="///", label="255 void (ignored)"))
    return handles


def plot_masks(images: torch.Tensor | Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
               preds: Sequence[torch.Tensor] | None, info: DatasetInfo, title: str = "",
               path: str | Path | None = None, normalized: bool = True) -> plt.Figure:
    """A grid: image | ground truth | prediction per row, in the dataset palette, legend of the classes shown."""
    cols = 3 if preds is not None else 2
    n = len(targets)
    fig, axes = plt.subplots(n, cols, figsize=(3.2 * cols + 2.2, 3.0 * n), squeeze=False)
    present: set[int] = set()
    for r in range(n):
        img = images[r]
        img = denormalize(img) if normalized else img.float() / 255
        if img.shape[-2:] != targets[r].shape[-2:]:
            img = torch.nn.functional.interpolate(img[None], size=targets[r].shape[-2:], mode="bilinear")[0]
        panels = [img.permute(1, 2, 0).cpu().numpy(), colorize(targets[r], info.palette)]
        present |= set(np.unique(targets[r].cpu().numpy()).tolist())
        if preds is not None:
            panels.append(colorize(preds[r], info.palette))
            present |= set(np.unique(preds[r].cpu().numpy()).tolist())
        for c, panel in enumerate(panels):
            axes[r, c].imshow(panel, interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        if r == 0:
            for c, name in enumerate(["image", "ground truth", "prediction"][:cols]):
                axes[0, c].set_title(name)
    fig.legend(handles=class_legend(info, sorted(present)), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title="classes shown")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_class_iou(iou: dict[str, float] | Sequence[float], classes: Sequence[str] | None = None,
                   title: str = "", path: str | Path | None = None) -> plt.Figure:
    """Per-class IoU bars (NaN = class absent from both ground truth and prediction, shown as 'n/a')."""
    if isinstance(iou, dict):
        classes, values = list(iou), list(iou.values())
    else:
        classes, values = list(classes or range(len(iou))), list(iou)
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(classes)), 4))
    ax.bar(range(len(vals)), np.nan_to_num(vals), color="tab:blue")
    for i, v in enumerate(vals):
        ax.text(i, (0 if np.isnan(v) else v) + 0.01, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center",
                fontsize=7, rotation=90)
    ax.axhline(np.nanmean(vals), color="tab:red", ls="--", label=f"mIoU = {np.nanmean(vals):.3f}")
    ax.set_xticks(range(len(vals)), classes, rotation=60, ha="right")
    ax.set(ylabel="IoU (0-1)", ylim=(0, 1.1), title=title or "per-class IoU")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_class_frequencies(stats: dict[str, Any], title: str = "", path: str | Path | None = None) -> plt.Figure:
    """Share of labelled pixels per class (log scale) and number of images containing each class."""
    classes = stats["classes"]
    pixels = np.asarray(stats["pixels"], dtype=float)
    share = pixels / max(pixels.sum(), 1) * 100
    fig, axes = plt.subplots(1, 2, figsize=(14, 4))
    axes[0].bar(range(len(classes)), share)
    axes[0].set_yscale("log")
    axes[0].set(ylabel="% of labelled pixels (log scale)", title=f"{title} pixel share per class".strip())
    axes[1].bar(range(len(classes)), stats["images"], color="tab:orange")
    axes[1].set(ylabel="images containing the class", title=f"{title} images per class".strip())
    for ax in axes:
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save(fig, path)
    return fig


def save_run_figures(run: Any, val_ds: Any, figures_dir: str | Path = "figures", n: int = 4,
                     device: str | torch.device = "cpu") -> dict[str, Path]:
    """The three standard figures of a finished run, named after its experiment:
    <name>_curves.png, <name>_masks.png, <name>_class_iou.png. Returns their paths."""
    from .engine import predict_samples

    figures_dir = Path(figures_dir)
    name = f"{run.config.name}_{run.config.dataset}"
    paths = {k: figures_dir / f"{name}_{k}.png" for k in ("curves", "masks", "class_iou")}
    plt.close(plot_history(run.history, run.best_epoch, run.stopped_epoch, run.config.name, paths["curves"]))
    idx = np.linspace(0, len(val_ds) - 1, num=min(n, len(val_ds))).astype(int).tolist()
    images, targets, preds = predict_samples(run.model.to(device), val_ds, idx, device)
    plt.close(plot_masks(images, targets, preds, val_ds.info, f"{run.config.name}: validation images", paths["masks"]))
    plt.close(plot_class_iou(run.metrics["iou"], title=f"{run.config.name}: per-class IoU (val, best epoch "
                             f"{run.best_epoch})", path=paths["class_iou"]))
    return paths
