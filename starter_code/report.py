"""What finished runs are written up as: a run's standard figures, comparison tables with their seed spread, the
report's own numbers beside ours, and docs/RESULTS.md.

Runs are read through `runs.py` (the one loader; `runs.results_rows` is the one source of every table here); plots
come from `viz.py`. Runs of one experiment that differ only in their random seed are folded into one row, mean ±
standard deviation, and `compare` says in words whether a difference is larger than that spread. Docs are written
per dataset to docs/results/<dataset>.md (by notebook 08) or per recipe run (`report --section`), and
`assemble_results` joins them into docs/RESULTS.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import expected_runs
from .engine import predict_samples
from .models.resnet import encoder_init
from .runs import Run, expected_missing, list_runs, load_run, results_markdown, results_rows
from .viz import iou_frame, plot_class_iou, plot_history, plot_masks, plt


# ------------------------------------------------------------------------------------------------- figures
def save_run_figures(run: Run, val_ds: Any, figures_dir: str | Path = "figures", n: int = 4,
                     device: str | torch.device = "cpu") -> dict[str, Path]:
    """The three standard figures of a finished run (its model predicts `n` validation images spread over the
    split), named after its experiment and dataset: <name>_<dataset>_curves.png, _masks.png, _class_iou.png.
    Returns their paths."""
    figures_dir = Path(figures_dir)
    name = f"{run.config.name}_{run.config.dataset}"
    paths = {k: figures_dir / f"{name}_{k}.png" for k in ("curves", "masks", "class_iou")}
    plt.close(plot_history(run.history, run.best_epoch, run.stopped_epoch, run.config.name, paths["curves"],
                           run.stop_reason, run.config.keep))
    idx = np.linspace(0, len(val_ds) - 1, num=min(n, len(val_ds))).astype(int).tolist()
    images, targets, preds = predict_samples(run.model.to(device), val_ds, idx, device)
    plt.close(plot_masks(images, targets, preds, val_ds.info, f"{run.config.name}: validation images", paths["masks"]))
    plt.close(plot_class_iou(run.metrics["iou"], path=paths["class_iou"],
                             title=f"{run.config.name}: per-class IoU (val, {run.config.keep} epoch {run.best_epoch})"))
    return paths


# --------------------------------------------------------------------------------------------- the report
# The report's test figures (its Tables 1-8): pixel accuracy and mean IoU as fractions, by our experiment names.
REPORT_NUMBERS: dict[str, dict[str, Any]] = {
    "baseline": {"the report's run": "baseline FCN", "pixel accuracy": 0.7377, "mIoU": 0.0665},
    "cosine": {"the report's run": "cosine annealing", "pixel accuracy": 0.736, "mIoU": 0.0662},
    "augment": {"the report's run": "augmentation", "pixel accuracy": 0.7371, "mIoU": 0.069},
    "weighted": {"the report's run": "weighted loss", "pixel accuracy": 0.7414, "mIoU": 0.064},
    "dropout": {"the report's run": "dropout architecture", "pixel accuracy": 0.7855, "mIoU": 0.1382},
    "resnet34_fcn": {"the report's run": "ResNet-34 (ImageNet encoder)", "pixel accuracy": 0.8329, "mIoU": 0.1875},
    "unet": {"the report's run": "U-Net", "pixel accuracy": 0.756, "mIoU": 0.083},
}
# Our runs that stand in for a report row when its own experiment did not run: the CPU-sized U-Net, and offline
# (no ImageNet weights without internet) the ResNet-34 trained from scratch, its name saying so.
REPORT_STAND_INS: dict[str, tuple[str, ...]] = {"unet": ("unet_cpu",), "resnet34_fcn": ("resnet34_fcn_scratch",)}
# Why the report's numbers and ours cannot be compared digit for digit.
NOT_COMPARABLE: tuple[str, ...] = (
    "the report counted void (255) pixels as background; we ignore them, as VOC's evaluation does",
    "the report averaged IoU per batch over the classes present in each batch; we compute it from one confusion "
    "matrix over the whole split",
    "the report tested on a random half of the validation split; we evaluate on the whole validation split",
)


def report_caveats(dataset: str = "voc") -> str:
    """Why the report's numbers (real VOC) are not comparable with ours on `dataset`, as one paragraph."""
    other = {"synthetic": " And these runs of ours are on the synthetic stand-in for VOC, at a CPU budget.",
             "camvid": " And these runs of ours are on CamVid (11 street classes), not VOC."}.get(dataset, "")
    return "The report's numbers are not comparable with ours: " + "; ".join(NOT_COMPARABLE) + "." + other


def beside_the_report(runs: Mapping[str, Run], experiments: Iterable[str] | None = None) -> Any:
    """The report's test pixel accuracy and mIoU beside ours (the mean over seeds where seeds exist) for `experiments`
    (default: every row of REPORT_NUMBERS), one row each; 'our run' is empty where no run of ours stands for it.
    Read `report_caveats()` before comparing the columns."""
    import pandas as pd

    ours = {r["experiment"]: r for r in spread_rows(runs)}
    rows = []
    for name in (REPORT_NUMBERS if experiments is None else experiments):
        paper = REPORT_NUMBERS[name]
        mine = next((ours[n] for n in (name, *REPORT_STAND_INS.get(name, ())) if n in ours), None)
        rows.append({"experiment": name, "the report's run": paper["the report's run"],
                     "the report: pixel accuracy": paper["pixel accuracy"], "the report: mIoU": paper["mIoU"],
                     "our run": mine["experiment"] if mine else "",
                     "ours: pixel accuracy": mine["pixel accuracy"] if mine else math.nan,
                     "ours: mIoU": mine["mIoU"] if mine else math.nan, "our seeds": mine["seeds"] if mine else 0})
    return pd.DataFrame(rows).set_index("experiment") if rows else pd.DataFrame()


# ------------------------------------------------------------------------------------------------ seeds
SPREAD_METRICS = ("pixel accuracy", "mean class accuracy", "mIoU", "val CE")  # what tables fold over seeds
NOISE_SIGMAS = 2.0  # a difference within 2 standard deviations of the seed spread is "within seed noise"


@dataclass(frozen=True)
class Spread:
    """One metric of one experiment over its seeds: the values, their mean and sample standard deviation."""

    experiment: str
    metric: str
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """How many seeds."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """The mean over the seeds."""
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        """The sample standard deviation over the seeds (n - 1 in the denominator); NaN with one seed."""
        if self.n < 2:
            return math.nan
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (self.n - 1))

    def text(self, digits: int = 3) -> str:
        """'0.102 ± 0.006 (3 seeds)', or '0.100' for one seed."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} ({self.n} seeds)"


def _recipe(run: Run) -> tuple:
    """What a run learned, its seed aside: runs with equal recipes are seeds of one experiment."""
    return tuple(sorted((k, repr(v)) for k, v in replace(run.config, seed=0).to_dict().items()))


def seed_groups(runs: Mapping[str, Run]) -> dict[str, list[str]]:
    """The keys of `runs` grouped by experiment: runs with the same config except the seed form one group, keyed by
    the experiment name (the key of its first run when two different configs share a name), in the given order."""
    groups: dict[tuple, list[str]] = {}
    for key, run in runs.items():
        groups.setdefault(_recipe(run), []).append(key)
    named: dict[str, list[str]] = {}
    for keys in groups.values():
        name = runs[keys[0]].name
        named[name if name not in named else keys[0]] = keys
    return named


def one_per_experiment(runs: Mapping[str, Run]) -> dict[str, Run]:
    """The first run of each experiment (its seed-0 run when seeds were trained) keyed by the experiment, for plots
    showing one run each."""
    return {name: runs[keys[0]] for name, keys in seed_groups(runs).items()}


def spread_rows(runs: Mapping[str, Run]) -> list[dict[str, Any]]:
    """`runs.results_rows` folded over seeds: one dict per experiment with its `seeds` (how many), `runs` (their
    keys), the mean of every metric in SPREAD_METRICS under the metric's name and its standard deviation under
    '<metric> std' (NaN for one seed), and 'epochs run'/'best epoch' of its first run."""
    by_key = {row["run"]: row for row in results_rows(runs)}
    out = []
    for name, keys in seed_groups(runs).items():
        rows = [by_key[k] for k in keys]
        first = rows[0]
        row = {"experiment": name, "model": first["model"], "dataset": first["dataset"],
               "image size": first["image size"], "seeds": len(rows), "runs": keys,
               "epochs run": first["epochs run"], "best epoch": first["best epoch"],
               "train minutes": sum(r["train minutes"] for r in rows) / len(rows)}
        for metric in SPREAD_METRICS:
            values = [r.get(metric) for r in rows]
            if any(v is None for v in values):
                row[metric] = row[f"{metric} std"] = math.nan
                continue
            s = Spread(name, metric, tuple(float(v) for v in values))
            row[metric], row[f"{metric} std"] = s.mean, s.std
        out.append(row)
    return out


def spread(runs: Mapping[str, Run], experiment: str, metric: str = "mIoU") -> Spread:
    """`metric` of `experiment` over its seeds among `runs` (KeyError naming the experiments there if absent)."""
    groups = seed_groups(runs)
    if experiment not in groups:
        raise KeyError(f"no run of {experiment!r} among {', '.join(groups) or 'no runs'}")
    values = [r.get(metric) for r in results_rows({k: runs[k] for k in groups[experiment]})]
    if any(v is None for v in values):
        raise KeyError(f"{metric!r} is not recorded for every run of {experiment}")
    return Spread(experiment, metric, tuple(float(v) for v in values))


def verdict(diff: float, noise: float) -> str:
    """Words for a difference against a seed spread: 'within seed noise', 'above ...' or 'below ...'; noise NaN
    (one seed only) gives 'no seed spread to judge it by'."""
    if math.isnan(noise):
        return "no seed spread to judge it by"
    if abs(diff) <= noise:
        return "within seed noise at this budget"
    return f"{'above' if diff > 0 else 'below'} the seed spread at this budget"


def compare(runs: Mapping[str, Run], experiment: str, reference: str = "baseline", metric: str = "mIoU",
            digits: int = 3) -> str:
    """One sentence: does `experiment` differ from `reference` by more than seed noise? E.g. 'cosine 0.100 vs
    baseline 0.102 ± 0.006 (3 seeds): within seed noise at this budget'. Noise is NOISE_SIGMAS x the larger of
    the two seed standard deviations (roughly a 95 % band); with no experiment of several seeds it says so."""
    a, b = spread(runs, experiment, metric), spread(runs, reference, metric)
    stds = [s.std for s in (a, b) if s.n > 1]
    noise = NOISE_SIGMAS * max(stds) if stds else math.nan
    label = "" if metric == "mIoU" else f" ({metric})"
    return (f"{experiment} {a.text(digits)} vs {reference} {b.text(digits)}{label}: "
            f"{verdict(a.mean - b.mean, noise)}")


def spread_table(runs: Mapping[str, Run], reference: str = "baseline", digits: int = 4) -> Any:
    """The results table with seeds folded: one row per experiment, each metric as 'mean ± std' where it has several
    seeds, the number of seeds, and '<metric> vs <reference>': the difference of the means and whether it is
    within seed noise (`compare`'s rule). A DataFrame of text, for reading."""
    import pandas as pd

    rows = spread_rows(runs)
    if not rows:
        return pd.DataFrame()
    ref = next((r for r in rows if r["experiment"] == reference), None)
    table = []
    for r in rows:
        out = {"experiment": r["experiment"], "model": r["model"], "seeds": r["seeds"]}
        for metric in SPREAD_METRICS:
            if math.isnan(r[metric]):
                continue
            std = r[f"{metric} std"]
            out[metric] = f"{r[metric]:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")
        if ref is not None and r is not ref:
            stds = [x for x in (r["mIoU std"], ref["mIoU std"]) if not math.isnan(x)]
            diff = r["mIoU"] - ref["mIoU"]
            out[f"mIoU vs {reference}"] = (f"{diff:+.{digits}f} "
                                           f"({verdict(diff, NOISE_SIGMAS * max(stds) if stds else math.nan)})")
        out["best epoch"], out["epochs run"] = r["best epoch"], r["epochs run"]
        table.append(out)
    return pd.DataFrame(table).set_index("experiment").fillna("")


def spread_markdown(runs: Mapping[str, Run], reference: str = "baseline") -> str:
    """`spread_table` as markdown (the docs' table): one row per experiment, mean ± std over its seeds."""
    df = spread_table(runs, reference)
    if df.empty:
        return ""
    cols = list(df.columns)
    lines = ["| experiment | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + " | ".join([str(i)] + [str(v) for v in row]) + " |" for i, row in zip(df.index, df.values)]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- tables
def class_iou_delta(runs: Mapping[str, Run], reference: str = "baseline") -> Any:
    """Per-class IoU, one column per run, plus '<run> - <reference>' columns (the classes a change helped)."""
    df = iou_frame(runs).T
    for name in runs:
        if name != reference and reference in runs:
            df[f"{name} - {reference}"] = df[name] - df[reference]
    return df


def loss_gap_table(runs: Mapping[str, Run]) -> Any:
    """Train loss and unweighted validation cross-entropy at each run's best epoch and their gap: over-fitting shows
    as a growing gap, which regularisation (dropout, augmentation) should shrink. (For a run trained with class
    weights the train loss is weighted, so its gap is not a pure over-fitting measure.)"""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        h = next((h for h in r.history if h["epoch"] == r.best_epoch), r.history[-1])
        val = h.get("val_ce") if h.get("val_ce") is not None else h["val_loss"]  # unweighted: comparable runs
        rows.append({"run": name, "epoch": h["epoch"], "train loss": h["train_loss"], "val CE": val,
                     "gap (val CE - train)": val - h["train_loss"]})
    return pd.DataFrame(rows).set_index("run")


def transfer_table(runs: Mapping[str, Run], reference: str = "baseline") -> Any:
    """One row per run: model, how its encoder started (`models.resnet.encoder_init`), the encoder's learning
    rate (empty for models without an encoder) and `lr` (the decoder's, or every parameter's), frozen epochs,
    parameters, epochs run, mIoU and the mIoU difference to `reference` (the mean over its seeds) (a DataFrame).
    Runs need their model."""
    import pandas as pd

    rows = []
    for name, r in runs.items():
        c, init = r.config, encoder_init(r.config)
        enc_lr = c.encoder_lr if c.encoder_lr is not None else c.lr
        rows.append({"run": name, "model": c.model, "encoder init": init,
                     "encoder lr": None if init.startswith("random (no") else enc_lr, "lr": c.lr,
                     "frozen epochs": c.freeze_encoder_epochs,
                     "parameters": sum(p.numel() for p in r.model.parameters()),
                     "epochs run": r.epochs_run, "mIoU": r.metrics["miou"]})
    df = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
    ref = [r.metrics["miou"] for r in runs.values() if r.name == reference]  # every seed of it: their mean
    if ref and rows:
        df[f"mIoU vs {reference}"] = df["mIoU"] - sum(ref) / len(ref)
    return df


# ---------------------------------------------------------------------------------------------------- docs
def _markdown(df: Any, digits: int = 4) -> str:
    """A small DataFrame as a markdown table (index first), floats at `digits` decimals, NaN as an empty cell."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    cols = [df.index.name or "", *df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in (i, *row)) + " |" for i, row in zip(df.index, df.values)]
    return "\n".join(lines)


def seeds_line(runs: Mapping[str, Run], metric: str = "mIoU") -> str:
    """'baseline: 0.1012, 0.1043, 0.0987 (seeds 0, 1, 2)' for every experiment run with several seeds."""
    parts = []
    for name, keys in seed_groups(runs).items():
        if len(keys) > 1:
            values = ", ".join(f"{row[metric]:.4f}" for row in results_rows({k: runs[k] for k in keys}))
            seeds = ", ".join(str(runs[k].config.seed) for k in keys)
            parts.append(f"{name}: {values} (seeds {seeds})")
    return "; ".join(parts)


def same_budget(runs: Mapping[str, Run], budget: Mapping[str, Any]) -> tuple[dict[str, Run], dict[str, Run]]:
    """`runs` split into (those whose config has every `budget` value, e.g. {"epochs": 8, "image_size": 96}, the
    others): a comparison table holds runs of one budget only."""
    def fits(r: Run) -> bool:
        return all(getattr(r.config, k) == v for k, v in budget.items())

    return {k: r for k, r in runs.items() if fits(r)}, {k: r for k, r in runs.items() if not fits(r)}


def results_markdown_doc(runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                         figures: Sequence[str | Path] = (), expected: Iterable[str] | None = None,
                         budget: Mapping[str, Any] | None = None) -> str:
    """A docs/results/<dataset>.md section: a header naming the command that made it; the results table of every
    finished run on `dataset` (at `budget`, when given: the others are only named) with seeds folded into mean ±
    std (`spread_markdown`), each seed's mIoU; the `expected` runs (default: every course experiment,
    config.expected_runs) still missing; the report's numbers beside ours with why they are not comparable."""
    found, other = same_budget(list_runs(runs_dir, dataset=dataset or None, verbose=False), budget or {})
    missing = expected_missing(found, expected_runs() if expected is None else expected)
    seeds = seeds_line(found)
    lines = [f"## {dataset or 'all datasets'}", "",
             f"Written by `notebooks/08_results_comparison.ipynb` on {date.today().isoformat()}"
             f"{f' (profile {profile}, dataset {dataset})' if profile or dataset else ''}, made with:", "",
             "```bash", command, "```", "",
             "Validation split, metrics of each run's reported epoch (the best by validation mIoU, or the last for a "
             "recipe that keeps it), from one confusion matrix over the whole split with void (255) ignored. "
             "val CE is the validation cross-entropy without class weights, so weighted and unweighted runs compare. "
             "An experiment trained with several random seeds shows mean ± standard deviation over them; "
             f"'mIoU vs baseline' calls a difference within {NOISE_SIGMAS:g} standard deviations of the seed spread "
             "'within seed noise'.", "",
             spread_markdown(found), ""]
    if seeds:
        lines += [f"mIoU of each seed: {seeds}.", ""]
    if missing:
        lines += [f"Expected runs not found on {dataset or 'any dataset'}: " + ", ".join(missing) + ".", ""]
    if other:
        lines += ["Not in the table (another budget: " + ", ".join(f"{k}={v}" for k, v in (budget or {}).items())
                  + " here): " + ", ".join(other) + ".", ""]
    lines += ["The report's test numbers beside ours (mean over seeds where there are several):", "",
              _markdown(beside_the_report(found)), "", report_caveats(dataset), ""]
    if figures:
        lines += ["Figures: " + ", ".join(f"[{Path(f).name}]({f})" for f in figures) + ".", ""]
    return "\n".join(lines)


def write_results_doc(path: str | Path, runs_dir: str | Path, command: str, profile: str = "", dataset: str = "",
                      figures: Sequence[str | Path] = (), expected: Iterable[str] | None = None,
                      budget: Mapping[str, Any] | None = None) -> Path:
    """Write `results_markdown_doc` to `path` (docs/results/<dataset>.md), figure links relative to its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    links = [Path(os.path.relpath(Path(f).resolve(), path.parent.resolve())).as_posix() for f in figures]
    path.write_text(results_markdown_doc(runs_dir, command, profile, dataset, links, expected, budget))
    return path


def run_facts(run: Run) -> str:
    """Why the run stopped, the box's epoch time and the last learning rate: whether the schedule completed, and on
    what machine speed the figures came from."""
    hist = run.history
    plain = [h["seconds"] for h in hist if h.get("val_miou") is None] or [h["seconds"] for h in hist]
    lr = hist[-1].get("lr") if hist else None
    floor = f"; last epoch's learning rate {lr:.2g} (eta_min {run.config.eta_min:.2g})" if lr is not None else ""
    return (f"Stop: {run.stop_words}. Epoch time on this box: median "
            f"{float(np.median(plain)):.1f} s over the epochs without validation{floor}.")


def run_section(run_dir: str | Path, title: str, intro: str = "") -> str:
    """A docs/results/ section for ONE run (a recipe with its own budget): the command that reproduces it, its
    diff from the baseline config, wall clock, the results row and the per-class IoU of the epoch it kept."""
    run = load_run(run_dir, weights=False)
    cfg, m = run.config, run.metrics
    diff = ", ".join(f"{k}={b!r}" for k, (_, b) in cfg.diff().items() if k not in ("name",))
    wall = run.fit_seconds
    lines = [f"## {title}", "", *([intro, ""] if intro else []), "```bash",
             f"python -m starter_code train --experiment {cfg.name} --dataset {cfg.dataset} "
             f"--data-root {cfg.data_root} --out {run.run_dir.as_posix()}", "```", "",
             f"Config (diff from BASELINE): {diff}.", "",
             *([f"Wall clock of `fit` (data caching, class statistics, {run.epochs_run} epochs, validated "
                f"{'every epoch' if cfg.val_every == 1 else f'every {cfg.val_every} and the last'}, checkpoints): "
                f"**{wall / 60:.1f} min**.", ""] if wall else []),
             run_facts(run), "",
             results_markdown([run]), "",
             (f"The table is the last epoch ({m.get('epoch', '?')}; keep='last': the schedule ends annealed, so "
              "nothing is picked on val)." if cfg.keep == "last" else
              f"The table is the best epoch by val mIoU (epoch {m.get('epoch', '?')}); the last epoch, chosen by "
              f"nothing, scored val mIoU {run.history[-1]['val_miou']:.4f}."), "",
             f"Per-class IoU of the {cfg.keep} epoch (validation split):", "",
             "| " + " | ".join(m["iou"]) + " |", "|" + "---|" * len(m["iou"]),
             "| " + " | ".join("n/a" if v is None or v != v else f"{v:.3f}" for v in m["iou"].values())
             + " |", ""]
    return "\n".join(lines)


def assemble_results(docs_dir: str | Path) -> Path:
    """docs/RESULTS.md = every per-dataset section in docs/results/*.md (each written by notebook 08)."""
    docs_dir = Path(docs_dir)
    # sections link figures relative to docs/results/; RESULTS.md sits one folder up
    parts = [p.read_text().strip().replace("](../../", "](../") for p in sorted((docs_dir / "results").glob("*.md"))]
    out = docs_dir / "RESULTS.md"
    out.write_text("# Results\n\nGenerated from docs/results/*.md: one section per dataset by "
                   "`notebooks/08_results_comparison.ipynb` (same epochs and budget for every row of a table), and "
                   "one per recipe run by `python -m starter_code report --section` (its own budget). "
                   "An experiment trained with several random seeds is one row, mean ± standard deviation over "
                   "them; each dataset section ends with the report's own numbers beside ours and why they are "
                   "not comparable. Do not edit by hand.\n\n"
                   + "\n\n".join(parts) + "\n")
    return out
