"""Grade a submission by comparing values, never by trusting the submission's process.

For each part the grader draws fresh random inputs (a secret seed from os.urandom, new every grading), computes the
reference outputs in its own process with the kit's own code (imported before any submission code runs), then
starts the submission's process (`python -I -B harness.py`, own session, own temp folder, a time limit) which
imports the submission's `starter_code` only and writes its outputs as JSON + .npz. The grader reads those back
as values (numpy with allow_pickle=False) and runs the part's named checks on them. Whatever the submission prints,
patches, exits with or leaves on disk, only its values can score; a crash, a hang or no outputs score 0 for that
part. With `run_as` (root only; the Gradescope package uses it), the submission runs as another user on a copy of
its files and cannot read the kit or touch the grader's files.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checks, harness
from .parts import LOCATIONS, PARTS, Part, get_part

MAX_OUTPUT_BYTES = 200 * 1024 * 1024  # outputs.json + arrays.npz of one part; more is refused, not read
TAIL_BYTES = 2000


class GradingError(RuntimeError):
    """The grader itself cannot run (not the instructor's kit, no submission folder, bad option)."""


def find_submission(path: str | Path) -> Path:
    """The folder holding the submission's starter_code/ package: `path` itself or its only subfolder that has
    one (an upload unpacked into one folder)."""
    path = Path(path).expanduser().resolve()
    if (path / "starter_code" / "__init__.py").is_file():
        return path
    inner = [d for d in path.iterdir() if (d / "starter_code" / "__init__.py").is_file()] if path.is_dir() else []
    if len(inner) == 1:
        return inner[0]
    raise FileNotFoundError(f"{path}: no starter_code/ package in it (or in one subfolder); pass the folder that "
                            "holds the submission's starter_code/")


# ------------------------------------------------------------------------------------------- the reference
class _Reference:
    """The kit's own code, imported now (before any submission runs), and the reference outputs per part."""

    def __init__(self, folder: Path) -> None:
        self.api = harness.Api(LOCATIONS, folder)
        for name in LOCATIONS:
            self.api(name)

    def outputs(self, part: str, inp: dict[str, Any]) -> dict[str, Any]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                return harness.roundtrip(harness.run_part(part, self.api, checks.public(inp), catch=False))
        except NotImplementedError as e:
            raise GradingError(f"the grader's own starter_code has an unimplemented part ({e}); grade with the "
                               "instructor's kit, not a student edition") from None
        finally:
            torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------- the submission's process
def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the part's own session: the worker and anything it started
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - TAIL_BYTES))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _read_outputs(job: Path) -> dict[str, Any]:
    out, arrays = job / "outputs.json", job / "arrays.npz"
    if not (out.is_file() and arrays.is_file()):
        raise ValueError("no outputs")
    if out.stat().st_size + arrays.stat().st_size > MAX_OUTPUT_BYTES:
        raise ValueError("outputs too large")
    with np.load(arrays, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    results = harness.decode(json.loads(out.read_text()), data)
    if not isinstance(results, dict):
        raise ValueError("outputs are not a dict")
    return results


def _user(run_as: str | None) -> tuple[int, int] | None:
    if run_as is None:
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise GradingError(f"run_as={run_as!r} needs the grader to run as root")
    try:
        pw = pwd.getpwnam(run_as)
    except KeyError:
        raise GradingError(f"run_as: no user {run_as!r} on this machine; create it (adduser) or drop the "
                           "option") from None
    return pw.pw_uid, pw.pw_gid


def _chown_tree(root: Path, ids: tuple[int, int]) -> None:
    for dirpath, _, filenames in os.walk(root):
        os.chown(dirpath, *ids)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), *ids)


def _run_submission(part: Part, inp: dict[str, Any], submission: Path, work: Path, timeout: float,
                    ids: tuple[int, int] | None) -> tuple[dict[str, Any] | None, str, float]:
    """Run the part's cases in the submission's own process; (results or None, why not, seconds)."""
    job = work / part.name
    job.mkdir()
    with open(job / "job.pkl", "wb") as f:
        pickle.dump({"part": part.name, "locations": LOCATIONS, "inputs": checks.public(inp)}, f)
    checks.write_files(part.name, inp, job)
    shutil.copyfile(Path(harness.__file__), job / "harness.py")
    if ids is not None:
        _chown_tree(job, ids)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(job), "TMPDIR": str(job),
           "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    with open(job / "stdout.txt", "wb") as out, open(job / "stderr.txt", "wb") as err:
        kwargs: dict[str, Any] = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-B", str(job / "harness.py"), str(job),
                                     str(submission)], cwd=job, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, start_new_session=True, **kwargs)
        except PermissionError as e:
            raise GradingError(f"cannot start {sys.executable} as the submission's user ({e.strerror}); make "
                               "that Python installation readable and executable for it") from None
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(proc.pid)  # also whatever it left running
        proc.wait()
    seconds = time.perf_counter() - t0
    if timed_out:
        return None, f"timed out after {timeout:g} s: the part's code runs too long or hangs", seconds
    try:
        return _read_outputs(job), "", seconds
    except (OSError, ValueError, KeyError, TypeError) as e:
        last = _tail(job / "stderr.txt")
        why = f"the submission's process ended without valid results (exit code {proc.returncode}"
        why += f"; {e})" if str(e) != "no outputs" else ")"
        return None, why + (f"; last line of its stderr: {last}" if last else ""), seconds


# ------------------------------------------------------------------------------------------------ scoring
def _score(part: Part, inp: dict[str, Any], ref: dict[str, Any], sub: dict[str, Any] | None, why: str,
           seconds: float) -> dict[str, Any]:
    if sub is not None and "__import__" in sub:
        why, sub = str(sub["__import__"].get("error", "cannot import the submission")), None
    rows: list[dict[str, Any]] = []
    for c in part.checks:
        if sub is None:
            msg: str | None = why
        else:
            try:
                msg = checks.CHECKS[part.name][c.name](checks.Outputs(sub), checks.Outputs(ref), inp)
            except checks.CaseFailed as e:
                msg = str(e)
            except Exception as e:  # noqa: BLE001 - malformed values from the submission fail the check
                msg = f"unexpected output ({type(e).__name__}: {str(e)[:120]})"
        rows.append({"name": c.name, "points": 0 if msg else c.points, "max_points": c.points, "passed": not msg,
                     "message": msg or ""})
    messages = {r["message"] for r in rows}
    if sub is not None and len(messages) == 1 and all(not r["passed"] for r in rows):
        why = messages.pop()  # e.g. the part is not written yet: one line, not one per check
    return {"part": part.name, "title": part.title, "where": part.where,
            "points": sum(r["points"] for r in rows), "max_points": part.points, "checks": rows,
            "error": why, "seconds": round(seconds, 1)}


def grade(submission_dir: str | Path, json_path: str | Path | None = None, timeout: float = 120,
          parts: list[str] | None = None, jobs: int = 2, quiet: bool = False,
          run_as: str | None = None) -> list[dict[str, Any]]:
    """Grade the submission in `submission_dir`; one dict per part (part, title, where, points, max_points,
    checks: name/points/max_points/passed/message, error, seconds). Prints the score table unless `quiet`;
    `json_path` gets Gradescope's results.json. `timeout` is per part, `jobs` parts run at a time."""
    submission = find_submission(submission_dir)
    chosen = [get_part(p) for p in parts] if parts else list(PARTS)
    ids = _user(run_as)
    rng = np.random.default_rng(int.from_bytes(os.urandom(16), "little"))  # secret: never stored or printed
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        ref_dir, work = Path(tmp) / "reference", Path(tmp) / "work"
        ref_dir.mkdir()
        work.mkdir()
        reference = _Reference(ref_dir)
        inputs, refs = {}, {}
        for part in chosen:  # every reference value is computed before any submission code runs
            inputs[part.name] = checks.INPUTS[part.name](rng, reference.api)
            checks.write_files(part.name, inputs[part.name], ref_dir)
            refs[part.name] = reference.outputs(part.name, inputs[part.name])
        if ids is not None:
            copy = work / "submission"
            shutil.copytree(submission, copy, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            _chown_tree(copy, ids)
            os.chmod(tmp, 0o711)
            os.chmod(work, 0o711)
            submission = copy
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            runs = list(pool.map(lambda p: _run_submission(p, inputs[p.name], submission, work, timeout, ids),
                                 chosen))
    results = [_score(p, inputs[p.name], refs[p.name], *run) for p, run in zip(chosen, runs)]
    if not quiet:
        print(f"grading {Path(submission_dir).resolve()}")
        print(score_table(results))
    if json_path is not None:
        write_gradescope(results, json_path)
    return results


# ------------------------------------------------------------------------------------------------ reporting
def _part_output(r: dict[str, Any]) -> str:
    lines = [f"{r['where']}"]
    if r["error"]:
        return "\n".join([*lines, f"0/{r['max_points']}: {r['error']}"])
    for c in r["checks"]:
        mark = "ok  " if c["passed"] else "FAIL"
        lines.append(f"{mark} {c['name']} ({c['points']}/{c['max_points']})" + (f": {c['message']}"
                                                                                  if c["message"] else ""))
    return "\n".join(lines)


def score_table(results: list[dict[str, Any]]) -> str:
    """The printed table: one line per part (points, time, error), then each failed check and why."""
    rows = [f"{'part':<16s} {'points':>7s} {'time':>6s}"]
    for r in results:
        rows.append(f"{r['part']:<16s} {r['points']:>3d}/{r['max_points']:<3d} {r['seconds']:5.1f}s")
        if r["error"]:
            rows.append(f"    {r['error']}")
        else:
            rows += [f"    - {c['name']}: {c['message']}" for c in r["checks"] if not c["passed"]]
    total, best = sum(r["points"] for r in results), sum(r["max_points"] for r in results)
    rows.append(f"{'total':<16s} {total:>3d}/{best:<3d}")
    return "\n".join(rows)


def gradescope_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Gradescope's results.json: total `score` and one test per part (name, score, max_score, output)."""
    total, best = sum(r["points"] for r in results), sum(r["max_points"] for r in results)
    return {"score": total, "output": f"{total}/{best} points", "visibility": "visible",
            "tests": [{"name": f"{r['part']}: {r['title']}", "score": r["points"], "max_score": r["max_points"],
                       "output": _part_output(r), "visibility": "visible"} for r in results]}


def write_gradescope(results: list[dict[str, Any]], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(gradescope_results(results), indent=2))
    os.replace(tmp, path)


def grade_all(folder: str | Path, csv_path: str | Path, timeout: float = 120, jobs: int = 2,
              json_dir: str | Path | None = None, run_as: str | None = None) -> list[dict[str, Any]]:
    """Grade every submission folder in `folder` (one per student, named after the student) into one gradebook
    CSV: student, a column per part, total, error. `json_dir` also gets <student>.json (results.json schema)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of submissions (one subfolder per student)")
    rows = []
    for student in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        row: dict[str, Any] = {"student": student.name, **{p.name: 0 for p in PARTS}, "total": 0, "error": ""}
        try:
            results = grade(student, timeout=timeout, jobs=jobs, quiet=True, run_as=run_as)
        except FileNotFoundError as e:
            row["error"] = str(e)
        else:
            row.update({r["part"]: r["points"] for r in results}, total=sum(r["points"] for r in results))
            errors = sorted({r["error"] for r in results if r["error"]})
            row["error"] = "; ".join(errors)[:300]
            if json_dir is not None:
                write_gradescope(results, Path(json_dir) / f"{student.name}.json")
        print(f"{student.name}: {row['total']}/{sum(p.points for p in PARTS)}" + (f"  ({row['error'][:80]})"
                                                                                 if row["error"] else ""))
        rows.append(row)
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", *(p.name for p in PARTS), "total", "error"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
