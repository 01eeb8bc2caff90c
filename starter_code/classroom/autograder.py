"""The Gradescope autograder package: a zip with setup.sh, run_autograder and the instructor's kit.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once per image, then `run_autograder` (as root)
for each submission, found in /autograder/submission; the score goes to /autograder/results/results.json.
Our run_autograder grades into a private folder and copies the result last, so nothing the submission wrote
there survives; the submission's code runs as the unprivileged user `student`, which cannot read the kit (its
reference solutions) or write where the grader reads. AUTOGRADER_ROOT, AUTOGRADER_PYTHON and AUTOGRADER_RUN_AS
override /autograder, its Python and the user (tests run the package under a temporary root this way).
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from .edition import ClassroomError, project_files, project_root

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image setup: Python and the kit's requirements in /autograder/venv, and the user that runs submissions.
set -euo pipefail
apt-get update -q && apt-get install -y -q python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q --extra-index-url https://download.pytorch.org/whl/cpu \\
    -r /autograder/source/requirements.txt
id -u student >/dev/null 2>&1 || adduser --disabled-password --gecos "" student
chmod -R go-rwx /autograder/source  # the reference solutions: unreadable for the student user
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Grade /autograder/submission into /autograder/results/results.json (Gradescope's schema).
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
RUN_AS="${AUTOGRADER_RUN_AS-student}"
PRIVATE="$(mktemp -d)"  # 0700, root's: the submission's process cannot write here
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
args=()
if [ -n "$RUN_AS" ]; then args+=(--run-as "$RUN_AS"); fi
cd "$ROOT/source"
"$PY" -m starter_code classroom grade "$ROOT/submission" --json "$PRIVATE/results.json" --timeout 120 \\
    "${args[@]}" > "$PRIVATE/log.txt" 2>&1
if [ -s "$PRIVATE/results.json" ]; then
    cat "$PRIVATE/log.txt"
    cp "$PRIVATE/results.json" "$ROOT/results/results.json"
else
    cat "$PRIVATE/log.txt"
    "$PY" - "$PRIVATE/log.txt" "$ROOT/results/results.json" <<'PYEOF'
import json, sys
lines = [ln for ln in open(sys.argv[1], errors="replace").read().splitlines() if ln.strip()]
why = lines[-1] if lines else "no output"
json.dump({"score": 0, "output": f"The autograder could not grade this submission: {why}"}, open(sys.argv[2], "w"))
PYEOF
fi
rm -rf "$PRIVATE"
"""

# what the package needs of the kit: the package (grader, reference) and what installs it
PACKAGE_FILES = ("starter_code/", "requirements.txt", "pyproject.toml", "README.md")


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    zf.writestr(info, data)


def build_autograder(out_zip: str | Path, src: str | Path | None = None) -> Path:
    """Write the Gradescope autograder zip of the kit at `src` (default: this kit) to `out_zip`."""
    src = Path(src if src is not None else project_root()).resolve()
    out = Path(out_zip).expanduser().resolve()
    if out.suffix != ".zip":
        raise ClassroomError(f"{out}: the autograder package must be a .zip file")
    if not (src / "starter_code" / "classroom" / "grader.py").is_file():
        raise ClassroomError(f"{src}: no grader in this kit (a student edition?); build the package from the "
                             "instructor's kit")
    files = [rel for rel in project_files(src, hidden=False) if rel.startswith(PACKAGE_FILES)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        _add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        for rel in files:
            _add(zf, rel, (src / rel).read_bytes())
    return out
