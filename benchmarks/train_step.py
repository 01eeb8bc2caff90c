"""Training step: the default path (what `fit` runs) against the plain reference loop, timed interleaved.

    python -m benchmarks train-step --model baseline --image-size 224 --batch-size 8 --steps 1 --rounds 8 \
        --variant nchw=channels_last:false --variant threads1=threads:1 --variant compile=compile:true
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from starter_code.config import BASELINE, EXPERIMENTS, Config, parse_value
from starter_code.models.cost import train_step_flops

from .common import build, interleaved, machine_info, matmul_gflops, median, num_threads

Batch = tuple[torch.Tensor, torch.Tensor]


def make_batch(num_classes: int, image_size: int, batch_size: int, seed: int = 0) -> Batch:
    """Random images and masks with a void band, as real masks have."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    masks = torch.randint(0, num_classes, (batch_size, image_size, image_size), generator=g)
    masks[:, :4] = 255
    return images, masks


def default_train_step(cfg: Config, num_classes: int, batch: Batch, steps: int,
                       state: dict[str, torch.Tensor] | None = None) -> Callable[[], None]:
    """`steps` training steps exactly as `fit` runs them: build_model, channels_last per cfg, fused Adam on
    param_groups, the cfg's criterion (CE ignoring 255), torch.compile per cfg, engine.train_one_epoch."""
    from starter_code.engine import build_criterion, build_optimizer, train_one_epoch

    device = torch.device("cpu")
    model = build(cfg.model, num_classes, state, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg, device)
    criterion = build_criterion(cfg, None, device)
    step_model = torch.compile(model) if cfg.compile else model
    batches = [batch] * steps

    def run() -> None:
        train_one_epoch(step_model, batches, criterion, optimizer, device, 0, None,
                        channels_last=cfg.channels_last, progress=False)

    return run


def reference_train_step(model_name: str, num_classes: int, batch: Batch, steps: int,
                         state: dict[str, torch.Tensor] | None = None, lr: float = 1e-3) -> Callable[[], None]:
    """The plain loop: eager fp32, NCHW, no compile, torch's default Adam on all parameters, plain CE."""
    model = build(model_name, num_classes, state)
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


def _paired(times: dict[str, list[float]], a: str, b: str) -> dict[str, float]:
    """Per-round ratio time(a) / time(b) (the two ran back to back): median and quartiles."""
    rs = [x / y for x, y in zip(times[a], times[b])]
    q = statistics.quantiles(rs, n=4) if len(rs) > 1 else [rs[0]] * 3
    return {"median": median(rs), "q1": q[0], "q3": q[2]}


def bench_train_step(model: str = "baseline", image_size: int = 224, batch_size: int = 8, steps: int = 3,
                     rounds: int = 5, num_classes: int = 21, threads: int | None = None,
                     variants: dict[str, dict[str, Any]] | None = None, cfg: Config | None = None,
                     reference: bool = True, matmul_size: int = 2048) -> dict[str, Any]:
    """images/s of the default training path (fit's step) against the plain reference loop, timed interleaved.

    `variants` adds more paths ({name: Config overrides}, e.g. {"compile": {"compile": True}}; the extra key
    "threads" runs that path with so many torch threads), all timed in the same rounds. Each round runs `steps`
    steps of every path; the first call of each path is timed apart as `first_call_s` (for torch.compile: the
    compile time). FLOPs are fwd+bwd of one step (`models.cost.train_step_flops` x batch size).
    """
    from starter_code.models import count_parameters

    variants = variants or {}
    cfg = replace(cfg or BASELINE, model=model, image_size=image_size, batch_size=batch_size, device="cpu")
    with num_threads(threads):
        info = machine_info()
        mm_before = matmul_gflops(matmul_size)
        batch = make_batch(num_classes, image_size, batch_size)
        torch.manual_seed(0)
        init = build(model, num_classes, None, **cfg.model_kwargs)
        state = copy.deepcopy(init.state_dict())
        flops = train_step_flops(init, image_size, num_classes) * batch_size
        paths: dict[str, Callable[[], None]] = {"default": default_train_step(cfg, num_classes, batch, steps, state)}
        for name, over in variants.items():
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
    if reference:
        out["reference_seconds_per_step"] = per_step["reference"]
        out["reference_images_per_s"] = batch_size / per_step["reference"]
        out["ratio"] = _paired(times, "reference", "default")["median"]  # median of the per-round ratios
        out["ratio_paired"] = _paired(times, "reference", "default")
        out["ratio_of_medians"] = per_step["reference"] / per_step["default"]
    out["variants"] = {}
    for name, over in variants.items():
        v = {"overrides": over, "seconds_per_step": per_step[name], "images_per_s": batch_size / per_step[name],
             "vs_default": _paired(times, "default", name)["median"],
             "vs_default_paired": _paired(times, "default", name)}
        if reference:
            v["vs_reference"] = _paired(times, "reference", name)["median"]
        if over.get("compile"):
            v.update(_compile_cost(cfg, variants, name, per_step, first, steps))
        out["variants"][name] = v
    return out


def _compile_cost(cfg: Config, variants: dict[str, dict[str, Any]], name: str, per_step: dict[str, float],
                  first: dict[str, float], steps: int) -> dict[str, Any]:
    """Compile seconds and break-even steps of a compiled variant against the eager path with the same layout
    and threads (none when no such path was timed)."""
    def setting(over: dict[str, Any]) -> dict[str, Any]:
        return {**cfg.to_dict(), **over}

    over = variants[name]
    eager = [k for k, o in [("default", {}), *variants.items()]
             if not setting(o)["compile"] and setting(o)["channels_last"] == setting(over)["channels_last"]
             and o.get("threads") == over.get("threads")]
    if not eager:
        return {}
    base = per_step[eager[0]]
    overhead = first[name] - first.get("default", base * steps)
    gain = base - per_step[name]
    return {"compile_seconds": overhead, "break_even_steps": overhead / gain if gain > 0 else None}


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """"nchw=channels_last:false,compile:true" -> ("nchw", {"channels_last": False, "compile": True}); values are
    typed as the config field (`threads` is the path's torch threads)."""
    name, eq, rest = spec.partition("=")
    if not eq or not name:
        raise ValueError(f"--variant {spec}: expected NAME=KEY:VALUE[,KEY:VALUE], e.g. nchw=channels_last:false")
    over: dict[str, Any] = {}
    for kv in rest.split(","):
        key, _, value = kv.partition(":")
        key = key.strip()
        over[key] = int(value) if key == "threads" else parse_value(key, value)
    return name, over


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `train-step` sub-command."""
    p = sub.add_parser("train-step", help="default training step vs the plain reference loop",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="baseline")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=1, help="steps per round")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds (the median is reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--experiment", default="baseline", choices=sorted(EXPERIMENTS),
                   help="the config whose runtime defaults (channels_last, compile) define the default path")
    p.add_argument("--variant", action="append", default=[], type=parse_variant,
                   metavar="NAME=KEY:VALUE[,KEY:VALUE]",
                   help="extra path timed in the same rounds, e.g. compile=compile:true or nchw=channels_last:false")
    p.add_argument("--no-reference", action="store_true")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and print a summary."""
    r = bench_train_step(args.model, args.image_size, args.batch_size, args.steps, args.rounds,
                         threads=args.threads, variants=dict(args.variant), cfg=EXPERIMENTS[args.experiment],
                         reference=not args.no_reference)
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
    return r
