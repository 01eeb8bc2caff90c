"""Paper estimate of T4 epoch times on VOC from FLOP counts at the Colab settings.

    .venv/bin/python benchmarks/gpu_estimate.py [options of `python -m starter_code.bench gpu-estimate --help`]

Without options it runs the documented default.
Prints a summary and writes JSON to benchmarks/results/ (or --json FILE). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from starter_code.bench import main

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = shlex.split("")

if __name__ == "__main__":
    args = sys.argv[1:] or DEFAULTS
    if "--json" not in args:
        args = [*args, "--json", str(RESULTS / "gpu_estimate.json")]
    raise SystemExit(main(["gpu-estimate", *args]))
