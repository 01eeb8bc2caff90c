"""The GPU check, for the day a CUDA GPU is at hand: everything the Colab course path runs on the GPU, in one
command, in under 10 minutes on one GPU (a Colab T4):

1. the AMP training step (fp16 autocast + GradScaler, what `fit` runs on CUDA) of every registered model at the
   Colab profile's 224 px crops and batch 16: images/s, achieved TFLOP/s, peak memory, a finite loss;
2. one epoch of the VOC-scale set (benchmarks.voc_scale; or a real VOC root) through `fit` with the Colab
   profile's in-memory cache and the kit's loader workers: cache fill and epoch seconds;
3. notebook 01 in the Colab profile on that set for two epochs (papermill), in a scratch workspace under DIR.

It writes DIR/gpu_check.json and a one-page DIR/gpu_check.md.

    python -m benchmarks gpu-check --out DIR [--data-root VOC_ROOT]
    python -m benchmarks gpu-check --tiny --out DIR     # on the CPU: the same steps at toy size (the test runs it)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .common import REPO, RESULTS, build, machine_info

BUDGET_S = 600  # the whole check on one GPU
NOTEBOOK = "01_baseline_fcn.ipynb"
NUM_CLASSES = 21
SIZES: dict[str, dict[str, int]] = {
    # image_size/batch_size: the Colab profile; steps: timed AMP steps per model after `warmup`
    "gpu": {"image_size": 224, "batch_size": 16, "steps": 10, "warmup": 3, "epochs": 2, "workers": -1},
    # --tiny: one step, toy crops, one epoch; one loader worker so the forked-worker path still runs
    "tiny": {"image_size": 64, "batch_size": 4, "steps": 1, "warmup": 0, "epochs": 1, "workers": 1},
}
NO_GPU = ("gpu-check needs a CUDA GPU and torch.cuda.is_available() is False here: run it on a GPU machine "
          "(e.g. a Colab GPU runtime), or add --tiny for the CPU smoke version")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def gpu_info(device: torch.device) -> dict[str, Any]:
    """The GPU's name, compute capability, memory and CUDA version (None on the CPU)."""
    if device.type != "cuda":
        return {"name": None}
    p = torch.cuda.get_device_properties(device)
    return {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gb": round(p.total_memory / 1e9, 1),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def time_train_step(name: str, device: torch.device, batch: tuple[torch.Tensor, torch.Tensor], steps: int,
                    warmup: int) -> dict[str, Any]:
    """One registered model's training step as `fit` runs it (engine.train_one_epoch with the baseline's optimizer,
    loss and channels_last; AMP + GradScaler on CUDA) on one batch: `warmup` untimed steps, then `steps` timed."""
    from starter_code.config import BASELINE as cfg
    from starter_code.engine import amp_enabled, build_criterion, build_optimizer, train_one_epoch
    from starter_code.models import count_parameters
    from starter_code.models.cost import meta_model, train_step_flops

    torch.manual_seed(0)
    _reset_peak(device)
    model = build(name, NUM_CLASSES).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg, device)
    criterion = build_criterion(cfg, None, device)
    scaler = torch.amp.GradScaler(device.type) if amp_enabled(cfg, device) else None
    images, masks = batch[0].to(device), batch[1].to(device)
    if warmup:
        train_one_epoch(model, [(images, masks)] * warmup, criterion, optimizer, device, 0, scaler,
                        channels_last=cfg.channels_last, progress=False)
    _sync(device)
    t = time.perf_counter()
    loss = train_one_epoch(model, [(images, masks)] * steps, criterion, optimizer, device, 0, scaler,
                           channels_last=cfg.channels_last, progress=False)
    _sync(device)
    sec = time.perf_counter() - t
    n = images.shape[0] * steps
    flops = train_step_flops(meta_model(name), images.shape[-1]) * n
    return {"ok": True, "amp": scaler is not None, "loss": loss, "parameters": count_parameters(model),
            "step_ms": 1000 * sec / steps, "images_per_s": n / sec, "achieved_tflops": flops / sec / 1e12,
            "peak_memory_gb": _peak_gb(device)}


def amp_train_steps(device: torch.device, image_size: int, batch_size: int, steps: int, warmup: int
                    ) -> list[dict[str, Any]]:
    """`time_train_step` for every registered model on one random batch (images, masks with a void band). A model
    that fails is reported with its error in one line; the others still run."""
    from starter_code.models import MODELS

    from .train_step import make_batch

    batch = make_batch(NUM_CLASSES, image_size, batch_size)
    rows = []
    for name in MODELS:
        try:
            rows.append({"model": name, **time_train_step(name, device, batch, steps, warmup)})
        except Exception as e:  # one failing model must not hide the others
            rows.append({"model": name, "ok": False, "error": f"{type(e).__name__}: {e}".splitlines()[0]})
    _reset_peak(device)
    return rows


def voc_epoch(root: Path, out: Path, device: torch.device, image_size: int, batch_size: int, workers: int,
              progress: bool) -> dict[str, Any]:
    """One epoch of `fit` on the VOC-format set at root in the Colab profile (cache on; `workers` loader workers,
    -1 = the kit's choice): the cache fill (timed apart, as `fit` does it before the first epoch) and the epoch."""
    from starter_code.config import make_config
    from starter_code.data import build_datasets
    from starter_code.engine import default_workers, fit

    from .voc_scale import colab_config

    base = colab_config(root, "none", image_size, batch_size, device.type)
    cfg = make_config("baseline", env={"dataset": "voc", "data_root": str(root), "cache": base.cache,
                                       "device": device.type, "workers": workers},
                      budget={"image_size": base.image_size, "batch_size": base.batch_size, "epochs": 1})
    train, val = build_datasets(cfg)
    t = time.perf_counter()
    train.fill_cache(progress)
    val.fill_cache(progress)
    fill_s = time.perf_counter() - t
    _reset_peak(device)
    t = time.perf_counter()
    run = fit(cfg, out / "voc_epoch" / "run", progress=progress, datasets=(train, val))
    fit_s = time.perf_counter() - t
    h = run.history[0]
    return {"data_root": str(root), "train_images": len(train), "val_images": len(val),
            "image_size": cfg.image_size, "batch_size": cfg.batch_size,
            "workers": workers if workers >= 0 else default_workers(device), "cache_fill_s": fill_s,
            "epoch_s": h["seconds"], "fit_s": fit_s, "train_loss": h["train_loss"], "val_miou": h["val_miou"],
            "peak_memory_gb": _peak_gb(device)}


def scratch_workspace(out: Path) -> Path:
    """A workspace folder for the notebook: notebooks/ with a copy of notebook 01, pyproject.toml and a link to the
    kit's package, so the kit takes it for the repository and the notebook's runs/ and figures/ land in it (never in
    the repository's own runs/); runs/ and figures/ of an earlier check are removed."""
    ws = out / "workspace"
    for old in ("runs", "figures"):  # a finished run left by an earlier check would be reused, not retrained
        shutil.rmtree(ws / old, ignore_errors=True)
    (ws / "notebooks").mkdir(parents=True, exist_ok=True)
    (ws / "pyproject.toml").write_text("# scratch workspace of `python -m benchmarks gpu-check`\n")
    link = ws / "starter_code"
    if not link.exists():
        link.symlink_to(REPO / "starter_code", target_is_directory=True)
    shutil.copyfile(REPO / "notebooks" / NOTEBOOK, ws / "notebooks" / NOTEBOOK)
    return ws


def notebook_01(root: Path, out: Path, epochs: int, tiny: bool, sizes: dict[str, int]) -> dict[str, Any]:
    """Notebook 01 executed by papermill in the Colab profile on the set at root (dataset "voc", `epochs` epochs;
    --tiny: toy crops and batch), in a scratch workspace under out; its run read back from there."""
    from starter_code.runs import load_run
    from starter_code.workspace import execute_notebooks

    ws = scratch_workspace(out)
    params: dict[str, Any] = {"profile": "colab", "dataset": "voc", "data_root": str(root), "epochs": epochs}
    if tiny:
        params.update(image_size=sizes["image_size"], batch_size=sizes["batch_size"])
    res = execute_notebooks([ws / "notebooks" / NOTEBOOK], out / "notebooks", params,
                            timeout=300 if tiny else BUDGET_S)[0]
    run_dir = ws / "runs" / "baseline-voc"
    run = load_run(run_dir, weights=False)
    return {"parameters": params, "seconds": res["seconds"], "executed": str(out / "notebooks" / NOTEBOOK),
            "run_dir": str(run_dir), "epochs_run": len(run.history),
            "epoch_seconds": [h["seconds"] for h in run.history], "val_miou": [h["val_miou"] for h in run.history],
            "figures": sorted(p.name for p in (ws / "figures").glob("*.png"))}


def gpu_check(out: str | Path, tiny: bool = False, data_root: str | Path | None = None,
              masks: str | Path | None = None) -> dict[str, Any]:
    """Run the three checks on the CUDA GPU (or with `tiny`, on the CPU at toy size) and write out/gpu_check.json
    and out/gpu_check.md. Without CUDA and without `tiny` it stops at once (SystemExit with one line)."""
    from .voc_scale import MASKS, default_root, make_voc_scale, read_marker

    if not tiny and not torch.cuda.is_available():
        raise SystemExit(NO_GPU)
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if not tiny else "cpu")
    sizes = SIZES["tiny" if tiny else "gpu"]
    if data_root is None:
        root = make_voc_scale(out / "data" if tiny else default_root(False), masks or MASKS, tiny, progress=not tiny)
    else:
        root = Path(data_root)
    data_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "benchmark": "gpu-check", "mode": "tiny (CPU)" if tiny else "gpu", "date": datetime.now(timezone.utc)
        .isoformat(timespec="seconds"), "device": str(device), "gpu": gpu_info(device), "sizes": sizes,
        "data": {"root": str(root), "set": read_marker(root), "prepare_s": data_s}}
    print(f"gpu-check ({result['mode']}): {result['gpu']['name'] or 'CPU'}, data {root}", flush=True)
    t = time.perf_counter()
    result["train_steps"] = amp_train_steps(device, sizes["image_size"], sizes["batch_size"], sizes["steps"],
                                            sizes["warmup"])
    result["train_steps_s"] = time.perf_counter() - t
    print(f"  AMP train step, {len(result['train_steps'])} models: {result['train_steps_s']:.0f} s", flush=True)
    result["voc_epoch"] = voc_epoch(root, out, device, sizes["image_size"], sizes["batch_size"], sizes["workers"],
                                    progress=not tiny)
    print(f"  one VOC-scale epoch: {result['voc_epoch']['epoch_s']:.0f} s (+ cache fill "
          f"{result['voc_epoch']['cache_fill_s']:.0f} s)", flush=True)
    result["notebook"] = notebook_01(root, out, sizes["epochs"], tiny, sizes)
    print(f"  notebook 01, {result['notebook']['epochs_run']} epochs: {result['notebook']['seconds']:.0f} s",
          flush=True)
    result["seconds"] = time.perf_counter() - t0
    result["estimate"] = _t4_estimate()
    result["ok"] = verdict(result, tiny)
    result["machine"] = machine_info()
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(summary_markdown(result))
    return result


def _t4_estimate() -> dict[str, Any] | None:
    """The README's T4 table (benchmarks/results/voc_scale.json's measured CPU side + FLOP estimates), if measured:
    the baseline row, to put beside what this GPU did."""
    from .voc_scale import t4_table

    path = RESULTS / "voc_scale.json"
    if not path.is_file():
        return None
    rows = t4_table(json.loads(path.read_text()))["rows"]
    base = next((r for r in rows if r["model"] == "baseline" and r["preset"] == "none"), None)
    return None if base is None else {"source": str(path.relative_to(REPO)), "baseline_epoch_s": base["epoch_s"],
                                      "baseline_gpu_epoch_s": base["gpu_epoch_s"]}


def verdict(r: dict[str, Any], tiny: bool) -> dict[str, bool]:
    """What passed: every model's step (finite loss), the epoch, the notebook's epochs, and (on a GPU) the budget."""
    import math

    ok = {"train_steps": all(s["ok"] and math.isfinite(s["loss"]) for s in r["train_steps"]),
          "voc_epoch": math.isfinite(r["voc_epoch"]["train_loss"]),
          "notebook": r["notebook"]["epochs_run"] == r["sizes"]["epochs"]}
    if not tiny:
        ok["under_budget"] = r["seconds"] < BUDGET_S
    ok["all"] = all(ok.values())
    return ok


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def summary_markdown(r: dict[str, Any]) -> str:
    """The one-page summary of a gpu_check result."""
    from .gpu_estimate import T4_FP16_TFLOPS

    ok, s, e, nb = r["ok"], r["sizes"], r["voc_epoch"], r["notebook"]
    failed = [k for k, v in ok.items() if k != "all" and not v]
    lines = [f"# GPU check: {r['gpu']['name'] or 'CPU (--tiny)'}, {r['date']}", "",
             f"**{'PASS' if ok['all'] else 'FAIL: ' + ', '.join(failed)}** in {r['seconds']:.0f} s"
             + ("" if "under_budget" not in ok else f" (budget {BUDGET_S} s)") + f". Mode: {r['mode']}; torch "
             f"{r['machine']['torch']}, CUDA {r['gpu'].get('cuda') or '-'}; data `{r['data']['root']}`"
             f" (prepared in {r['data']['prepare_s']:.0f} s).", "",
             f"## AMP training step, every model ({s['image_size']}², batch {s['batch_size']}, {s['steps']} timed "
             f"steps after {s['warmup']})", "",
             f"| model | ok | AMP | ms / step | images/s | TFLOP/s achieved (% of the T4's {T4_FP16_TFLOPS:.0f}) "
             "| peak memory GB | loss |", "|---|---|---|---|---|---|---|---|"]
    for t in r["train_steps"]:
        if not t["ok"]:
            lines.append(f"| {t['model']} | **no**: {t['error']} | | | | | | |")
            continue
        pct = 100 * t["achieved_tflops"] / T4_FP16_TFLOPS
        lines.append(f"| {t['model']} | yes | {'yes' if t['amp'] else 'no'} | {t['step_ms']:.1f} | "
                     f"{t['images_per_s']:.0f} | {t['achieved_tflops']:.2f} ({pct:.0f} %) | "
                     f"{_f(t['peak_memory_gb'], '.2f')} | {t['loss']:.3f} |")
    lines += ["", f"## One VOC-scale epoch through `fit` (cache on, {e['workers']} loader worker(s))", "",
              f"{e['train_images']} train + {e['val_images']} val images: cache fill **{e['cache_fill_s']:.1f} s** "
              f"(once per session), epoch **{e['epoch_s']:.1f} s** (train + validation), train loss "
              f"{e['train_loss']:.3f}, val mIoU {e['val_miou']:.3f}, peak GPU memory {_f(e['peak_memory_gb'], '.2f')}"
              " GB."]
    if r.get("estimate"):
        est = r["estimate"]
        lo, hi = sorted(est["baseline_epoch_s"])
        lines.append(f"The README's T4 table (`{est['source']}`) estimates {lo:.0f}-{hi:.0f} s for this epoch.")
    lines += ["", f"## Notebook 01, Colab profile, {nb['parameters']['epochs']} epoch(s)", "",
              f"Executed in **{nb['seconds']:.0f} s** (kernel start, setup, cache fill, training, figures, the "
              f"evaluation cells): {nb['epochs_run']} epoch(s) of "
              + ", ".join(f"{x:.1f} s" for x in nb["epoch_seconds"]) + "; val mIoU "
              + " -> ".join(f"{x:.3f}" for x in nb["val_miou"]) + f". Figures: {', '.join(nb['figures']) or '-'}.",
              f"Executed copy: `{nb['executed']}`.", "",
              "## Machine", "",
              f"CPU {r['machine']['cpu_model']} ({r['machine']['cpu_count']} cores), load average "
              f"{', '.join(f'{x:.1f}' for x in r['machine']['loadavg'] or [])}; GPU {r['gpu']}.", ""]
    return "\n".join(lines)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `gpu-check` sub-command."""
    p = sub.add_parser("gpu-check", help="on one CUDA GPU: AMP step of every model, a VOC-scale epoch, notebook 01",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for gpu_check.json, gpu_check.md and the scratch files")
    p.add_argument("--tiny", action="store_true", help="CPU smoke version: toy sizes, 1 step, a tiny set")
    p.add_argument("--data-root", default=None, help="a VOC root to use instead of the generated VOC-scale set")
    p.add_argument("--masks", default=None, help="the genuine masks for the generated set (voc2012-masks folder)")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the check and print where the summary went; --tiny keeps its JSON out of benchmarks/results/."""
    r = gpu_check(args.out, args.tiny, args.data_root, args.masks)
    if args.tiny and Path(args.json) == RESULTS / "gpu_check.json":
        args.json = str(Path(args.out) / "gpu_check.json")
    print(f"{'PASS' if r['ok']['all'] else 'FAIL'}: {Path(args.out) / 'gpu_check.md'}")
    return r
