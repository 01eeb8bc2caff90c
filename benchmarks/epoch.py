"""End-to-end fit() time of one epoch (train + val + checkpoints) for loader workers 0/1/2.

    .venv/bin/python benchmarks/epoch.py [options of `python -m starter_code.bench epoch --help`]

Without options it runs the documented default (DEFAULTS below).
Prints a summary and writes JSON to benchmarks/results/ (or --json FILE). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from starter_code.bench import main

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = shlex.split("--dataset synthetic --image-size 128 --workers 0,1,2 --repeats 2")

if __name__ == "__main__":
    args = sys.argv[1:] or DEFAULTS
    if "--json" not in args:
        args = [*args, "--json", str(RESULTS / "epoch.json")]
    raise SystemExit(main(["epoch", *args]))
