"""Wall time of generate_synthetic_voc (default 600/200 at 128) into a temp dir.

    .venv/bin/python benchmarks/synthetic.py [options of `python -m starter_code.bench synthetic --help`]

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
        args = [*args, "--json", str(RESULTS / "synthetic.json")]
    raise SystemExit(main(["synthetic", *args]))
