"""Paper estimate of Colab T4 epoch times on VOC from FLOP counts at the Colab settings (no GPU needed).

    python -m benchmarks gpu-estimate
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from starter_code.models.cost import forward_flops, meta_model, train_step_flops

from .common import machine_info

T4_FP32_TFLOPS = 8.1
T4_FP16_TFLOPS = 65.0
VOC_TRAIN, VOC_VAL = 1464, 1449
VOC_EVAL_HW = (224, 298)  # VOC images are ~500x375: shorter side rescaled to 224 at evaluation

NOTEBOOK_MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("baseline / cosine / augment / weighted", "baseline", {}),
    ("dropout", "baseline_dropout", {}),
    ("resnet34_fcn", "resnet34_fcn", {}),
    ("resnet34_unet", "resnet34_unet", {}),
    ("unet (base 64)", "unet", {"base_width": 64}),
]


def gpu_estimate(utilisation: Sequence[float] = (0.30, 0.40), image_size: int = 224, epochs: int = 30
                 ) -> dict[str, Any]:
    """A T4 epoch on VOC (1,464 train + 1,449 val images) = its FLOPs / (peak x utilisation), fp32 and AMP."""
    rows = []
    for label, name, kw in NOTEBOOK_MODELS:
        train = train_step_flops(meta_model(name, **kw), image_size)
        ev = forward_flops(meta_model(name, **kw), VOC_EVAL_HW)
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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `gpu-estimate` sub-command."""
    p = sub.add_parser("gpu-estimate", help="paper estimate of T4 epoch times from FLOP counts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=30)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Print the estimate as markdown."""
    r = gpu_estimate(image_size=args.image_size, epochs=args.epochs)
    print(gpu_estimate_markdown(r))
    return r
