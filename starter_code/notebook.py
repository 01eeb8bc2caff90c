"""The few calls a notebook makes beyond `workspace.setup`: train-or-load a run, show it, compare runs, and the
small tables the notebooks print (config diffs, class weights, layers).

Nothing in the package imports this module: it is the notebooks' front door, sitting on top of `runs` (reading
runs), `engine` (training, predicting), `viz` (plots) and `report` (figures and tables of runs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import write_json
from .config import Config, expected_runs
from .engine import fit, forward_logits, lr_factor, predict_samples
from .metrics import ConfusionMatrix, per_batch_mean_iou
from .models.resnet import encoder_init, weights_cache_path
from .report import NOISE_SIGMAS, Spread, save_run_figures, spread, verdict
from .runs import Run, load_run, run_dir_for
from .viz import plot_side_by_side
from .workspace import CPU_PROFILES, Settings


# -------------------------------------------------------------------------------------------------- runs
def _same_config(run_dir: Path, cfg: Config) -> bool:
    path = run_dir / "config.json"
    return path.is_file() and json.loads(path.read_text()) == json.loads(json.dumps(cfg.to_dict()))


def data_signature(cfg: Config) -> str:
    """The data a run trains on, identified by content: its split lists and, for the synthetic set, SYNTHETIC.json
    (generator version, seed and sizes fix every image), hashed. A copy extracted or generated again (every new
    Colab VM) has the same signature; other data has another. File times play no part."""
    root = Path(cfg.data_root)
    files = sorted([*root.glob("*.txt"), *root.glob("VOCdevkit/*/ImageSets/Segmentation/*.txt"),
                    *root.glob("VOCdevkit/*/SYNTHETIC.json")])
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _same_data(run_dir: Path, cfg: Config) -> bool:
    """True when the run in `run_dir` was trained on data with the signature cfg.data_root has now (data.json)."""
    try:
        return json.loads((run_dir / "data.json").read_text())["signature"] == data_signature(cfg)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def train_or_load(cfg: Config, s: Settings, retrain: bool = False, progress: bool = True) -> Run:
    """Reuse a finished run with exactly this config (e.g. the baseline another notebook trained), continue an
    interrupted one (its last.pt; e.g. after a Colab disconnect), else train it. Runs live in s.runs_dir
    (`runs.run_dir_for`: a seed other than 0 in its own folder)."""
    path = run_dir_for(cfg, s.runs_dir)
    same = not retrain and _same_config(path, cfg) and _same_data(path, cfg)
    metrics = path / "metrics.json"
    if same and metrics.is_file():
        print(f"reusing the finished run in {path} (pass retrain=True to train again)")
        return load_run(path)
    resume = "auto" if same else False  # "auto": only when last.pt is there
    path.mkdir(parents=True, exist_ok=True)
    write_json({"data_root": cfg.data_root, "signature": data_signature(cfg)}, path / "data.json")
    return fit(cfg, path, resume=resume, progress=progress)


SEEDS = (0, 1, 2)  # the baseline is trained with each: its spread is what "within seed noise" is measured against


def seed_runs(cfg: Config, s: Settings, seeds: Sequence[int] = SEEDS, progress: bool = True) -> dict[str, Run]:
    """`cfg` trained (or reused: `train_or_load`) once per random seed, keyed as `runs.list_runs` keys them: the
    experiment's name for seed 0 (the course's run), '<name>-seed<k>' for the others, each in its own run
    directory. Only the seed differs, so the spread of their metrics is the run-to-run noise at this budget."""
    out = {}
    for seed in seeds:
        key = cfg.name if seed == 0 else f"{cfg.name}-seed{seed}"
        out[key] = train_or_load(replace(cfg, seed=seed), s, progress=progress)
    return out


def versus_seeds(value: float, seed_values: Sequence[float], reference: str = "baseline", digits: int = 3) -> str:
    """One run's number against the same number of the reference's seeds, in `report.compare`'s words, for what the
    results table does not hold (a loss gap, the first epoch's mIoU): e.g. '0.055 vs baseline 0.054 ± 0.002
    (3 seeds): within seed noise at this budget'."""
    ref = Spread(reference, "", tuple(float(v) for v in seed_values))
    return f"{value:.{digits}f} vs {reference} {ref.text(digits)}: {verdict(value - ref.mean, NOISE_SIGMAS * ref.std)}"


def versus_by_seeds(runs: Mapping[str, Run], experiment: str, reference: str, seeds: str = "baseline",
                    digits: int = 3) -> str:
    """Two experiments without seeds of their own compared on mIoU, the difference judged by the seed spread of
    `seeds` (`report.compare`'s rule, which would have no spread to judge by): e.g. 'resnet34_unet 0.060 vs
    resnet34_fcn 0.058: within seed noise at this budget (judged by the baseline seeds' spread)'."""
    a, b = spread(runs, experiment), spread(runs, reference)
    noise = NOISE_SIGMAS * spread(runs, seeds).std
    return (f"{experiment} {a.text(digits)} vs {reference} {b.text(digits)}: {verdict(a.mean - b.mean, noise)} "
            f"(judged by the {seeds} seeds' spread)")


def loss_turn(run: Run) -> dict[str, float]:
    """Where the run's validation cross-entropy (without class weights) was lowest and how both losses moved from
    there to the last validated epoch: {'low': that epoch, 'last': the last one, 'val_rise': val CE last - lowest,
    'train_change': train loss last - at the low}. Over-fitting shows as val_rise > 0 with train_change < 0."""
    rows = [h for h in run.history if h.get("val_loss") is not None]
    val = [h["val_ce"] if h.get("val_ce") is not None else h["val_loss"] for h in rows]
    low = val.index(min(val))
    return {"low": rows[low]["epoch"], "last": rows[-1]["epoch"], "val_rise": val[-1] - val[low],
            "train_change": rows[-1]["train_loss"] - rows[low]["train_loss"]}


def show(run: Run, val_ds: Any, s: Settings, n: int = 4) -> dict[str, Path]:
    """Save the run's curves, masks and per-class IoU under figures/ (named after the experiment) and display them."""
    paths = save_run_figures(run, val_ds, s.figures_dir, n=n)
    try:
        from IPython.display import Image, display

        for p in paths.values():
            display(Image(filename=str(p)))
    except ImportError:
        pass
    return paths


def side_by_side(runs: Mapping[str, Run], val_ds: Any, indices: Sequence[int], path: str | Path | None = None,
                 device: str = "cpu") -> Any:
    """The same validation images predicted by every run's best model, one row per image
    (viz.plot_side_by_side)."""
    preds = {name: predict_samples(r.model.to(device), val_ds, indices, device)[2] for name, r in runs.items()}
    pairs = [val_ds[i] for i in indices]
    return plot_side_by_side([p[0] for p in pairs], [p[1] for p in pairs], preds, val_ds.info,
                             [f"val #{i}" for i in indices], path)


def course_runs(runs: Mapping[str, Run], s: Settings) -> dict[str, str]:
    """The course experiments the notebooks train in this setting (name -> notebook): a CPU or a GPU profile,
    with or without ImageNet weights (judged from the runs: any ImageNet encoder among them, or the weights file
    on this machine)."""
    pretrained = weights_cache_path().is_file() or any(encoder_init(r.config) == "ImageNet" for r in runs.values())
    return expected_runs(pretrained=pretrained, cpu=s.profile in CPU_PROFILES)


# ------------------------------------------------------------------------------------------------ tables
def diff_table(cfg: Config, base: Config) -> Any:
    """The fields where `cfg` differs from `base`, one row each: base value | cfg value (a DataFrame)."""
    import pandas as pd

    d = cfg.diff(base)
    return pd.DataFrame({base.name: [repr(a) for a, _ in d.values()], cfg.name: [repr(b) for _, b in d.values()]},
                        index=pd.Index(list(d), name="field"))


def planned_lr(cfg: Config) -> list[float]:
    """The learning rate each epoch 1..cfg.epochs will use: cfg.lr x engine.lr_factor, as the scheduler applies
    it (for viz.plot_lr_schedule)."""
    return [cfg.lr * lr_factor(cfg, e, cfg.lr) for e in range(cfg.epochs)]


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


def augmented_draws(ds: Any, index: int, n: int = 4, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The same training sample drawn `n` times through its (random) transform: (images, masks), seeded."""
    torch.manual_seed(seed)
    pairs = [ds[index] for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def layer_table(model: Any, image_size: int = 128) -> Any:
    """Each leaf layer with its output shape and parameter count for one image (a pandas DataFrame)."""
    import pandas as pd

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
    """The report's per-batch-averaged mIoU next to the correct dataset-level mIoU, on the same predictions."""
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
