"""Adam as `fit` builds it (fused: one kernel over every parameter) against torch's CPU default (a Python loop over
the parameters), inside whole training steps, timed interleaved.

    python -m benchmarks optimizer --models baseline,unet_cpu,resnet34_fcn --image-size 96 --batch-size 8

Both paths run `engine.train_one_epoch` on the same batch from the same weights; only the optimizer differs. The
smaller the images, the larger the optimizer's share of a step (its cost depends on the parameter count only).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
from typing import Any

import torch

from starter_code.config import BASELINE, EXPERIMENTS
from starter_code.engine import build_criterion, build_optimizer, param_groups, train_one_epoch
from starter_code.models import count_parameters

from .common import build, interleaved, machine_info, median, num_threads
from .train_step import _paired, make_batch

NUM_CLASSES = 21


def paths(name: str, image_size: int, batch_size: int, steps: int) -> dict[str, Any]:
    """The two step functions ('fused' as fit, 'default' torch's loop) for one experiment's model."""
    cfg = replace(EXPERIMENTS.get(name, BASELINE), image_size=image_size, batch_size=batch_size, device="cpu")
    batch = make_batch(NUM_CLASSES, image_size, batch_size)
    torch.manual_seed(0)
    state = copy.deepcopy(build(cfg.model, NUM_CLASSES, None, **cfg.model_kwargs).state_dict())
    device = torch.device("cpu")
    out: dict[str, Any] = {}
    for label in ("fused", "default"):
        model = build(cfg.model, NUM_CLASSES, state, **cfg.model_kwargs)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = (build_optimizer(model, cfg, device) if label == "fused" else
               torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay))
        criterion = build_criterion(cfg, None, device)

        def step(model: torch.nn.Module = model, opt: torch.optim.Optimizer = opt, crit: Any = criterion) -> None:
            train_one_epoch(model, [batch] * steps, crit, opt, device, 0, None, channels_last=cfg.channels_last,
                            progress=False)

        out[label] = step
    out["parameters"] = count_parameters(model)
    return out


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `optimizer` sub-command."""
    p = sub.add_parser("optimizer", help="fused Adam (fit's) vs torch's default loop, in whole training steps",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="baseline,unet_cpu,resnet34_fcn_scratch", help="experiment names")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="steps per round")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Per model: seconds per step of both paths (median over rounds) and the paired ratio default / fused."""
    rows = []
    with num_threads(args.threads):
        info = machine_info()
        for name in args.models.split(","):
            p = paths(name, args.image_size, args.batch_size, args.steps)
            params = p.pop("parameters")
            for fn in p.values():
                fn()  # warm-up
            times = interleaved(p, args.rounds)
            ratio = _paired(times, "default", "fused")
            row = {"experiment": name, "parameters": params,
                   "fused_s_per_step": median(times["fused"]) / args.steps,
                   "default_s_per_step": median(times["default"]) / args.steps,
                   "default_over_fused": ratio, "times": times}
            rows.append(row)
            print(f"{name:24s} {params / 1e6:5.1f} M params  fused {row['fused_s_per_step'] * 1e3:6.1f} ms/step  "
                  f"default {row['default_s_per_step'] * 1e3:6.1f} ms/step  default/fused {ratio['median']:.2f}x "
                  f"(quartiles {ratio['q1']:.2f}-{ratio['q3']:.2f})", flush=True)
    return {"benchmark": "optimizer", "machine": info, "image_size": args.image_size,
            "batch_size": args.batch_size, "steps_per_round": args.steps, "rounds": args.rounds, "rows": rows}
