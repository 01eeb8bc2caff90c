"""A run directory on disk <-> one `Run` object; listing runs; the run-dir rule; the one results table.

`fit` returns a Run, and every notebook, the comparison plots, `predict` and the reports read finished runs back
through `load_run` / `list_runs`, so there is one way to open a run and one table to compare them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import implied_stop_reason, load_checkpoint, read_history
from .config import BASELINE, Config, expected_runs
from .models import MODELS, build_model
from .models.tta import with_tta


@dataclass
class Run:
    """A run directory, loaded: its config, history, best-epoch metrics and (optionally) best weights.

    `fit` returns one too (with the model). `stop_reason` is None when every epoch ran, "early_stop" when
    `patience` epochs passed without a better val mIoU, "budget" when `budget_min` was used up (its schedule then
    ended at eta_min); runs written before the budget existed may say "time_limit"."""

    config: Config
    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    best_epoch: int
    stopped_epoch: int | None
    stop_reason: str | None
    classes: list[str]
    model: nn.Module | None = None
    fit_seconds: float | None = None

    @property
    def name(self) -> str:
        """The experiment name (config.name)."""
        return self.config.name

    @property
    def epochs_run(self) -> int:
        """Epochs trained (fewer than config.epochs after an early or time-limit stop)."""
        return len(self.history)

    @property
    def stop_words(self) -> str:
        """Why training ended, in words (the CLI's final line, a results section): an early stop and a spent time
        budget differ."""
        cfg = self.config
        if self.stop_reason == "early_stop":
            return f"early stop after epoch {self.stopped_epoch} (no better val mIoU for {cfg.patience} epochs)"
        if self.stop_reason == "budget":
            return f"time budget of {cfg.budget_min:g} min spent after epoch {self.stopped_epoch}, schedule completed"
        return f"all {self.epochs_run} epochs run"

    @property
    def seconds(self) -> float:
        """Training time: the sum of the epochs' seconds (set-up and caching excluded; see fit_seconds)."""
        return sum(h.get("seconds", 0) for h in self.history)


def run_key(cfg: Config) -> str:
    """How tables name a run: the experiment, with "-seed<k>" for a seed other than the baseline's."""
    return cfg.name if cfg.seed == BASELINE.seed else f"{cfg.name}-seed{cfg.seed}"


def run_dir_for(cfg: Config, runs_dir: str | Path = "runs") -> Path:
    """Where a run of `cfg` lives: <runs_dir>/<experiment name>-<dataset>, "-seed<k>" appended for a seed other
    than the baseline's, so the seeds of one experiment never share a folder."""
    suffix = "" if cfg.seed == BASELINE.seed else f"-seed{cfg.seed}"
    return Path(runs_dir) / f"{cfg.name}-{cfg.dataset}{suffix}"


# ---------------------------------------------------------------------------------------------------- loading
def load_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, Config, dict[str, Any]]:
    """Rebuild a trained model from `<run_dir>/<which>.pt`: (model in eval mode, its Config, the checkpoint).
    The model predicts as the run validated it: inside its config's test-time augmentation (`tta`), if any.

    A model whose factory takes `pretrained` is built with pretrained=False: the checkpoint holds every weight,
    so opening a finished run never fetches (or needs) ImageNet weights."""
    ckpt = load_checkpoint(Path(run_dir) / f"{which}.pt", device)
    cfg = Config.from_dict(ckpt["config"])
    kwargs = dict(cfg.model_kwargs)
    factory = MODELS.get(cfg.model)
    if factory is not None and "pretrained" in inspect.signature(factory).parameters:
        kwargs["pretrained"] = False
    model = build_model(cfg.model, num_classes=len(ckpt["classes"]), **kwargs)
    model.load_state_dict(ckpt["model"])
    return with_tta(model.to(device).eval(), cfg.tta), cfg, ckpt


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", weights: bool = True) -> Run:
    """A finished run read back from its directory: config, history, metrics and, with `weights`, the best model
    (from best.pt, in eval mode on `device`). Without weights only the JSON files are read (fast; no best.pt
    needed). A folder that is not a finished run raises FileNotFoundError naming it."""
    run_dir = Path(run_dir)
    for name in ("metrics.json", "config.json", "history.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: not a finished run (no {name}); train it first")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    saved = read_history(run_dir)
    model = None
    if weights:
        model, cfg, ckpt = load_model(run_dir, "best", device)
        classes = list(ckpt["classes"])
    else:
        cfg = Config.from_dict(json.loads((run_dir / "config.json").read_text()))
        classes = list(metrics.get("iou", {}))
    best_epoch = saved.get("best_epoch", metrics.get("epoch"))
    reason = saved["stop_reason"] if "stop_reason" in saved else implied_stop_reason(
        cfg, saved.get("stopped_epoch"), best_epoch)
    return Run(cfg, run_dir, saved["history"], metrics, best_epoch, saved.get("stopped_epoch"),
               reason, classes, model, saved.get("fit_seconds"))


def _seed_split(key: str) -> tuple[str, int]:
    """"baseline-seed2" -> ("baseline", 2); a key without a seed suffix -> (key, 0)."""
    name, sep, seed = key.rpartition("-seed")
    return (name, int(seed)) if sep and name and seed.isdigit() else (key, 0)


def course_order(names: Iterable[str]) -> list[str]:
    """The course's experiments first, in course order (config.expected_runs), then the others sorted; a seed
    variant ("baseline-seed1") right after its experiment, seeds in order."""
    course = {n: i for i, n in enumerate(expected_runs())}

    def rank(key: str) -> tuple[int, str, int, str]:
        name, seed = _seed_split(key)
        return (course.get(name, len(course)), name if name not in course else "", seed, key)

    return sorted(names, key=rank)


def list_runs(runs_dir: str | Path, dataset: str | None = None, weights: bool = False,
              device: str | torch.device = "cpu", verbose: bool = True) -> dict[str, Run]:
    """Every finished run (a folder with metrics.json) under `runs_dir`, optionally only those on `dataset`,
    keyed by experiment name (by folder name when two runs share a name), course order first.
    A folder that cannot be read is skipped with a printed reason (`verbose`), never hiding the others."""
    found: dict[str, Run] = {}
    for mpath in sorted(Path(runs_dir).glob("*/metrics.json")):
        d = mpath.parent
        try:
            if dataset is not None and json.loads((d / "config.json").read_text()).get("dataset") != dataset:
                continue
            found[d.name] = load_run(d, device, weights)
        except Exception as e:  # a half-written or foreign folder must not hide the others
            if verbose:
                print(f"skipped {d}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    keys = [run_key(r.config) for r in found.values()]
    unique = len(set(keys)) == len(keys)
    keyed = {(run_key(r.config) if unique else folder): r for folder, r in found.items()}
    return {k: keyed[k] for k in course_order(keyed)}


def expected_missing(runs: Mapping[str, Run], expected: Iterable[str] | None = None) -> list[str]:
    """The course's experiments with no run among `runs` (matched on the key or the experiment name), in course
    order. `expected` defaults to config.expected_runs(); pass expected_runs(pretrained=..., cpu=...) to ask only
    for what the notebooks train in that setting."""
    have = set(runs) | {r.name for r in runs.values()}
    names = expected_runs() if expected is None else expected
    return [n for n in names if n not in have]


# ----------------------------------------------------------------------------------------------------- tables
def _items(runs: Mapping[str, Run] | Sequence[Run]) -> list[tuple[str, Run]]:
    return list(runs.items()) if isinstance(runs, Mapping) else [(r.name, r) for r in runs]


def results_rows(runs: Mapping[str, Run] | Sequence[Run]) -> list[dict[str, Any]]:
    """One plain dict per run (in the given order): the validation metrics of the epoch it kept and what made it.
    Keys: run (the mapping key), experiment, seed, model, dataset, image size, pixel accuracy, mean class accuracy,
    mIoU, best epoch (the kept one), epochs run, train minutes, val CE (the unweighted cross-entropy, comparable
    whatever loss the run trained with; None for runs written before it was recorded)."""
    rows = []
    for key, r in _items(runs):
        m = r.metrics
        rows.append({"run": key, "experiment": r.name, "seed": r.config.seed, "model": r.config.model,
                     "dataset": r.config.dataset, "image size": r.config.image_size, "pixel accuracy": m["pixel_acc"],
                     "mean class accuracy": m["mean_class_acc"], "mIoU": m["miou"],
                     "best epoch": m.get("epoch", r.best_epoch), "epochs run": r.epochs_run,
                     "train minutes": r.seconds / 60, "val CE": m.get("ce")})
    return rows


TABLE_COLUMNS = ("model", "pixel accuracy", "mean class accuracy", "mIoU", "best epoch", "epochs run", "val CE")


def results_table(runs: Mapping[str, Run] | Sequence[Run], reference: str = "baseline") -> Any:
    """The results table as a pandas DataFrame indexed by run: model, pixel accuracy, mean class accuracy, mIoU,
    'mIoU vs <reference>' (against the mean over the reference experiment's seeds, when it is among the runs),
    best epoch, epochs run, val CE."""
    import pandas as pd

    rows = results_rows(runs)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).set_index("run")
    ref = df.loc[df["experiment"] == reference, "mIoU"]  # every seed of the reference: their mean
    df = df[list(TABLE_COLUMNS)]
    if len(ref):
        df.insert(df.columns.get_loc("mIoU") + 1, f"mIoU vs {reference}", df["mIoU"] - ref.mean())
    return df


def results_markdown(runs: Mapping[str, Run] | Sequence[Run]) -> str:
    """The results table as markdown (docs/results/*.md): experiment, model, dataset, image size, epochs (best),
    train time, pixel accuracy, mean class accuracy, mIoU, val CE ("-" for runs without it). Rows sorted by run
    folder, so a document rewritten from the same runs is byte-identical whatever order they were listed in."""
    order = sorted(_items(runs), key=lambda kr: kr[1].run_dir.name)
    lines = ["| run | model | dataset | image size | epochs (best) | train time | pixel acc | mean class acc | mIoU "
             "| val CE |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in results_rows(dict(order) if isinstance(runs, Mapping) else [r for _, r in order]):
        ce = "-" if row["val CE"] is None else f"{row['val CE']:.4f}"
        lines.append(f"| {row['experiment']} | {row['model']} | {row['dataset']} | {row['image size']} | "
                     f"{row['epochs run']} ({row['best epoch']}) | {row['train minutes']:.1f} min | "
                     f"{row['pixel accuracy']:.4f} | {row['mean class accuracy']:.4f} | {row['mIoU']:.4f} | {ce} |")
    return "\n".join(lines)
