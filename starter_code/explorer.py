"""The interactive explorer of notebook 08: pick a run, slide through the validation images, switch between the
masks blended over the image and image | ground truth | prediction, and read each class's IoU on that image.

`render_view` draws one view as a static figure (what the explorer shows, and a copy for executed notebooks);
`explorer` wraps it in ipywidgets. Predictions are made here, one image at a time, with the run's best model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.classes import IGNORE_INDEX
from .engine import predict_samples
from .runs import Run
from .viz import (
    IMAGE_SCORE,
    IMAGE_SCORE_MEANS,
    class_legend,
    colorize,
    image_rgb,
    image_score,
    overlay,
    per_image_iou,
    plt,
    save_figure,
)

VIEW_MODES = ("overlay", "side by side")


def image_iou_table(pred: Any, target: Any, classes: Sequence[str]) -> Any:
    """The classes present in the ground truth or the prediction of one image: pixels in each and their IoU
    (void ignored), a DataFrame indexed by class."""
    import pandas as pd

    p, t = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = t != IGNORE_INDEX
    iou = per_image_iou(p, t, len(classes))
    gt = np.bincount(t[keep], minlength=len(classes))[: len(classes)]
    pr = np.bincount(p[keep], minlength=len(classes))[: len(classes)]
    rows = [{"class": classes[c], "ground-truth pixels": int(gt[c]), "predicted pixels": int(pr[c]), "IoU": iou[c]}
            for c in range(len(classes)) if not np.isnan(iou[c])]
    return pd.DataFrame(rows, columns=["class", "ground-truth pixels", "predicted pixels", "IoU"]).set_index("class")


def _predict_one(run: Run, val_ds: Any, index: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if run.model is None:
        raise ValueError(f"{run.run_dir}: loaded without weights; load it with runs.load_run(..., weights=True)")
    images, targets, preds = predict_samples(run.model.to(device), val_ds, [index], device)
    return images[0], targets[0], preds[0]


def render_view(runs: Mapping[str, Run], val_ds: Any, run: str | None = None, index: int = 0,
                mode: str = "overlay", alpha: float = 0.5, path: str | Path | None = None, device: str = "cpu",
                _cache: dict | None = None) -> tuple[Any, Any]:
    """One view of the explorer, as a static figure plus the per-image IoU table: `mode` 'overlay' shows ground
    truth and prediction blended over the image at opacity `alpha`; 'side by side' shows image | GT | prediction.
    Defaults (first run, image 0, overlay, 0.5) are the explorer's opening view."""
    if not runs:
        raise ValueError("no runs to show; train one first (e.g. notebook 01)")
    if mode not in VIEW_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {VIEW_MODES}")
    run = run if run is not None else next(iter(runs))
    key = (run, index)
    if _cache is not None and key in _cache:
        img, target, pred = _cache[key]
    else:
        img, target, pred = _predict_one(runs[run], val_ds, index, device)
        if _cache is not None:
            _cache[key] = (img, target, pred)
    info = val_ds.info
    rgb = image_rgb(img, target.shape[-2:])
    table = image_iou_table(pred.numpy(), target.numpy(), info.classes)
    score = image_score(pred.numpy(), target.numpy(), info.classes)
    if mode == "overlay":
        panels = [(overlay(rgb, target, info.palette, alpha), "ground truth over the image"),
                  (overlay(rgb, pred, info.palette, alpha), f"{run}: prediction over the image")]
    else:
        panels = [(rgb, "image"), (colorize(target, info.palette), "ground truth"),
                  (colorize(pred, info.palette), f"{run}: prediction")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 0.4, 3.8), squeeze=False)
    for ax, (panel, head) in zip(axes[0], panels):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(head, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    present = set(np.unique(target.numpy()).tolist()) | set(np.unique(pred.numpy()).tolist())
    fig.legend(handles=class_legend(info, sorted(present)), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title="classes shown")
    extra = f", opacity {alpha:.2f}" if mode == "overlay" else ""
    fig.suptitle(f"{run} | val image #{index} ({val_ds.ids[index] if hasattr(val_ds, 'ids') else index}) | "
                 f"{IMAGE_SCORE} {score:.3f} | {mode}{extra}\n({IMAGE_SCORE_MEANS})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return fig, table


def explorer(runs: Mapping[str, Run], val_ds: Any, device: str = "cpu") -> Any:
    """An ipywidgets explorer: pick a run (Dropdown), slide through the validation images (IntSlider), toggle
    overlay / side by side (ToggleButtons) and the overlay's opacity (FloatSlider); the per-image IoU of each
    class is listed under the image. Returns the widget (display it); `.controls` holds the four controls and
    `.redraw()` redraws. Predictions are cached per (run, image). Widgets need a live kernel: for a static copy
    of the opening view use `render_view`."""
    import ipywidgets as W
    from IPython.display import display

    if not runs:
        raise ValueError("no runs to explore; train one first (e.g. notebook 01)")
    names = list(runs)
    controls = {
        "run": W.Dropdown(options=names, value=names[0], description="run"),
        "index": W.IntSlider(value=0, min=0, max=max(len(val_ds) - 1, 0), step=1, description="val image",
                             continuous_update=False),
        "mode": W.ToggleButtons(options=list(VIEW_MODES), value=VIEW_MODES[0], description="view"),
        "alpha": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="opacity",
                               continuous_update=False, readout_format=".2f"),
    }
    out = W.Output()
    cache: dict = {}

    def redraw(_change: Any = None) -> None:
        c = {k: w.value for k, w in controls.items()}
        controls["alpha"].disabled = c["mode"] != "overlay"
        with out:
            out.clear_output(wait=True)
            fig, table = render_view(runs, val_ds, c["run"], c["index"], c["mode"], c["alpha"], device=device,
                                     _cache=cache)
            display(fig)
            plt.close(fig)
            display(table.style.format({"IoU": "{:.3f}"}).set_caption("IoU per class on this image"))

    for w in controls.values():
        w.observe(redraw, names="value")
    ui = W.VBox([W.HBox([controls["run"], controls["mode"]]), W.HBox([controls["index"], controls["alpha"]]), out])
    ui.controls = controls
    ui.redraw = redraw
    redraw()
    return ui
