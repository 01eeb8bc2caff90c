"""Comparing finished runs: results table, per-class IoU heatmap, overlaid curves, the same validation images
predicted by every model, and an ipywidgets explorer.

Notebook 08 uses all of it on every run under `runs/`; notebooks 02-05 use the same functions on two runs (the
baseline and their experiment). Figures are saved as figures/comparison_<dataset>_*.png (notebook 08) or
figures/<experiment>_<dataset>_*.png (02-05) and returned open, so a notebook's inline backend displays them.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Config
from .engine import RunResult, lr_factor, predict_samples, read_history
from .metrics import ConfusionMatrix
from .viz import class_legend, colorize, plt  # viz picks a headless backend outside notebooks

# The runs the course expects, in the order tables list them, and where each one is trained.
EXPECTED_RUNS: dict[str, str] = {
    "baseline": "01_baseline_fcn",
    "cosine": "02_cosine_annealing",
    "augment": "03_augmentation",
    "weighted": "04_weighted_loss",
    "dropout": "05_dropout_variant",
    "resnet34_fcn": "the transfer-learning notebook",
    "resnet34_unet": "the transfer-learning notebook",
    "unet": "the U-Net notebook",
}
VIEW_MODES = ("overlay", "side by side")

Runs = Mapping[str, RunResult]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _save(fig: Any, path: str | Path | None) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")


# ------------------------------------------------------------------------------------------------ loading runs
def load_run_dir(path: str | Path, device: str = "cpu") -> RunResult:
    """A finished run read back from its directory (best weights, history, metrics), like notebook.load_result,
    except that a model with a pretrained encoder is rebuilt with pretrained=False: its ImageNet weights would
    be overwritten by the checkpoint anyway, and fetching them must not be needed to look at a finished run."""
    from .engine import load_checkpoint
    from .models import MODELS, build_model

    path = Path(path)
    ckpt = load_checkpoint(path / "best.pt", device)
    cfg = Config.from_dict(ckpt["config"])
    kwargs = dict(cfg.model_kwargs)
    factory = MODELS.get(cfg.model)
    if factory is not None and "pretrained" in inspect.signature(factory).parameters:
        kwargs["pretrained"] = False
    model = build_model(cfg.model, num_classes=len(ckpt["classes"]), **kwargs)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    h = read_history(path)
    metrics = json.loads((path / "metrics.json").read_text())
    return RunResult(cfg, path, model, h["history"], metrics, h["best_epoch"], h["stopped_epoch"],
                     list(ckpt["classes"]))


def _order(names: Sequence[str]) -> list[str]:
    expected = [n for n in EXPECTED_RUNS if n in names]
    return expected + sorted(n for n in names if n not in EXPECTED_RUNS)


def load_runs(runs_dir: str | Path, dataset: str | None = None, device: str = "cpu",
              verbose: bool = True) -> dict[str, RunResult]:
    """Every finished run (a folder with metrics.json and best.pt) under `runs_dir`, optionally only those on
    `dataset`, keyed by experiment name (by folder name if two runs share a name), expected runs first.
    A run that cannot be loaded is skipped with a printed reason."""
    found: dict[str, RunResult] = {}
    for mpath in sorted(Path(runs_dir).glob("*/metrics.json")):
        d = mpath.parent
        try:
            if dataset is not None and json.loads((d / "config.json").read_text()).get("dataset") != dataset:
                continue
            found[d.name] = load_run_dir(d, device)
        except Exception as e:  # a half-written or foreign folder must not hide the others
            if verbose:
                print(f"skipped {d}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    names = [r.config.name for r in found.values()]
    unique = len(set(names)) == len(names)
    keyed = {(r.config.name if unique else folder): r for folder, r in found.items()}
    return {k: keyed[k] for k in _order(list(keyed))}


def expected_missing(runs: Runs, expected: Sequence[str] | Mapping[str, str] = tuple(EXPECTED_RUNS)) -> list[str]:
    """The expected experiment names with no run (matched on the key or the run's config name), in order."""
    have = set(runs) | {r.config.name for r in runs.values()}
    return [name for name in expected if name not in have]


# ------------------------------------------------------------------------------------------------------ tables
def diff_table(cfg: Config, base: Config) -> Any:
    """The fields where `cfg` differs from `base`, one row each: base value | cfg value (a DataFrame)."""
    import pandas as pd

    d = cfg.diff(base)
    return pd.DataFrame({base.name: [repr(a) for a, _ in d.values()], cfg.name: [repr(b) for _, b in d.values()]},
                        index=pd.Index(list(d), name="field"))


def results_table(runs: Runs, reference: str = "baseline") -> Any:
    """One row per run: model, pixel accuracy, mean class accuracy, mIoU (validation, best epoch), the mIoU
    difference to `reference` when it is among the runs, best epoch and epochs run (a DataFrame)."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        m = r.metrics
        rows.append({"run": name, "model": r.config.model, "pixel accuracy": m["pixel_acc"],
                     "mean class accuracy": m["mean_class_acc"], "mIoU": m["miou"], "best epoch": r.best_epoch,
                     "epochs run": len(r.history)})
    df = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
    if reference in runs and rows:
        df.insert(df.columns.get_loc("mIoU") + 1, f"mIoU vs {reference}", df["mIoU"] - df.loc[reference, "mIoU"])
    return df


def iou_frame(runs: Runs) -> Any:
    """Per-class validation IoU, one row per run, one column per class (NaN = class absent)."""
    import pandas as pd

    return pd.DataFrame({k: pd.Series(r.metrics["iou"], dtype=float) for k, r in runs.items()}).T


def class_iou_delta(runs: Runs, reference: str = "baseline") -> Any:
    """Per-class IoU, one column per run, plus '<run> - <reference>' columns (the classes a change helped)."""
    df = iou_frame(runs).T
    for name in runs:
        if name != reference and reference in runs:
            df[f"{name} - {reference}"] = df[name] - df[reference]
    return df


def loss_gap_table(runs: Runs) -> Any:
    """Train and validation loss at each run's best epoch and their gap (val - train): over-fitting shows as a
    growing gap, which regularisation (dropout, augmentation) should shrink."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        h = next((h for h in r.history if h["epoch"] == r.best_epoch), r.history[-1])
        rows.append({"run": name, "epoch": h["epoch"], "train loss": h["train_loss"], "val loss": h["val_loss"],
                     "gap (val - train)": h["val_loss"] - h["train_loss"]})
    return pd.DataFrame(rows).set_index("run")


def class_weight_table(stats: dict[str, Any], configs: Mapping[str, Config]) -> Any:
    """Per class: pixel share, images containing it, and the loss weight each config's class_weights method
    (and weight_clip) gives it, computed exactly as the engine does (data.stats.class_weights)."""
    import pandas as pd

    from .data.stats import class_weights

    pixels = np.asarray(stats["pixels"], dtype=float)
    df = pd.DataFrame({"pixels": stats["pixels"], "% of labelled pixels": 100 * pixels / max(pixels.sum(), 1),
                       "images": stats["images"]}, index=pd.Index(stats["classes"], name="class"))
    for label, cfg in configs.items():
        df[f"{label} weight"] = class_weights(stats, cfg.class_weights, cfg.weight_clip)
    return df


# ------------------------------------------------------------------------------------------------------- plots
def plot_miou_curves(runs: Runs, path: str | Path | None = None, title: str = "") -> Any:
    """Validation mIoU per epoch, one line per run, each run's best epoch starred."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, r in runs.items():
        ep = [h["epoch"] for h in r.history]
        line, = ax.plot(ep, [h["val_miou"] for h in r.history], "o-", ms=4,
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
    _save(fig, path)
    return fig


def plot_lr_schedule(configs: Mapping[str, Config], histories: Mapping[str, list[dict[str, Any]]] | None = None,
                     path: str | Path | None = None, title: str = "") -> Any:
    """The planned learning rate per epoch of each config (base lr x engine.lr_factor, as the scheduler applies
    it) as lines, and the lr each epoch actually used (history.json's `lr`) as open circles."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, cfg in configs.items():
        ep = np.arange(cfg.epochs)
        planned = [cfg.lr * lr_factor(cfg, int(e), cfg.lr) for e in ep]
        line, = ax.plot(ep + 1, planned, ".-", label=f"{name}: planned ({cfg.scheduler or 'constant'}, "
                                                      f"{_plural(cfg.epochs, 'epoch')})")
        if histories and name in histories:
            h = histories[name]
            ax.plot([r["epoch"] for r in h], [r["lr"] for r in h], "o", ms=10, mfc="none", mew=1.5,
                    color=line.get_color(), label=f"{name}: used (history.json)")
    ax.set(xlabel="epoch", ylabel="learning rate (Adam step size)", title=title or "learning rate per epoch")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0.5, max([c.epochs for c in configs.values()] + [1]) + 0.5)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_class_weights(table: Any, path: str | Path | None = None, title: str = "") -> Any:
    """Bars of the '* weight' columns of `class_weight_table`, log scale (a weight of 0 = class absent)."""
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
    _save(fig, path)
    return fig


def plot_iou_heatmap(runs: Runs, path: str | Path | None = None, title: str = "") -> Any:
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
    _save(fig, path)
    return fig


# ------------------------------------------------------------------------------------------ per-image views
def per_image_iou(pred: Any, target: Any, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """IoU of each class on one image (the same definition as the split metric, void ignored):
    an array of `num_classes` values, NaN where a class is in neither the target nor the prediction."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(torch.as_tensor(np.asarray(pred)).long(), torch.as_tensor(np.asarray(target)).long())
    return np.asarray(cm.compute()["iou"], dtype=float)


def image_iou_table(pred: Any, target: Any, classes: Sequence[str], ignore_index: int = 255) -> Any:
    """The classes present in the ground truth or the prediction of one image: pixels in each and their IoU."""
    import pandas as pd

    p, t = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = t != ignore_index
    iou = per_image_iou(p, t, len(classes), ignore_index)
    gt = np.bincount(t[keep], minlength=len(classes))[: len(classes)]
    pr = np.bincount(p[keep], minlength=len(classes))[: len(classes)]
    rows = [{"class": classes[c], "ground-truth pixels": int(gt[c]), "predicted pixels": int(pr[c]), "IoU": iou[c]}
            for c in range(len(classes)) if not math.isnan(iou[c])]
    return pd.DataFrame(rows, columns=["class", "ground-truth pixels", "predicted pixels", "IoU"]).set_index("class")


def _rgb(image: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    from .data.transforms import denormalize

    img = denormalize(image)
    if tuple(img.shape[-2:]) != tuple(hw):
        img = torch.nn.functional.interpolate(img[None], size=hw, mode="bilinear", align_corners=False)[0]
    return img.permute(1, 2, 0).cpu().numpy()


def overlay(rgb: np.ndarray, mask: Any, palette: np.ndarray, alpha: float = 0.5, ignore_index: int = 255
            ) -> np.ndarray:
    """The image (HxWx3 floats 0-1) with the mask's class colours blended in at opacity `alpha`;
    void pixels keep the image unchanged."""
    m = np.asarray(mask)
    colour = colorize(m, palette).astype(float) / 255
    out = (1 - alpha) * rgb + alpha * colour
    out[m == ignore_index] = rgb[m == ignore_index]
    return out.clip(0, 1)


def _mean(v: np.ndarray) -> float:
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def plot_side_by_side(runs: Runs, val_ds: Any, indices: Sequence[int], path: str | Path | None = None,
                      device: str = "cpu") -> Any:
    """The same validation images predicted by every run: image | ground truth | run 1 | run 2 ... per row,
    each prediction labelled with its per-image mIoU; legend of the classes shown."""
    info = val_ds.info
    preds = {name: predict_samples(r.model.to(device), val_ds, indices, device)[2] for name, r in runs.items()}
    cols = 2 + len(runs)
    fig, axes = plt.subplots(len(indices), cols, figsize=(2.5 * cols + 0.5, 2.5 * len(indices) + 0.4),
                             squeeze=False)
    present: set[int] = set()
    for row, i in enumerate(indices):
        img, target = val_ds[i]
        panels = [(_rgb(img, target.shape[-2:]), "image", ""), (colorize(target, info.palette), "ground truth", "")]
        for name, p in preds.items():
            miou = _mean(per_image_iou(p[row], target, info.num_classes))
            panels.append((colorize(p[row], info.palette), name, f"image mIoU {miou:.2f}"))
            present |= set(np.unique(p[row].numpy()).tolist())
        present |= set(np.unique(target.numpy()).tolist())
        for c, (panel, head, foot) in enumerate(panels):
            ax = axes[row, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(foot, fontsize=8)
            if row == 0:
                ax.set_title(head, fontsize=9)
        axes[row, 0].set_ylabel(f"val #{i}", fontsize=8)
    fig.legend(handles=class_legend(info, sorted(present)), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title="classes shown")
    fig.suptitle("the same validation images, predicted by every run")
    fig.tight_layout()
    _save(fig, path)
    return fig


def _predict_one(run: RunResult, val_ds: Any, index: int, device: str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, targets, preds = predict_samples(run.model.to(device), val_ds, [index], device)
    return images[0], targets[0], preds[0]


def render_view(runs: Runs, val_ds: Any, run: str | None = None, index: int = 0, mode: str = "overlay",
                alpha: float = 0.5, path: str | Path | None = None, device: str = "cpu",
                _cache: dict | None = None) -> tuple[Any, Any]:
    """One view of the explorer, as a static figure plus the per-image IoU table: `mode` 'overlay' shows ground
    truth and prediction blended over the image at opacity `alpha`; 'side by side' shows image | GT | prediction.
    Defaults (first run, image 0, overlay, 0.5) are the explorer's opening view."""
    if not runs:
        raise ValueError("no runs to show")
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
    rgb = _rgb(img, target.shape[-2:])
    table = image_iou_table(pred.numpy(), target.numpy(), info.classes)
    miou = table["IoU"].mean() if len(table) else float("nan")
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
                 f"image mIoU {miou:.3f} | {mode}{extra}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return fig, table


def explorer(runs: Runs, val_ds: Any, device: str = "cpu") -> Any:
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


# ------------------------------------------------------------------------------------------------ docs output
def augmented_draws(ds: Any, index: int, n: int = 4, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The same training sample drawn `n` times through its (random) transform: (images, masks), seeded."""
    torch.manual_seed(seed)
    pairs = [ds[index] for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def results_markdown_doc(runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                         figures: Sequence[str | Path] = ()) -> str:
    """docs/RESULTS.md: a header naming the command that made it, the results table of every finished run
    (report.results_markdown) and the expected runs still missing."""
    from .report import collect_runs, results_markdown

    collected = [r for r in collect_runs(runs_dir) if not dataset or r["config"]["dataset"] == dataset]
    names = {r["config"]["name"] for r in collected}
    missing = [n for n in EXPECTED_RUNS if n not in names]
    lines = [f"## {dataset or 'all datasets'}", "",
             f"Written by `notebooks/08_results_comparison.ipynb` on {date.today().isoformat()}"
             f"{f' (profile {profile}, dataset {dataset})' if profile or dataset else ''}, made with:", "",
             "```bash", command, "```", "",
             "Validation split, metrics of each run's best epoch by validation mIoU, from one confusion matrix over "
             "the whole split with void (255) ignored.", "",
             results_markdown(collected), ""]
    if missing:
        lines += [f"Expected runs not found on {dataset or 'any dataset'}: " + ", ".join(missing) + ".", ""]
    if figures:
        lines += ["Figures: " + ", ".join(f"[{Path(f).name}]({f})" for f in figures) + ".", ""]
    return "\n".join(lines)


def write_results_doc(path: str | Path, runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                      figures: Sequence[str | Path] = ()) -> Path:
    """Write `results_markdown_doc` to `path` (docs/RESULTS.md), figure links relative to its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    links = [Path(os.path.relpath(Path(f).resolve(), path.parent.resolve())).as_posix() for f in figures]
    path.write_text(results_markdown_doc(runs_dir, command, profile, dataset, links))
    return path


def assemble_results(docs_dir: str | Path) -> Path:
    """docs/RESULTS.md = every per-dataset section in docs/results/*.md (each written by notebook 08)."""
    docs_dir = Path(docs_dir)
    # sections link figures relative to docs/results/; RESULTS.md sits one folder up
    parts = [p.read_text().strip().replace("](../../", "](../") for p in sorted((docs_dir / "results").glob("*.md"))]
    out = docs_dir / "RESULTS.md"
    out.write_text("# Results\n\nGenerated from docs/results/*.md: one section per dataset by "
                   "`notebooks/08_results_comparison.ipynb` (same epochs and budget for every row of a table), and "
                   "one per recipe run by `python -m starter_code report --section` (its own budget). "
                   "Do not edit by hand.\n\n"
                   + "\n\n".join(parts) + "\n")
    return out


# ------------------------------------------------------------------ transfer learning and U-Net (notebooks 06, 07)
def pretrained_available(download: bool | None = None, verbose: bool = True) -> bool:
    """True when the ImageNet ResNet-34 weights load into the encoder: from torch.hub's cache
    (`models.resnet.weights_cache_path()`), or after one download attempt when `download` (default: only on
    Colab; elsewhere the network is never touched). Otherwise prints a loud banner with the exact file name, where
    to put it and where to get it, and returns False: a missing or unreadable file never raises here."""
    from .models.resnet import (
        WEIGHTS,
        WEIGHTS_FILE,
        WEIGHTS_URL,
        PretrainedWeightsUnavailable,
        ResNet34Encoder,
        weights_cache_path,
    )
    from .notebook import on_colab

    path = weights_cache_path()
    download = on_colab() if download is None else download
    reason = f"{path} does not exist and no download was tried (not on Colab)"
    if path.is_file() or download:
        try:
            ResNet34Encoder(pretrained=True)  # loads the cache (or downloads once) and checks every key
            if verbose:
                print(f"ImageNet weights AVAILABLE: {WEIGHTS} loaded from {path}")
            return True
        except PretrainedWeightsUnavailable as e:
            reason = str(e).split(". On a machine")[0].removeprefix("ImageNet ResNet-34 weights unavailable: ")
            reason = reason.splitlines()[0] if reason else type(e).__name__
            reason = reason if len(reason) <= 240 else reason[:240] + " ..."
            if path.is_file():
                reason += f"\n  fix         : delete {path}; it is not the right file"
    if verbose:
        line = "!" * 98
        print(f"{line}\nPRETRAINED ImageNet ResNet-34 WEIGHTS NOT AVAILABLE: a ResNet-34 model can only be trained "
              f"FROM SCRATCH here\n(model_kwargs={{'pretrained': False}}); nothing can be fine-tuned from ImageNet.\n"
              f"  file needed : {WEIGHTS_FILE}\n  put it at   : {path}\n"
              f"  get it from : {WEIGHTS_URL} (on a machine with internet)\n  why         : {reason}\n{line}")
    return False


def encoder_init(cfg: Config) -> str:
    """How a config's encoder starts: 'ImageNet' or 'random (scratch)' for models with a `pretrained` switch,
    'random (no encoder to pretrain)' for the others."""
    from .models import MODELS

    factory = MODELS.get(cfg.model)
    param = inspect.signature(factory).parameters.get("pretrained") if factory else None
    if param is None:
        return "random (no encoder to pretrain)"
    return "ImageNet" if cfg.model_kwargs.get("pretrained", param.default) else "random (scratch)"


def transfer_table(runs: Runs, reference: str = "baseline") -> Any:
    """One row per run: model, how its encoder started (`encoder_init`), the encoder's learning rate (empty for
    models without an encoder) and `lr` (the decoder's, or every parameter's), frozen epochs, parameters, epochs
    run, mIoU and the mIoU difference to `reference` (a DataFrame)."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        c, init = r.config, encoder_init(r.config)
        enc_lr = c.encoder_lr if c.encoder_lr is not None else c.lr
        rows.append({"run": name, "model": c.model, "encoder init": init,
                     "encoder lr": None if init.startswith("random (no") else enc_lr, "lr": c.lr,
                     "frozen epochs": c.freeze_encoder_epochs,
                     "parameters": sum(p.numel() for p in r.model.parameters()),
                     "epochs run": len(r.history), "mIoU": r.metrics["miou"]})
    df = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
    if reference in runs and rows:
        df[f"mIoU vs {reference}"] = df["mIoU"] - df.loc[reference, "mIoU"]
    return df


def forward_flops(model: torch.nn.Module, image_size: int = 224) -> int:
    """FLOPs of one forward pass on one image_size x image_size image, as torch.utils.flop_counter counts them
    (convolutions and matrix products, a multiply-add = 2 FLOPs; BatchNorm, ReLU and pooling are not counted).
    Works on a model on the meta device (no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


def cost_table(configs: Mapping[str, Config], image_size: int = 224, reference: str | None = "baseline",
               num_classes: int = 21) -> Any:
    """Per config: model, parameters and forward GFLOPs for one image_size x image_size image (`forward_flops`),
    and both relative to `reference` when it is among the configs. Models are built on the meta device with
    pretrained=False, so this takes no time, no memory and no weights file (a DataFrame)."""
    import pandas as pd

    from .models import MODELS, build_model

    rows = []
    for name, cfg in configs.items():
        kwargs = dict(cfg.model_kwargs)
        if "pretrained" in inspect.signature(MODELS[cfg.model]).parameters:
            kwargs["pretrained"] = False
        with torch.device("meta"):
            model = build_model(cfg.model, num_classes=num_classes, **kwargs)
        rows.append({"name": name, "model": cfg.model, "parameters": sum(p.numel() for p in model.parameters()),
                     f"GFLOP / image ({image_size}x{image_size}, forward)": forward_flops(model, image_size) / 1e9})
    df = pd.DataFrame(rows).set_index("name")
    if reference is not None and reference in configs:
        for col in ("parameters", f"GFLOP / image ({image_size}x{image_size}, forward)"):
            df[f"{col.split(' ')[0]} x {reference}"] = df[col] / df.loc[reference, col]
    return df
