"""Wall time of `generate_synthetic_voc` (default 600/200 @ 128) into a fresh temporary folder.

    python -m benchmarks synthetic
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from .common import ensure_synthetic, machine_info, median


def bench_synthetic(n_train: int = 600, n_val: int = 200, size: int = 128, repeats: int = 1) -> dict[str, Any]:
    """Seconds to generate the synthetic set, median of `repeats`."""
    info = machine_info()
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(ensure_synthetic(tmp, n_train, n_val, size))
    return {"benchmark": "synthetic", "n_train": n_train, "n_val": n_val, "size": size, "seconds": median(times),
            "runs_seconds": times, "images_per_s": (n_train + n_val) / median(times), "machine": info}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `synthetic` sub-command."""
    p = sub.add_parser("synthetic", help="generate_synthetic_voc wall time (temp dir)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=1)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and print a summary."""
    r = bench_synthetic(args.n_train, args.n_val, args.size, args.repeats)
    print(f"generate_synthetic_voc {r['n_train']}/{r['n_val']} @ {r['size']}: {r['seconds']:.1f} s "
          f"({r['images_per_s']:.0f} images/s)")
    return r
