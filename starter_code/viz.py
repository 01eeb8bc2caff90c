"""Every plot the notebooks make: a run's curves, mask grids and per-class IoU; runs compared (mIoU curves, IoU
heatmap, the same images predicted by every run); learning-rate plans and class weights.

Plots draw what they are given: runs read from disk (`runs.Run`) and images, targets and predictions as tensors.
They never run a model (the caller predicts: `notebook.py`, `explorer.py`, `report.save_run_figures`).
Figures are saved when a path is given (figures/<experiment>_<dataset>_*.png) and returned open, so a notebook's
inline backend displays them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "ipympl", "widget", "inline")):
    matplotlib.use("Agg")  # headless terminals and CI; notebooks keep their inline backend
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .data.classes import IGNORE_INDEX, DatasetInfo  # noqa: E402
from .data.transforms import denormalize  # noqa: E402
from .metrics import ConfusionMatrix  # noqa: E402

if TYPE_CHECKING:
    from .runs import Run

VOID_DRAW = np.array([255, 255, 255], dtype=np.uint8)  # void drawn white, hatched in the legend


def colorize(mask: np.ndarray | torch.Tensor, palette: np.ndarray) -> np.ndarray:
    """Class-index mask HxW -> RGB uint8 HxWx3 through the dataset palette (void in white)."""
    m = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    rgb = palette[m.astype(np.int64).clip(0, 255)]
    rgb[m == IGNORE_INDEX] = VOID_DRAW
    return rgb


def save_figure(fig: plt.Figure, path: str | Path | None) -> None:
    """Save `fig` to `path` (its folder created) at the resolution every figure of the kit uses; None: do nothing."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def image_rgb(image: torch.Tensor, hw: Sequence[int] | None = None, normalized: bool = True) -> np.ndarray:
    """A dataset image (CxHxW, ImageNet-normalised, or uint8 when not `normalized`) as HxWx3 floats 0-1 for
    imshow, resized bilinearly to `hw` (a mask's size) when it differs."""
    img = denormalize(image) if normalized else image.float() / 255
    if hw is not None and tuple(img.shape[-2:]) != tuple(hw):
        img = torch.nn.functional.interpolate(img[None], size=tuple(hw), mode="bilinear", align_corners=False)[0]
    return img.permute(1, 2, 0).cpu().numpy()


def overlay(rgb: np.ndarray, mask: Any, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image (HxWx3 floats 0-1) with the mask's class colours blended in at opacity `alpha`;
    void pixels keep the image unchanged."""
    m = np.asarray(mask)
    colour = colorize(m, palette).astype(float) / 255
    out = (1 - alpha) * rgb + alpha * colour
    out[m == IGNORE_INDEX] = rgb[m == IGNORE_INDEX]
    return out.clip(0, 1)


def per_image_iou(pred: Any, target: Any, num_classes: int) -> np.ndarray:
    """IoU of each class on one image (the same definition as the split metric, void ignored):
    an array of `num_classes` values, NaN where a class is in neither the target nor the prediction."""
    cm = ConfusionMatrix(num_classes, IGNORE_INDEX)
    cm.update(torch.as_tensor(np.asarray(pred)).long(), torch.as_tensor(np.asarray(target)).long())
    return np.asarray(cm.compute()["iou"], dtype=float)


def nan_mean(values: np.ndarray) -> float:
    """The mean of the finite values (NaN = class absent), NaN when there are none."""
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


IMAGE_SCORE = "object IoU"  # what the per-image score is called on every panel
IMAGE_SCORE_MEANS = "object IoU = mean IoU over the ground truth's classes, background left out"


def image_score(pred: Any, target: Any, classes: Sequence[str]) -> float:
    """One image's score (IMAGE_SCORE): the mean IoU over the classes present in the ground truth, background left
    out when the image holds an object; void ignored. Predicting background everywhere scores 0 on any image with
    an object, so it never ranks above a prediction that found part of it; false positives still cost (they grow
    a class's union). Classes only predicted do not each add a 0, which is what let the plain per-image mIoU rank
    an all-background mask first. NaN for an image without labelled pixels."""
    t = np.asarray(target)
    iou = per_image_iou(pred, t, len(classes))
    present = [int(c) for c in np.unique(t) if c != IGNORE_INDEX]
    objects = [c for c in present if classes[c] != "background"]
    keep = objects or present
    return float(np.mean(iou[keep])) if keep else float("nan")


STOP_LABELS = {"early_stop": "early stop", "budget": "time budget", "time_limit": "time limit"}


def plot_history(history: list[dict[str, Any]], best_epoch: int | None = None, stopped_epoch: int | None = None,
                 title: str = "", path: str | Path | None = None, stop_reason: str | None = None,
                 kept: str = "best") -> plt.Figure:
    """Train/val loss per epoch (and the unweighted val CE when it differs from the val loss), val mIoU and pixel
    accuracy, and the learning rate; the reported epoch ('best' or 'last', as `kept`) and the epoch training
    stopped at (labelled by `stop_reason`) marked."""
    ep = [h["epoch"] for h in history]
    checked = [h for h in history if h.get("val_miou") is not None]  # validated epochs (a recipe may skip some)
    vep = [h["epoch"] for h in checked]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    ax.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(vep, [h["val_loss"] for h in checked], "s-", label="val loss")
    if any(h.get("val_ce") is not None and h["val_ce"] != h["val_loss"] for h in checked):
        ax.plot(vep, [h.get("val_ce") for h in checked], "^--", label="val CE (no class weights)")
    ax.set(xlabel="epoch", ylabel="cross-entropy (nats / labelled pixel)", title=f"{title} loss".strip())
    ax = axes[1]
    ax.plot(vep, [h["val_miou"] for h in checked], "o-", label="val mIoU")
    ax.plot(vep, [h["val_pixel_acc"] for h in checked], "s-", label="val pixel accuracy")
    ax.set(xlabel="epoch", ylabel="fraction (0-1)", ylim=(0, 1), title=f"{title} validation metrics".strip())
    ax = axes[2]
    ax.plot(ep, [h["lr"] for h in history], "o-", color="tab:purple", label="learning rate")
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes[:2]:
        if best_epoch:
            ax.axvline(best_epoch, color="tab:green", ls="--", label=f"{kept} epoch ({best_epoch})")
        if stopped_epoch:
            label = STOP_LABELS.get(stop_reason or "early_stop", stop_reason)
            ax.axvline(stopped_epoch, color="tab:red", ls=":", label=f"{label} ({stopped_epoch})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
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
        panels = [image_rgb(images[r], targets[r].shape[-2:], normalized), colorize(targets[r], info.palette)]
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
    save_figure(fig, path)
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
    save_figure(fig, path)
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
    save_figure(fig, path)
    return fig


# -------------------------------------------------------------------------------------------- runs compared
def iou_frame(runs: Mapping[str, Run]) -> Any:
    """Per-class validation IoU, one row per run, one column per class (NaN = class absent): a DataFrame."""
    import pandas as pd

    return pd.DataFrame({k: pd.Series(r.metrics["iou"], dtype=float) for k, r in runs.items()}).T


def plot_miou_curves(runs: Mapping[str, Run], path: str | Path | None = None, title: str = "") -> plt.Figure:
    """Validation mIoU per epoch, one line per run, each run's best epoch starred."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, r in runs.items():
        checked = [h for h in r.history if h.get("val_miou") is not None]  # validated epochs only
        line, = ax.plot([h["epoch"] for h in checked], [h["val_miou"] for h in checked], "o-", ms=4,
                        label=f"{name} (best {r.metrics['miou']:.3f}, epoch {r.best_epoch})")
        best = next((h for h in r.history if h["epoch"] == r.best_epoch), None)
        if best is not None:
            ax.plot([best["epoch"]], [best["val_miou"]], "*", ms=14, color=line.get_color(), mec="k")
    ax.set(xlabel="epoch", ylabel="validation mIoU (0-1)", title=title or "validation mIoU per epoch (star = best)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0.5, max([len(r.history) for r in runs.values()] + [1]) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_iou_heatmap(runs: Mapping[str, Run], path: str | Path | None = None, title: str = "") -> plt.Figure:
    """Runs x classes heatmap of validation IoU (colorbar 'IoU', 0-1; grey = class absent), values written in."""
    df = iou_frame(runs)
    vals = df.to_numpy(dtype=float) if len(df) else np.zeros((0, 0))
    nr, nc = vals.shape
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * nc + 3), max(2.6, 0.5 * nr + 2)))
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(nc), list(df.columns), rotation=60, ha="right")
    ax.set_yticks(range(nr), [f"{n}  (mIoU {runs[n].metrics['miou']:.3f})" for n in df.index])
    for i in range(nr):
        for j in range(nc):
            v = vals[i, j]
            ax.text(j, i, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="k" if math.isnan(v) or v > 0.55 else "w")
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("IoU")
    ax.set(xlabel="class", ylabel="run",
           title=title or "per-class IoU on the validation split (best epoch; grey = class absent)")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_side_by_side(images: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                      preds: Mapping[str, Sequence[torch.Tensor]], info: DatasetInfo,
                      labels: Sequence[str] | None = None, path: str | Path | None = None) -> plt.Figure:
    """The same images predicted by several runs: image | ground truth | run 1 | run 2 ... per row (`preds` maps
    a run's name to its predictions, one per image), each prediction labelled with its `image_score`; row
    labels from `labels`; legend of the classes shown."""
    cols = 2 + len(preds)
    fig, axes = plt.subplots(len(targets), cols, figsize=(2.5 * cols + 0.5, 2.5 * len(targets) + 0.4),
                             squeeze=False)
    present: set[int] = set()
    for row, (img, target) in enumerate(zip(images, targets)):
        panels = [(image_rgb(img, target.shape[-2:]), "image", ""),
                  (colorize(target, info.palette), "ground truth", "")]
        for name, p in preds.items():
            score = image_score(p[row], target, info.classes)
            panels.append((colorize(p[row], info.palette), name, f"{IMAGE_SCORE} {score:.2f}"))
            present |= set(np.unique(np.asarray(p[row])).tolist())
        present |= set(np.unique(np.asarray(target)).tolist())
        for c, (panel, head, foot) in enumerate(panels):
            ax = axes[row, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(foot, fontsize=8)
            if row == 0:
                ax.set_title(head, fontsize=9)
        if labels is not None:
            axes[row, 0].set_ylabel(labels[row], fontsize=8)
    fig.legend(handles=class_legend(info, sorted(present)), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title="classes shown")
    fig.suptitle(f"the same validation images, predicted by every run ({IMAGE_SCORE_MEANS})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


# ------------------------------------------------------------------------------------ schedules and weights
def plot_lr_schedule(planned: Mapping[str, Sequence[float]], used: Mapping[str, Sequence[dict[str, Any]]] | None = None,
                     path: str | Path | None = None, title: str = "") -> plt.Figure:
    """Learning rate per epoch: each plan (`planned`: name -> the rate of epochs 1..N, e.g. `notebook.planned_lr`)
    as a line, and the rate each epoch actually used (`used`: name -> history.json rows, their `lr`) as open
    circles in the same colour."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, lrs in planned.items():
        line, = ax.plot(np.arange(1, len(lrs) + 1), list(lrs), ".-",
                        label=f"{name}: planned ({_plural(len(lrs), 'epoch')})")
        if used and name in used:
            h = used[name]
            ax.plot([r["epoch"] for r in h], [r["lr"] for r in h], "o", ms=10, mfc="none", mew=1.5,
                    color=line.get_color(), label=f"{name}: used (history.json)")
    ax.set(xlabel="epoch", ylabel="learning rate (Adam step size)", title=title or "learning rate per epoch")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0.5, max([len(v) for v in planned.values()] + [1]) + 0.5)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_class_weights(table: Any, path: str | Path | None = None, title: str = "") -> plt.Figure:
    """Bars of the '* weight' columns of a class-weight table (`notebook.class_weight_table`), log scale
    (a weight of 0 = class absent, not drawn)."""
    cols = [c for c in table.columns if c.endswith(" weight")]
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(table)), 4))
    width = 0.8 / max(len(cols), 1)
    x = np.arange(len(table))
    for i, c in enumerate(cols):
        ax.bar(x + (i - (len(cols) - 1) / 2) * width, table[c].to_numpy(float), width, label=c)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="weight 1 (unweighted loss)")
    ax.set_yscale("log")
    ax.set_xticks(x, list(table.index), rotation=60, ha="right")
    ax.set(ylabel="loss weight per class (log scale)", title=title or "class weights in the cross-entropy")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
