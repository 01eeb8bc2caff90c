"""Benchmarks (issue #7): train step, data loader, evaluation, end-to-end epoch, synthetic generation, GPU estimate.

Every timing here is a RATIO measured side by side in one process: other jobs may share the cores, so absolute
seconds are noisy, but two paths timed interleaved (round-robin, order alternated each round, median of the
rounds) see the same machine. Each result records the machine (torch version, threads, CPU model, load average).

    python -m starter_code bench train-step --model baseline --image-size 224 --batch-size 8 --steps 3
    python -m starter_code bench loader --dataset camvid --image-size 128
    python -m starter_code bench eval | epoch | synthetic | gpu-estimate

The scripts in benchmarks/ call these functions and save JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import BASELINE, EXPERIMENTS, Config

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMVID_ROOT = SHARED_DATA / "camvid"
SYNTHETIC_ROOT = Path("build/bench/synthetic")  # the benchmarks' own copy of the default 600/200 @ 128 set

# ------------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags that matter for fp32/bf16 speed (avx2, fma, avx512f, avx512_bf16, amx_bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]


def machine_info() -> dict[str, Any]:
    """torch version, threads, cores, CPU model and flags, and the load average now (how busy the box is)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    return {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(), "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "cuda": torch.cuda.is_available(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (None: leave as is)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 n x n matmul rate (GFLOP/s, median of `repeats`) with the current threads: the machine's roofline."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / median(times) / 1e9


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs that torch.utils.flop_counter counts while running fn (convolutions, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each fn, called round-robin `rounds` times; the order is reversed every other round."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    return times


def save_json(obj: Any, path: str | Path | None) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------------------- train step


def _batch(num_classes: int, image_size: int, batch_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    masks = torch.randint(0, num_classes, (batch_size, image_size, image_size), generator=g)
    masks[:, :4] = 255  # a void band, as real masks have
    return images, masks


def _build(name: str, num_classes: int, state: dict[str, torch.Tensor] | None, **kwargs: Any) -> nn.Module:
    from .models import build_model

    if name.startswith("resnet34"):
        kwargs.setdefault("pretrained", False)  # the speed does not depend on the weights; nothing downloaded
    model = build_model(name, num_classes=num_classes, **kwargs)
    if state is not None:
        model.load_state_dict(state)
    return model


def default_train_step(cfg: Config, num_classes: int, batch: tuple[torch.Tensor, torch.Tensor], steps: int,
                       state: dict[str, torch.Tensor] | None = None) -> Callable[[], None]:
    """`steps` training steps exactly as `fit` runs them: build_model, channels_last per cfg, Adam on
    param_groups, the cfg's criterion (CE ignoring 255), torch.compile per cfg, engine.train_one_epoch."""
    from .engine import build_criterion, param_groups, train_one_epoch

    device = torch.device("cpu")
    model = _build(cfg.model, num_classes, state, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = build_criterion(cfg, None, device)
    step_model = torch.compile(model) if cfg.compile else model
    batches = [batch] * steps

    def run() -> None:
        train_one_epoch(step_model, batches, criterion, optimizer, device, 0, None,
                        channels_last=cfg.channels_last, progress=False)

    return run


def reference_train_step(model_name: str, num_classes: int, batch: tuple[torch.Tensor, torch.Tensor], steps: int,
                         state: dict[str, torch.Tensor] | None = None, lr: float = 1e-3) -> Callable[[], None]:
    """The plain loop: eager fp32, NCHW, no compile, torch's default Adam on all parameters, plain CE."""
    model = _build(model_name, num_classes, state)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    images, masks = batch

    def run() -> None:
        model.train()
        for _ in range(steps):
            loss = criterion(model(images), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss.item()

    return run


def _with_threads(fn: Callable[[], None], n: int) -> Callable[[], None]:
    def run() -> None:
        with num_threads(n):
            fn()

    return run


def bench_train_step(model: str = "baseline", image_size: int = 224, batch_size: int = 8, steps: int = 3,
                     rounds: int = 5, num_classes: int = 21, threads: int | None = None,
                     variants: dict[str, dict[str, Any]] | None = None, cfg: Config | None = None,
                     reference: bool = True, matmul_size: int = 2048) -> dict[str, Any]:
    """images/s of the default training path (fit's step) against the plain reference loop, timed interleaved.

    `variants` adds more paths ({name: Config overrides}, e.g. {"compile": {"compile": True}}; the extra key
    "threads" runs that path with so many torch threads), all timed in the same rounds. Each round runs `steps`
    steps of every path; the first call of each path is timed apart as `first_call_s` (for torch.compile: the
    compile time). FLOPs are fwd+bwd of one step (FlopCounterMode).
    """
    from .models import count_parameters

    cfg = cfg or BASELINE
    cfg = replace(cfg, model=model, image_size=image_size, batch_size=batch_size, device="cpu")
    with num_threads(threads):
        info = machine_info()
        mm_before = matmul_gflops(matmul_size)
        batch = _batch(num_classes, image_size, batch_size)
        torch.manual_seed(0)
        init = _build(model, num_classes, None, **cfg.model_kwargs)
        state = copy.deepcopy(init.state_dict())
        crit = nn.CrossEntropyLoss(ignore_index=255)
        flops = count_flops(lambda: crit(init(batch[0]), batch[1]).backward())
        paths: dict[str, Callable[[], None]] = {"default": default_train_step(cfg, num_classes, batch, steps, state)}
        for name, over in (variants or {}).items():
            fields = {k: v for k, v in over.items() if k != "threads"}
            fn = default_train_step(replace(cfg, **fields), num_classes, batch, steps, state)
            paths[name] = _with_threads(fn, over["threads"]) if "threads" in over else fn
        if reference:
            paths["reference"] = reference_train_step(model, num_classes, batch, steps, state, cfg.lr)
        first = {}
        for name, fn in paths.items():
            t = time.perf_counter()
            fn()
            first[name] = time.perf_counter() - t
        times = interleaved(paths, rounds)
        mm_after = matmul_gflops(matmul_size)
    per_step = {k: median(v) / steps for k, v in times.items()}
    out: dict[str, Any] = {
        "benchmark": "train-step", "model": model, "image_size": image_size, "batch_size": batch_size,
        "steps_per_round": steps, "rounds": rounds, "parameters": count_parameters(init),
        "config": {"channels_last": cfg.channels_last, "compile": cfg.compile, "optimizer": "Adam",
                   "loss": "CrossEntropyLoss(ignore_index=255)"},
        "flops_per_step": flops, "gflop_per_image_fwd_bwd": flops / batch_size / 1e9,
        "seconds_per_step": per_step["default"], "images_per_s": batch_size / per_step["default"],
        "gflops_per_s": flops / per_step["default"] / 1e9,
        "matmul_gflops_per_s": (mm_before + mm_after) / 2, "matmul_size": matmul_size,
        "matmul_gflops_per_s_before_after": [mm_before, mm_after],
        "first_call_s": {k: v / steps for k, v in first.items()},  # per step, incl. warm-up / compile
        "round_seconds": times, "machine": info,
    }
    out["matmul_fraction"] = out["gflops_per_s"] / out["matmul_gflops_per_s"]

    def paired(a: str, b: str) -> dict[str, float]:
        """Per-round ratio time(a) / time(b) (the two ran back to back): median and quartiles."""
        rs = [x / y for x, y in zip(times[a], times[b])]
        q = statistics.quantiles(rs, n=4) if len(rs) > 1 else [rs[0]] * 3
        return {"median": median(rs), "q1": q[0], "q3": q[2]}

    if reference:
        out["reference_seconds_per_step"] = per_step["reference"]
        out["reference_images_per_s"] = batch_size / per_step["reference"]
        out["ratio"] = paired("reference", "default")["median"]  # median of the per-round ratios
        out["ratio_paired"] = paired("reference", "default")
        out["ratio_of_medians"] = per_step["reference"] / per_step["default"]
    out["variants"] = {}
    for name, over in (variants or {}).items():
        v = {"overrides": over, "seconds_per_step": per_step[name], "images_per_s": batch_size / per_step[name],
             "vs_default": paired("default", name)["median"], "vs_default_paired": paired("default", name)}
        if reference:
            v["vs_reference"] = paired("reference", name)["median"]
        if over.get("compile"):
            same_cl = {**cfg.to_dict(), **over}["channels_last"]  # eager path with the same layout and threads
            eager = {k: per_step[k] for k, o in [("default", {}), *(variants or {}).items()]
                     if not {**cfg.to_dict(), **o}["compile"] and {**cfg.to_dict(), **o}["channels_last"] == same_cl
                     and o.get("threads") == over.get("threads")}
            base = next(iter(eager.values()), None)
            if base is not None:
                overhead = first[name] - first.get("default", base * steps)
                gain = base - per_step[name]
                v["compile_seconds"] = overhead
                v["break_even_steps"] = overhead / gain if gain > 0 else None
        out["variants"][name] = v
    return out


# ------------------------------------------------------------------------------------------------- loader


def _dataset_root(dataset: str, data_root: str | Path | None) -> Path:
    if data_root is not None:
        return Path(data_root)
    return CAMVID_ROOT if dataset == "camvid" else SYNTHETIC_ROOT


def ensure_synthetic(root: str | Path, n_train: int = 600, n_val: int = 200, size: int = 128) -> float:
    """Make sure the synthetic set exists under root; return the seconds it took (0 when it was already there)."""
    from .data.synthetic import generate_synthetic_voc

    t = time.perf_counter()
    generate_synthetic_voc(root, n_train=n_train, n_val=n_val, size=size, seed=0, progress=False)
    return time.perf_counter() - t


def _iterate(loader: Any, max_batches: int | None) -> tuple[int, float]:
    t, n = time.perf_counter(), 0
    for i, (images, _) in enumerate(loader):
        n += images.shape[0]
        if max_batches is not None and i + 1 >= max_batches:
            break
    return n, time.perf_counter() - t


def bench_loader(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
                 batch_size: int = 16, workers: Sequence[int] = (0, 1, 2), cache: Sequence[bool] = (False, True),
                 augment: str = "none", max_batches: int | None = None, repeats: int = 2) -> dict[str, Any]:
    """Training-loader images/s (decode + augment + collate) for each workers x cache setting.

    `cold` is a first pass through a fresh dataset (what every epoch sees when the cache is off); with the cache
    on, `prefilled` is what each epoch of `fit` sees: the cache filled once in this process (`fill_cache`), then a
    fresh per-epoch loader whose forked workers inherit it; `warm` is a second pass over one persistent loader.
    """
    from torch.utils.data import DataLoader

    from .data import build_dataset
    from .engine import make_loader

    root = _dataset_root(dataset, data_root)
    if dataset == "synthetic":
        ensure_synthetic(root)
    info = machine_info()
    rows = []
    for _ in range(repeats):
        for w in workers:
            for c in cache:
                ds = build_dataset(dataset, root, "train", augment, image_size, cache=c)
                cold_loader = make_loader(ds, batch_size, True, torch.device("cpu"), w)
                n, sec = _iterate(cold_loader, max_batches)
                del cold_loader
                row = {"workers": w, "cache": c, "images": n, "cold_images_per_s": n / sec}
                if c:
                    ds = build_dataset(dataset, root, "train", augment, image_size, cache=True)
                    ds.fill_cache(progress=False)
                    n1, sec1 = _iterate(make_loader(ds, batch_size, True, torch.device("cpu"), w), max_batches)
                    row["prefilled_images_per_s"] = n1 / sec1
                    ds = build_dataset(dataset, root, "train", augment, image_size, cache=True)
                    dl = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=w,
                                    persistent_workers=w > 0, prefetch_factor=4 if w else None)
                    _iterate(dl, max_batches)
                    n2, sec2 = _iterate(dl, max_batches)
                    row["warm_images_per_s"] = n2 / sec2
                    del dl
                rows.append(row)
    summary: dict[str, dict[str, float]] = {}
    for r in rows:
        key = f"workers={r['workers']},cache={r['cache']}"
        s = summary.setdefault(key, {"workers": r["workers"], "cache": r["cache"], "cold": [], "prefilled": [],
                                     "warm": []})
        for k in ("cold", "prefilled", "warm"):
            if f"{k}_images_per_s" in r:
                s[k].append(r[f"{k}_images_per_s"])
    for s in summary.values():
        for k in ("cold", "prefilled", "warm"):
            vals = s.pop(k)
            if vals:
                s[f"{k}_images_per_s"] = median(vals)
    return {"benchmark": "loader", "dataset": dataset, "data_root": str(root), "image_size": image_size,
            "batch_size": batch_size, "augment": augment, "repeats": repeats, "summary": summary, "runs": rows,
            "machine": info}


# --------------------------------------------------------------------------------------------- evaluation


def bench_eval(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
               batch_size: int = 16, model: str = "baseline", channels_last: bool | None = None,
               repeats: int = 3, limit: int | None = None) -> dict[str, Any]:
    """evaluate()'s images/s on the val split (workers 0, as fit on CPU) and the share spent in
    ConfusionMatrix.update (timed by wrapping it), and in the data loading (a pass without the model)."""
    from .data import build_dataset, eval_size
    from .engine import eval_batch_size, evaluate, make_loader
    from .metrics import ConfusionMatrix

    root = _dataset_root(dataset, data_root)
    if dataset == "synthetic":
        ensure_synthetic(root)
    cl = BASELINE.channels_last if channels_last is None else channels_last
    cfg = replace(BASELINE, image_size=image_size)
    ds = build_dataset(dataset, root, "val", "eval", eval_size(cfg), limit)
    torch.manual_seed(0)
    net = _build(model, ds.info.num_classes, None)
    if cl:
        net = net.to(memory_format=torch.channels_last)
    loader = make_loader(ds, eval_batch_size(ds, batch_size), False, torch.device("cpu"), 0)
    crit = nn.CrossEntropyLoss(ignore_index=255)
    spent = [0.0]
    original = ConfusionMatrix.update

    def timed_update(self: ConfusionMatrix, pred: torch.Tensor, target: torch.Tensor) -> None:
        t = time.perf_counter()
        original(self, pred, target)
        spent[0] += time.perf_counter() - t

    info = machine_info()
    totals, metric_s, load_s = [], [], []
    ConfusionMatrix.update = timed_update  # type: ignore[method-assign]
    try:
        evaluate(net, loader, ds.info.num_classes, torch.device("cpu"), crit, channels_last=cl, progress=False)
        for _ in range(repeats):
            spent[0] = 0.0
            t = time.perf_counter()
            evaluate(net, loader, ds.info.num_classes, torch.device("cpu"), crit, channels_last=cl, progress=False)
            totals.append(time.perf_counter() - t)
            metric_s.append(spent[0])
            load_s.append(_iterate(loader, None)[1])
    finally:
        ConfusionMatrix.update = original  # type: ignore[method-assign]
    total = median(totals)
    return {"benchmark": "eval", "dataset": dataset, "model": model, "image_size": image_size,
            "eval_batch_size": loader.batch_size, "images": len(ds), "channels_last": cl,
            "seconds": total, "images_per_s": len(ds) / total, "metrics_seconds": median(metric_s),
            "metrics_share": median(metric_s) / total, "loading_seconds": median(load_s),
            "loading_share": median(load_s) / total, "runs_seconds": totals, "machine": info}


# -------------------------------------------------------------------------------------------------- epoch


def bench_epoch(dataset: str = "synthetic", data_root: str | Path | None = None, image_size: int = 128,
                batch_size: int = 16, workers: Sequence[int] = (0, 1, 2), epochs: int = 1,
                overrides: dict[str, Any] | None = None, repeats: int = 1, threads: int | None = None
                ) -> dict[str, Any]:
    """End-to-end `fit` time (train + validation + checkpoints) of `epochs` epochs for each loader setting,
    with `threads` torch threads in the training process (None: torch's default)."""
    from .engine import fit

    root = _dataset_root(dataset, data_root)
    gen_s = ensure_synthetic(root) if dataset == "synthetic" else 0.0
    info = machine_info()
    rows = []
    for rep in range(repeats):
        for w in workers if rep % 2 == 0 else list(workers)[::-1]:
            cfg = replace(BASELINE, dataset=dataset, data_root=str(root), image_size=image_size,
                          batch_size=batch_size, epochs=epochs, device="cpu", workers=w, **(overrides or {}))
            with tempfile.TemporaryDirectory() as tmp, num_threads(threads):
                t = time.perf_counter()
                run = fit(cfg, Path(tmp) / "run", progress=False)
                total = time.perf_counter() - t
            rows.append({"workers": w, "seconds": total, "epoch_seconds": [h["seconds"] for h in run.history],
                         "val_miou": run.metrics["miou"]})
    summary = {}
    for w in workers:
        secs = [r["seconds"] for r in rows if r["workers"] == w]
        summary[f"workers={w}"] = {"workers": w, "seconds": median(secs), "runs": secs}
    return {"benchmark": "epoch", "dataset": dataset, "data_root": str(root), "image_size": image_size,
            "batch_size": batch_size, "epochs": epochs, "overrides": overrides or {},
            "threads": threads or torch.get_num_threads(),
            "channels_last": (overrides or {}).get("channels_last", BASELINE.channels_last),
            "generation_seconds_if_generated": gen_s, "summary": summary, "runs": rows, "machine": info}


def bench_synthetic(n_train: int = 600, n_val: int = 200, size: int = 128, repeats: int = 1) -> dict[str, Any]:
    """Wall time of generate_synthetic_voc (default 600/200 @ 128) into a fresh temp dir."""
    times = []
    info = machine_info()
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(ensure_synthetic(tmp, n_train, n_val, size))
    return {"benchmark": "synthetic", "n_train": n_train, "n_val": n_val, "size": size, "seconds": median(times),
            "runs_seconds": times, "images_per_s": (n_train + n_val) / median(times), "machine": info}


# -------------------------------------------------------------------------------------------- GPU estimate

T4_FP32_TFLOPS = 8.1
T4_FP16_TFLOPS = 65.0
VOC_TRAIN, VOC_VAL = 1464, 1449
VOC_EVAL_HW = (224, 298)  # VOC images are ~500x375: shorter side rescaled to 224 at evaluation

NOTEBOOK_MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("baseline / cosine / augment / weighted", "baseline", {}),
    ("dropout", "baseline_dropout", {}),
    ("resnet34_fcn", "resnet34_fcn", {"pretrained": False}),
    ("resnet34_unet", "resnet34_unet", {"pretrained": False}),
    ("unet (base 64)", "unet", {"base_width": 64}),
]


def model_flops(name: str, image_hw: tuple[int, int] = (224, 224), num_classes: int = 21, train: bool = True,
                **kwargs: Any) -> int:
    """FLOPs per image: forward + backward (train) or forward only, counted on the meta device (no compute)."""
    from .models import build_model

    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, **kwargs)
        x = torch.randn(1, 3, *image_hw)
        y = torch.randint(0, num_classes, (1, *image_hw))
    if train:
        model.train()
        return count_flops(lambda: nn.functional.cross_entropy(model(x), y, ignore_index=255).backward())
    model.eval()
    with torch.no_grad():
        return count_flops(lambda: model(x))


def gpu_estimate(utilisation: Sequence[float] = (0.30, 0.40), image_size: int = 224, epochs: int = 30
                 ) -> dict[str, Any]:
    """Paper estimate of a T4 epoch on VOC (1,464 train + 1,449 val) from FLOP counts at the Colab settings."""
    rows = []
    for label, name, kw in NOTEBOOK_MODELS:
        train = model_flops(name, (image_size, image_size), train=True, **kw)
        ev = model_flops(name, VOC_EVAL_HW, train=False, **kw)
        row = {"notebooks": label, "model": name, "kwargs": kw, "gflop_per_image_train": train / 1e9,
               "gflop_per_image_eval": ev / 1e9}
        work = VOC_TRAIN * train + VOC_VAL * ev
        for u in utilisation:
            row[f"amp_epoch_s_at_{int(u * 100)}pct"] = work / (T4_FP16_TFLOPS * 1e12 * u)
            row[f"fp32_epoch_s_at_{int(u * 100)}pct"] = work / (T4_FP32_TFLOPS * 1e12 * u)
        rows.append(row)
    return {"benchmark": "gpu-estimate", "gpu": "T4", "fp32_peak_tflops": T4_FP32_TFLOPS,
            "fp16_tensor_peak_tflops": T4_FP16_TFLOPS, "utilisation": list(utilisation), "image_size": image_size,
            "train_images": VOC_TRAIN, "val_images": VOC_VAL, "eval_hw": VOC_EVAL_HW, "epochs": epochs,
            "rows": rows, "machine": machine_info()}


def _s(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def gpu_estimate_markdown(est: dict[str, Any]) -> str:
    """The estimate as a markdown table (minutes per epoch and per `epochs`-epoch run)."""
    lo, hi = (int(u * 100) for u in (min(est["utilisation"]), max(est["utilisation"])))
    n = est["epochs"]
    lines = [f"| notebook(s) | model | GFLOP / train image (fwd+bwd, {est['image_size']}²) | GFLOP / val image "
             f"(fwd, {est['eval_hw'][0]}x{est['eval_hw'][1]}) | epoch, AMP at {hi}%-{lo}% | {n} epochs, AMP | "
             f"epoch, fp32 at {hi}%-{lo}% |",
             "|---|---|---|---|---|---|---|"]
    for r in est["rows"]:
        a_lo, a_hi = r[f"amp_epoch_s_at_{hi}pct"], r[f"amp_epoch_s_at_{lo}pct"]
        f_lo, f_hi = r[f"fp32_epoch_s_at_{hi}pct"], r[f"fp32_epoch_s_at_{lo}pct"]
        lines.append(f"| {r['notebooks']} | `{r['model']}` | {r['gflop_per_image_train']:.1f} | "
                     f"{r['gflop_per_image_eval']:.1f} | {_s(a_lo)}-{_s(a_hi)} s | "
                     f"{_s(a_lo * n / 60)}-{_s(a_hi * n / 60)} min | {_s(f_lo)}-{_s(f_hi)} s |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ CLI


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def _bools(s: str) -> list[bool]:
    return [x.strip().lower() in ("1", "true", "yes", "on") for x in s.split(",") if x.strip()]


def add_bench_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `bench` with its sub-commands to the CLI's sub-parsers."""
    p = sub.add_parser("bench", help="measure training/loader/eval speed (ratios timed side by side)")
    bsub = p.add_subparsers(dest="bench_cmd", required=True)

    t = bsub.add_parser("train-step", help="default training step vs the plain reference loop")
    t.add_argument("--model", default="baseline")
    t.add_argument("--image-size", type=int, default=224)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--steps", type=int, default=3, help="steps per round")
    t.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    t.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--experiment", default="baseline", choices=sorted(EXPERIMENTS),
                   help="the config whose runtime defaults (channels_last, compile) define the default path")
    t.add_argument("--variant", action="append", default=[], metavar="NAME=KEY:VALUE[,KEY:VALUE]",
                   help="extra path timed in the same rounds, e.g. compile=compile:true or nchw=channels_last:false")
    t.add_argument("--no-reference", action="store_true")

    ld = bsub.add_parser("loader", help="training DataLoader images/s for workers x cache")
    ld.add_argument("--dataset", default="synthetic", choices=("synthetic", "camvid", "voc"))
    ld.add_argument("--data-root", default=None)
    ld.add_argument("--image-size", type=int, default=128)
    ld.add_argument("--batch-size", type=int, default=16)
    ld.add_argument("--workers", type=_ints, default=[0, 1, 2])
    ld.add_argument("--cache", type=_bools, default=[False, True])
    ld.add_argument("--augment", default="none")
    ld.add_argument("--max-batches", type=int, default=None)
    ld.add_argument("--repeats", type=int, default=2)

    ev = bsub.add_parser("eval", help="evaluation images/s and the share spent in the metric")
    ev.add_argument("--dataset", default="synthetic", choices=("synthetic", "camvid", "voc"))
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--image-size", type=int, default=128)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--model", default="baseline")
    ev.add_argument("--repeats", type=int, default=3)
    ev.add_argument("--limit", type=int, default=None)

    ep = bsub.add_parser("epoch", help="end-to-end fit() time for workers settings")
    ep.add_argument("--dataset", default="synthetic", choices=("synthetic", "camvid", "voc"))
    ep.add_argument("--data-root", default=None)
    ep.add_argument("--image-size", type=int, default=128)
    ep.add_argument("--batch-size", type=int, default=16)
    ep.add_argument("--workers", type=_ints, default=[0, 1, 2])
    ep.add_argument("--epochs", type=int, default=1)
    ep.add_argument("--repeats", type=int, default=1)
    ep.add_argument("--set", action="append", default=[], metavar="KEY:VALUE", help="config override")
    ep.add_argument("--threads", type=int, default=None, help="torch threads of the training process")

    sy = bsub.add_parser("synthetic", help="generate_synthetic_voc wall time (temp dir)")
    sy.add_argument("--n-train", type=int, default=600)
    sy.add_argument("--n-val", type=int, default=200)
    sy.add_argument("--size", type=int, default=128)
    sy.add_argument("--repeats", type=int, default=1)

    g = bsub.add_parser("gpu-estimate", help="paper estimate of T4 epoch times from FLOP counts")
    g.add_argument("--image-size", type=int, default=224)
    g.add_argument("--epochs", type=int, default=30)

    for q in (t, ld, ev, ep, sy, g):
        q.add_argument("--json", metavar="FILE", default=None, help="also write the result as JSON")
    return p


def _value(s: str) -> Any:
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return s


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        for kv in item.split(","):
            k, _, v = kv.partition(":")
            out[k.strip()] = _value(v.strip())
    return out


def _print_train_step(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(f"{r['model']} {r['image_size']}x{r['image_size']} batch {r['batch_size']} | torch {m['torch']}, "
          f"{m['torch_threads']} threads, {m['cpu_model']}, load {m['loadavg']}")
    print(f"  default   {r['images_per_s']:7.2f} img/s  {r['gflops_per_s']:6.1f} GFLOP/s "
          f"({100 * r['matmul_fraction']:.0f}% of the {r['matmul_gflops_per_s']:.1f} GFLOP/s fp32 matmul)")
    if "reference_images_per_s" in r:
        q = r["ratio_paired"]
        print(f"  reference {r['reference_images_per_s']:7.2f} img/s   -> default / reference = {r['ratio']:.2f}x "
              f"(per-round quartiles {q['q1']:.2f}-{q['q3']:.2f})")
    for name, v in r["variants"].items():
        extra = f", compile {v['compile_seconds']:.0f} s, break-even {v['break_even_steps']} steps" \
            if "compile_seconds" in v else ""
        print(f"  {name:<9s} {v['images_per_s']:7.2f} img/s   {v['vs_default']:.2f}x default{extra}")
    print(f"  {r['gflop_per_image_fwd_bwd']:.2f} GFLOP per image fwd+bwd")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one `bench` sub-command, print a summary and write --json."""
    c = args.bench_cmd
    if c == "train-step":
        variants = {}
        for v in args.variant:
            name, _, spec = v.partition("=")
            variants[name] = _overrides([spec])
        r = bench_train_step(args.model, args.image_size, args.batch_size, args.steps, args.rounds,
                             threads=args.threads, variants=variants, cfg=EXPERIMENTS[args.experiment],
                             reference=not args.no_reference)
        _print_train_step(r)
    elif c == "loader":
        r = bench_loader(args.dataset, args.data_root, args.image_size, args.batch_size, args.workers, args.cache,
                         args.augment, args.max_batches, args.repeats)
        for k, s in r["summary"].items():
            warm = "".join(f"  {k} {s[f'{k}_images_per_s']:7.1f}" for k in ("prefilled", "warm")
                           if f"{k}_images_per_s" in s)
            print(f"{r['dataset']} {r['image_size']} {k:<22s} cold {s['cold_images_per_s']:7.1f} img/s{warm}")
    elif c == "eval":
        r = bench_eval(args.dataset, args.data_root, args.image_size, args.batch_size, args.model,
                       repeats=args.repeats, limit=args.limit)
        print(f"{r['dataset']} val ({r['images']} images): {r['images_per_s']:.1f} img/s, metrics "
              f"{100 * r['metrics_share']:.1f}% of the time, loading {100 * r['loading_share']:.1f}%")
    elif c == "epoch":
        r = bench_epoch(args.dataset, args.data_root, args.image_size, args.batch_size, args.workers, args.epochs,
                        _overrides(args.set), args.repeats, args.threads)
        for k, s in r["summary"].items():
            print(f"{r['dataset']} {r['image_size']} {r['epochs']} epoch(s) {k}, {r['threads']} threads: "
                  f"{s['seconds']:.1f} s")
    elif c == "synthetic":
        r = bench_synthetic(args.n_train, args.n_val, args.size, args.repeats)
        print(f"generate_synthetic_voc {r['n_train']}/{r['n_val']} @ {r['size']}: {r['seconds']:.1f} s "
              f"({r['images_per_s']:.0f} images/s)")
    elif c == "gpu-estimate":
        r = gpu_estimate(image_size=args.image_size, epochs=args.epochs)
        print(gpu_estimate_markdown(r))
    else:  # pragma: no cover - argparse refuses unknown sub-commands
        raise ValueError(f"unknown bench command {c!r}")
    save_json(r, args.json)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m starter_code.bench ...` (the same as `python -m starter_code bench ...`)."""
    parser = argparse.ArgumentParser(prog="python -m starter_code")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_bench_parser(sub)
    return cmd_bench(parser.parse_args(["bench", *(argv or [])]))


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
