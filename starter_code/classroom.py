"""Hand the kit out as an assignment (issue #8): a student edition with the solutions cut out, and a grader.

Solution regions (nbgrader / otter-grader convention), in .py files and notebook code cells: a `# BEGIN SOLUTION`
line, then `# HINT: <one short hint>`, the reference code, and an `# END SOLUTION` line at the same indentation.
In .py files a region sits inside a function body, so the student edition still imports.

`make_student(DIR)` writes the whole project to DIR with every region replaced by
`raise NotImplementedError("<hint>")` at the region's indentation, notebook outputs cleared and the hidden part
tests (tests/classroom/) left out, then scans DIR and refuses to finish if any solution line is still there.

`grade(SUBMISSION)` runs the kit's own hidden test of each part (tests/classroom/test_part_<name>.py) against the
submission's code: one `python` subprocess per part, cwd and sys.path[0] = the submission, the kit's editable
install taken off the import path, and a check that every `starter_code` module came from the submission.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BEGIN_MARK = "# BEGIN SOLUTION"
END_MARK = "# END SOLUTION"
HINT_PREFIX = "# HINT:"
LINE_LENGTH = 120  # as in pyproject.toml: long raise lines are wrapped
DISTINCTIVE_CHARS = 20  # a solution line longer than this (stripped) must not appear in the student edition
HIDDEN = ("tests/classroom/", "tests/test_classroom.py")  # instructor-only: the grader's tests and their test
SKIP_TOP = {".git", ".venv", "build", "runs"}
SKIP_ANY = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".mypy_cache"}


@dataclass(frozen=True)
class Part:
    """One graded part: the student's code, its points and the hidden test file tests/classroom/test_part_<name>.py."""

    name: str
    points: int
    where: str

    @property
    def test_file(self) -> str:
        return f"test_part_{self.name}.py"


PARTS: tuple[Part, ...] = (
    Part("metrics_update", 15, "starter_code/metrics.py: ConfusionMatrix.update"),
    Part("metrics_compute", 15, "starter_code/metrics.py: ConfusionMatrix.compute"),
    Part("train_step", 10, "starter_code/engine.py: train_one_epoch (forward + loss, backward + step)"),
    Part("class_weights", 10, "starter_code/data/stats.py: class_weights (inverse and median formulas)"),
    Part("transforms", 10, "starter_code/data/transforms.py: build_transform 'paper' and 'strong'"),
    Part("double_conv", 10, "starter_code/models/unet.py: double_conv"),
)


class ClassroomError(ValueError):
    """Bad markers, a refused output folder, or solution text left in a student edition."""


@dataclass
class Region:
    """A solution region: 0-based line numbers of its BEGIN and END markers, indentation, hint and code lines."""

    begin: int
    end: int
    indent: str
    hint: str
    code: list[str]


def project_root() -> Path:
    """The kit's root folder (the one holding starter_code/)."""
    return Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- solution regions
def find_regions(lines: list[str], where: str = "<text>") -> list[Region]:
    """The solution regions of a list of lines; unbalanced or nested markers, or a missing hint, are errors."""
    regions: list[Region] = []
    begin: int | None = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s == BEGIN_MARK:
            if begin is not None:
                raise ClassroomError(f"{where}:{i + 1}: '{BEGIN_MARK}' inside the region opened at line {begin + 1}")
            begin = i
        elif s == END_MARK:
            if begin is None:
                raise ClassroomError(f"{where}:{i + 1}: '{END_MARK}' without '{BEGIN_MARK}'")
            indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
            hint_line = lines[begin + 1].strip() if begin + 1 < i else ""
            hint = hint_line[len(HINT_PREFIX):].strip() if hint_line.startswith(HINT_PREFIX) else ""
            if not hint:
                raise ClassroomError(f"{where}:{begin + 2}: the first line of a solution region must be "
                                     f"'{HINT_PREFIX} <one short hint>'")
            if line[: len(line) - len(line.lstrip())] != indent:
                raise ClassroomError(f"{where}:{i + 1}: '{END_MARK}' is not indented like its '{BEGIN_MARK}' "
                                     f"(line {begin + 1})")
            regions.append(Region(begin, i, indent, hint, lines[begin + 2:i]))
            begin = None
    if begin is not None:
        raise ClassroomError(f"{where}:{begin + 1}: '{BEGIN_MARK}' never closed")
    return regions


def strip_solutions(text: str, where: str = "<text>") -> tuple[str, list[Region], list[int]]:
    """`text` with each region replaced by one `raise NotImplementedError("<hint>")` line at the region's
    indentation; also returns the regions and the 1-based line numbers of the raise lines in the new text."""
    lines = text.split("\n")
    regions = find_regions(lines, where)
    out: list[str] = []
    raises: list[int] = []
    pos = 0
    for r in regions:
        out.extend(lines[pos:r.begin])
        hint = json.dumps(r.hint, ensure_ascii=False)
        raises.append(len(out) + 1)
        if len(r.indent) + len(hint) + 27 <= LINE_LENGTH:
            out.append(f"{r.indent}raise NotImplementedError({hint})")
        else:  # the kit's line length: the hint on its own line
            out += [f"{r.indent}raise NotImplementedError(", f"{r.indent}    {hint})"]
        pos = r.end + 1
    out.extend(lines[pos:])
    return "\n".join(out), regions, raises


def _check_inside_functions(text: str, raises: list[int], where: str) -> None:
    """Every replaced region of a .py file must sit in a function body, so the student edition imports."""
    try:
        tree = ast.parse(text, filename=where)
    except SyntaxError as e:
        raise ClassroomError(f"{where}: the student version does not parse ({e.msg}, line {e.lineno})") from None
    spans = [(n.body[0].lineno, n.end_lineno or n.lineno) for n in ast.walk(tree)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for line in raises:
        if not any(a <= line <= b for a, b in spans):
            raise ClassroomError(f"{where}:{line}: a solution region outside a function body would make the "
                                 "student edition fail on import; move the markers into a function")


def _cell_text(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _student_notebook(data: bytes, where: str) -> tuple[str, list[Region]]:
    """A notebook with every code cell's regions replaced, outputs and execution counts cleared."""
    nb = json.loads(data)
    regions: list[Region] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text, found, _ = strip_solutions(_cell_text(cell), f"{where} (cell {cell.get('id', '?')})")
        regions += found
        cell["source"] = text.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", regions


def _public_notebook_code(data: bytes) -> str:
    """A source notebook's code-cell text outside solution regions."""
    parts = []
    for cell in json.loads(data).get("cells", []):
        if cell.get("cell_type") == "code":
            lines = _cell_text(cell).split("\n")
            drop = {i for r in find_regions(lines) for i in range(r.begin, r.end + 1)}
            parts.append("\n".join(ln for i, ln in enumerate(lines) if i not in drop))
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------------- the files
def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    if parts[0] in SKIP_TOP or (parts[0] == "data" and rel != "data/README.md"):
        return True
    if any(p in SKIP_ANY or p.endswith(".egg-info") for p in parts) or rel.endswith((".pyc", ".pyo")):
        return True
    return rel.startswith(HIDDEN)


def project_files(src: str | Path) -> list[str]:
    """Relative paths of the files a student edition is made from: `git ls-files` (tracked and untracked but
    not ignored) in a git checkout, else a walk of the tree; build output, runs, data and caches left out."""
    src = Path(src)
    rels: list[str] | None = None
    if (src / ".git").exists() and shutil.which("git"):
        r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=src,
                           capture_output=True, timeout=60)
        if r.returncode == 0:
            rels = [p for p in r.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    if rels is None:
        rels = []
        for dirpath, dirnames, filenames in os.walk(src):
            rel_dir = Path(dirpath).relative_to(src).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = sorted(d for d in dirnames if prefix + d == "data" or not _skipped(prefix + d + "/x"))
            rels += [prefix + f for f in filenames]
    return sorted({r for r in rels if not _skipped(r) and (src / r).is_file()})


def _read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _distinctive(line: str) -> str | None:
    """The code of a solution line worth searching for: no comment, longer than DISTINCTIVE_CHARS."""
    code = line.strip()
    if not code or code.startswith("#"):
        return None
    if "  #" in code:
        code = code.split("  #", 1)[0].rstrip()
    return code if len(code) > DISTINCTIVE_CHARS else None


def _texts_for_scan(path: Path) -> list[str]:
    text = _read_text(path)
    if text is None:
        return []
    texts = [text]
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
            for c in nb.get("cells", []):
                texts.append(_cell_text(c))
                for o in c.get("outputs", []):
                    texts += [_cell_text({"source": v}) for v in [o.get("text"), *o.get("data", {}).values()]
                              if isinstance(v, (str, list))]
        except (json.JSONDecodeError, AttributeError):
            pass
    return texts


def find_leaks(out_dir: str | Path, solution_lines: set[str]) -> list[str]:
    """'file: line' for every solution line (or leftover marker) found anywhere in the text files of `out_dir`."""
    out_dir = Path(out_dir)
    leaks = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(out_dir).as_posix()
        for text in _texts_for_scan(path):
            leaks += [f"{rel}: {s}" for s in sorted(solution_lines) if s in text]
            if path.suffix in (".py", ".ipynb"):
                leaks += [f"{rel}: leftover marker {m!r}" for m in (BEGIN_MARK, END_MARK)
                          if any(ln.strip() == m for ln in text.split("\n"))]
    return sorted(set(leaks))


# ------------------------------------------------------------------------------------------- student edition
def _make_student(out_dir: str | Path, src: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    src = Path(src if src is not None else project_root()).resolve()
    out = Path(out_dir).expanduser().resolve()
    if not (src / "starter_code").is_dir():
        raise ClassroomError(f"{src}: not a kit (no starter_code/ folder)")
    if out == src or src in out.parents:
        raise ClassroomError(f"{out}: inside the source tree {src}; write the student edition somewhere else")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ClassroomError(f"{out}: exists and is not an empty folder; refusing to write a student edition there")

    files = project_files(src)
    plan: dict[str, bytes | str] = {}
    regions_per_file: dict[str, int] = {}
    solution: set[str] = set()
    public: set[str] = set()  # code lines outside every region (.py files and notebook code cells)
    for rel in files:
        data = (src / rel).read_bytes()
        if rel.endswith(".py"):
            text = data.decode("utf-8")
            new, regions, raises = strip_solutions(text, rel)
            if regions:
                _check_inside_functions(new, raises, rel)
            drop = {i for r in regions for i in range(r.begin, r.end + 1)}
            public |= {_distinctive(ln) for i, ln in enumerate(text.split("\n")) if i not in drop}
            plan[rel] = new
        elif rel.endswith(".ipynb"):
            plan[rel], regions = _student_notebook(data, rel)
            public |= {_distinctive(ln) for ln in _public_notebook_code(data).split("\n")}
        else:
            regions = []
            plan[rel] = data
        if regions:
            regions_per_file[rel] = len(regions)
            solution |= {d for r in regions for d in map(_distinctive, r.code) if d}
    # a solution line that is also a line of code outside every region (e.g. a generic
    # `optimizer.zero_grad(set_to_none=True)` in bench.py) is no secret; every other one is searched for, in
    # every text file (docs, tests and notebook markdown included)
    shared = solution & public
    distinctive = solution - shared

    out.mkdir(parents=True, exist_ok=True)
    for rel, content in plan.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            dest.write_text(content, encoding="utf-8")
        else:
            dest.write_bytes(content)
        shutil.copymode(src / rel, dest)
    leaks = find_leaks(out, distinctive)
    if leaks:
        for child in out.iterdir():  # the folder was empty: remove what we wrote, never hand out a leaky edition
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise ClassroomError(f"solution text left in the student edition (removed it again): {'; '.join(leaks[:5])}"
                             + (f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""))
    summary = {"files": len(plan), "regions": sum(regions_per_file.values()), "regions_per_file": regions_per_file,
               "searched_lines": len(distinctive), "shared_lines": sorted(shared)}
    return out, summary


def make_student(out_dir: str | Path, src: str | Path | None = None) -> Path:
    """Write the student edition of the kit at `src` (default: this kit) into `out_dir` (new or empty, outside
    `src`): every solution region replaced by `raise NotImplementedError("<hint>")`, notebook outputs cleared,
    the hidden part tests left out. Raises ClassroomError if any solution line is found in the result."""
    return _make_student(out_dir, src)[0]


# ------------------------------------------------------------------------------------------------------ grader
_RUNNER = r'''
import json, os, sys
sub, test, ini, out = sys.argv[1:5]
res = {"passed": 0, "failed": 0, "first_failure": ""}

def done(code):
    with open(out, "w") as f:
        json.dump(res, f)
    sys.exit(code)

sys.path.insert(0, sub)
# the kit's editable install is a meta-path finder for starter_code: nothing may resolve to the kit
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
root = os.path.realpath(sub) + os.sep

def foreign():
    return sorted(m for m, mod in list(sys.modules.items())
                  if (m == "starter_code" or m.startswith("starter_code.")) and getattr(mod, "__file__", None)
                  and not os.path.realpath(mod.__file__).startswith(root))

try:
    import starter_code
except BaseException as e:
    res["first_failure"] = f"cannot import starter_code: {type(e).__name__}: {e}".splitlines()[0]
    done(3)
if foreign():
    res["first_failure"] = f"starter_code was imported from {starter_code.__file__}, not from the submission"
    done(4)
import pytest

def first_line(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        lines = [ln.strip() for ln in crash.message.splitlines() if ln.strip()]
    else:  # e.g. a collection error: the exception is the last "E   ..." line of the text
        text = [ln for ln in str(report.longrepr).splitlines() if ln.strip()]
        lines = [ln[1:].strip() for ln in text if ln.startswith("E ")][-1:] or [ln.strip() for ln in text]
    return lines[0] if lines else "failed"

class Recorder:
    def pytest_runtest_logreport(self, report):
        if report.failed:
            res["failed"] += 1
            res["first_failure"] = res["first_failure"] or first_line(report)
        elif report.passed and report.when == "call":
            res["passed"] += 1

    def pytest_collectreport(self, report):
        if report.failed:
            res["failed"] += 1
            res["first_failure"] = res["first_failure"] or first_line(report)

code = pytest.main([test, "-q", "-p", "no:cacheprovider", "-c", ini, "--rootdir", os.path.dirname(ini),
                    "--tb=short"], plugins=[Recorder()])
bad = foreign()
if bad:
    res["first_failure"] = "modules imported from outside the submission: " + ", ".join(bad)
    done(4)
done(int(code))
'''


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)  # the part's own session: pytest and anything it started
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _run_part(part: Part, submission: Path, tests_dir: Path, timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {"part": part.name, "points": 0, "max_points": part.points, "passed": False,
                              "tests": "", "failure": "", "seconds": 0.0, "where": part.where}
    test_src = tests_dir / part.test_file
    if not test_src.is_file():
        result["failure"] = f"hidden test {test_src} is missing (grade with the instructor's kit)"
        return result
    with tempfile.TemporaryDirectory(prefix=f"grade-{part.name}-") as tmp:
        tmp_path = Path(tmp)
        test = tmp_path / part.test_file  # a copy outside both trees: no conftest or ini of either applies
        shutil.copyfile(test_src, test)
        ini = tmp_path / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\n")
        out = tmp_path / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(submission), *filter(None, [env.get("PYTHONPATH")])])
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(submission), str(test), str(ini), str(out)],
                                cwd=submission, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            timed_out = True
        result["seconds"] = round(time.perf_counter() - t0, 1)
        rec = json.loads(out.read_text()) if out.is_file() else {}
    n_pass, n_fail = rec.get("passed", 0), rec.get("failed", 0)
    result["tests"] = f"{n_pass}/{n_pass + n_fail}"
    if timed_out:
        result["failure"] = f"timed out after {timeout:g} s"
    elif proc.returncode == 0 and n_fail == 0 and n_pass > 0:
        result.update(passed=True, points=part.points)
    else:
        tail = [ln for ln in (stderr or stdout).decode("utf-8", "replace").splitlines() if ln.strip()]
        result["failure"] = rec.get("first_failure") or (tail[-1].strip() if tail else f"exit code {proc.returncode}")
    return result


def score_table(results: list[dict[str, Any]]) -> str:
    """The printed score table: part, points, passed/failed, tests, time and the first line of the failure."""
    rows = [f"{'part':<16s} {'points':>7s}  {'result':<6s} {'tests':>5s} {'time':>6s}  first failure"]
    for r in results:
        pts = f"{r['points']}/{r['max_points']}"
        why = r["failure"] if len(r["failure"]) <= 100 else r["failure"][:97] + "..."
        rows.append(f"{r['part']:<16s} {pts:>7s}  {'passed' if r['passed'] else 'FAILED':<6s} {r['tests']:>5s} "
                    f"{r['seconds']:5.1f}s  {why}")
    total, best = sum(r["points"] for r in results), sum(r["max_points"] for r in results)
    rows.append(f"{'total':<16s} {f'{total}/{best}':>7s}")
    return "\n".join(rows)


def grade(submission_dir: str | Path, json_path: str | Path | None = None, timeout: float = 120,
          parts: list[str] | None = None, jobs: int = 2, tests_dir: str | Path | None = None,
          quiet: bool = False) -> list[dict[str, Any]]:
    """Run each part's hidden test (the kit's tests/classroom/test_part_<name>.py) against the submission's
    code, one subprocess per part with `timeout` seconds, `jobs` at a time; print the score table and return one
    dict per part: part, points, max_points, passed, tests, failure (first line), seconds, where."""
    submission = Path(submission_dir).expanduser().resolve()
    if not (submission / "starter_code" / "__init__.py").is_file():
        raise FileNotFoundError(f"{submission}: no starter_code/ package; pass the root folder of a submission")
    tests_dir = Path(tests_dir) if tests_dir is not None else project_root() / "tests" / "classroom"
    chosen = [p for p in PARTS if not parts or p.name in parts]
    unknown = sorted(set(parts or []) - {p.name for p in PARTS})
    if unknown:
        raise ClassroomError(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(p.name for p in PARTS)}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda p: _run_part(p, submission, tests_dir, timeout), chosen))
    if not quiet:
        print(f"grading {submission}")
        print(score_table(results))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(
            {"submission": str(submission), "score": sum(r["points"] for r in results),
             "max_score": sum(r["max_points"] for r in results), "parts": results}, indent=2))
    return results


# ---------------------------------------------------------------------------------------------------------- CLI
def add_classroom_parser(sub: Any) -> argparse.ArgumentParser:
    """`classroom student --out DIR` and `classroom grade SUBMISSION [--json FILE]` under the kit's CLI."""
    p = sub.add_parser("classroom", help="assignment mode: write the student edition, grade a submission")
    csub = p.add_subparsers(dest="classroom_cmd", required=True)
    s = csub.add_parser("student", help="write the student edition (solutions replaced by NotImplementedError)")
    s.add_argument("--out", required=True, help="new or empty folder outside the kit")
    s.add_argument("--src", help="kit to make it from (default: this kit)")
    g = csub.add_parser("grade", help="run the hidden part tests against a submission; exit 0 only on full marks")
    g.add_argument("submission", help="root folder of the student's copy of the kit")
    g.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    g.add_argument("--timeout", type=float, default=120, help="seconds per part (default 120)")
    g.add_argument("--parts", nargs="+", choices=[pt.name for pt in PARTS], help="grade only these parts")
    g.add_argument("--jobs", type=int, default=2, help="parts graded at the same time (default 2)")
    return p


def cmd_classroom(args: argparse.Namespace) -> int:
    """Run a parsed `classroom` command; `grade` returns 0 on full marks, 1 otherwise."""
    if args.classroom_cmd == "student":
        out, info = _make_student(args.out, args.src)
        print(f"student edition written to {out}: {info['files']} files, {info['regions']} solution regions "
              f"replaced in {len(info['regions_per_file'])} files; hidden tests ({HIDDEN[0]}) left out")
        for rel, n in sorted(info["regions_per_file"].items()):
            print(f"  {rel}: {n}")
        if info["shared_lines"]:
            print("note: these solution lines also appear outside the regions (e.g. bench.py), so students see them:")
            for line in info["shared_lines"]:
                print(f"  {line}")
        return 0
    results = grade(args.submission, args.json, args.timeout, args.parts, args.jobs)
    return 0 if all(r["passed"] for r in results) else 1
