"""Training DataLoader images/s (decode + augment) for workers 0/1/2, with and without the in-memory cache.

    .venv/bin/python benchmarks/loader.py [options of `python -m starter_code.bench loader --help`]

Without options it runs the documented default (DEFAULTS below).
Prints a summary and writes JSON to benchmarks/results/ (or --json FILE). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from starter_code.bench import main

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = shlex.split("--dataset camvid --image-size 128")

if __name__ == "__main__":
    args = sys.argv[1:] or DEFAULTS
    if "--json" not in args:
        args = [*args, "--json", str(RESULTS / "loader.json")]
    raise SystemExit(main(["loader", *args]))
