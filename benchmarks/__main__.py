"""`python -m benchmarks <name> [options]`: run one benchmark, print a summary, save JSON to benchmarks/results/.

    python -m benchmarks train-step | loader | eval | epoch | synthetic | gpu-estimate | camvid-recipe | voc-scale |
        gpu-check | camvid-epoch | optimizer [--help]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from . import (
    camvid_epoch,
    camvid_recipe,
    epoch,
    eval,
    gpu_check,
    gpu_estimate,
    loader,
    optimizer,
    synthetic,
    train_step,
    voc_scale,
)
from .common import RESULTS, save_json

BENCHMARKS = {"train-step": train_step, "loader": loader, "eval": eval, "epoch": epoch, "synthetic": synthetic,
              "gpu-estimate": gpu_estimate, "camvid-recipe": camvid_recipe, "voc-scale": voc_scale,
              "gpu-check": gpu_check, "camvid-epoch": camvid_epoch, "optimizer": optimizer}


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per benchmark module, each with --json (default benchmarks/results/<name>.json)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, module in BENCHMARKS.items():
        p = module.add_parser(sub)
        default = RESULTS / f"{name.replace('-', '_')}.json"
        p.add_argument("--json", metavar="FILE", default=str(default), help=f"where the result goes ({default})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the benchmark, write its JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["python", "-m", "benchmarks", *argv])
    result = BENCHMARKS[args.benchmark].run(args)
    result.setdefault("command", args.command)
    save_json(result, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
