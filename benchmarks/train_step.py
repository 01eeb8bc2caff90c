"""Training step: the default path (what fit runs) vs the plain reference loop, timed interleaved.

    .venv/bin/python benchmarks/train_step.py [options of `python -m starter_code.bench train-step --help`]

Without options it runs the documented default (DEFAULTS below).
Prints a summary and writes JSON to benchmarks/results/ (or --json FILE). See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from starter_code.bench import main

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = [
    *shlex.split("--model baseline"),
    *shlex.split("--image-size 224"),
    *shlex.split("--batch-size 8"),
    *shlex.split("--steps 1"),
    *shlex.split("--rounds 8"),
    *shlex.split("--variant nchw=channels_last:false"),
    *shlex.split("--variant threads1=threads:1"),
    *shlex.split("--variant compile=compile:true"),
]

if __name__ == "__main__":
    args = sys.argv[1:] or DEFAULTS
    if "--json" not in args:
        args = [*args, "--json", str(RESULTS / "train_step.json")]
    raise SystemExit(main(["train-step", *args]))
