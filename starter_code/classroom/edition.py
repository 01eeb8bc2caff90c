"""The student edition: the kit with the solutions cut out, a STUDENT.md, and a `make test` that reports per part.

Solution regions (nbgrader / otter-grader convention), in .py files and notebook code cells: a `# BEGIN SOLUTION`
line, then `# HINT: <one short hint>`, the reference code, and an `# END SOLUTION` line at the same indentation.
In .py files a region sits inside a function body, so the student edition still imports.

`make_student(DIR)` writes the whole project to DIR with every region replaced by
`raise NotImplementedError("<hint>")` at the region's indentation, notebook outputs cleared, the instructor's
files (grader, its tests) left out, STUDENT.md added and pyproject.toml set to report "to do" parts, then scans
DIR and refuses to finish if any solution line is still there.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parts import PARTS, TOTAL_POINTS

BEGIN_MARK = "# BEGIN SOLUTION"
END_MARK = "# END SOLUTION"
HINT_PREFIX = "# HINT:"
LINE_LENGTH = 120  # as in pyproject.toml: long raise lines are wrapped
DISTINCTIVE_CHARS = 20  # a solution line longer than this (stripped) must not appear in the student edition
# instructor-only: the grader (its checks and reference-running code), this module, and their tests
HIDDEN = ("tests/test_classroom", "starter_code/classroom/grader.py", "starter_code/classroom/checks.py",
          "starter_code/classroom/harness.py", "starter_code/classroom/edition.py",
          "starter_code/classroom/autograder.py", "starter_code/classroom/STUDENT.template.md")
STUDENT_TEMPLATE = Path(__file__).with_name("STUDENT.template.md")
TODO_PLUGIN = "starter_code.classroom.todo"
# lint rules a stub trips until the student writes the code (a name only the solution used or defined)
STUB_LINT = ("F401", "F821", "F841")
SKIP_TOP = {".git", ".venv", "build", "runs"}
SKIP_ANY = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".mypy_cache"}


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
    return Path(__file__).resolve().parents[2]


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
def _skipped(rel: str, hidden: bool = True) -> bool:
    parts = rel.split("/")
    if parts[0] in SKIP_TOP or (parts[0] == "data" and rel != "data/README.md"):
        return True
    if any(p in SKIP_ANY or p.endswith(".egg-info") for p in parts) or rel.endswith((".pyc", ".pyo")):
        return True
    return hidden and rel.startswith(HIDDEN)


def project_files(src: str | Path, hidden: bool = True) -> list[str]:
    """Relative paths of the files a student edition is made from: `git ls-files` (tracked and untracked but
    not ignored) in a git checkout, else a walk of the tree; build output, runs, data and caches left out, and the
    instructor's files too unless `hidden` is False."""
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
            dirnames[:] = sorted(d for d in dirnames if prefix + d == "data" or not _skipped(prefix + d + "/x", hidden))
            rels += [prefix + f for f in filenames]
    return sorted({r for r in rels if not _skipped(r, hidden) and (src / r).is_file()})


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
    generated = {}
    if (src / "starter_code" / "classroom" / "todo.py").is_file() and "pyproject.toml" in plan:
        generated = {"STUDENT.md": student_md(),
                     "pyproject.toml": student_pyproject(str(plan["pyproject.toml"], "utf-8"), regions_per_file)}

    out.mkdir(parents=True, exist_ok=True)
    for rel, content in {**plan, **generated}.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            dest.write_text(content, encoding="utf-8")
        else:
            dest.write_bytes(content)
        if (src / rel).is_file():
            shutil.copymode(src / rel, dest)
    leaks = find_leaks(out, distinctive)
    if leaks:
        for child in out.iterdir():  # the folder was empty: remove what we wrote, never hand out a leaky edition
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise ClassroomError(f"solution text left in the student edition (removed it again): {'; '.join(leaks[:5])}"
                             + (f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""))
    summary = {"files": len({**plan, **generated}), "regions": sum(regions_per_file.values()),
               "regions_per_file": regions_per_file, "searched_lines": len(distinctive), "shared_lines": sorted(shared)}
    return out, summary


def make_student(out_dir: str | Path, src: str | Path | None = None) -> Path:
    """Write the student edition of the kit at `src` (default: this kit) into `out_dir` (new or empty, outside
    `src`): every solution region replaced by `raise NotImplementedError("<hint>")`, notebook outputs cleared,
    the hidden part tests left out. Raises ClassroomError if any solution line is found in the result."""
    return _make_student(out_dir, src)[0]


def student_md() -> str:
    """STUDENT.md of the student edition: the template with the table of parts filled in."""
    rows = ["| order | part | what to write | where | points | public tests |", "|---|---|---|---|---|---|"]
    for i, p in enumerate(PARTS, 1):
        rows.append(f"| {i} | `{p.name}` | {p.title} | `{p.where}` | {p.points} | `{p.test_file}` |")
    checks = []
    for p in PARTS:
        checks.append(f"- `{p.name}`: " + "; ".join(f"{c.name} ({c.points})" for c in p.checks))
    return string.Template(STUDENT_TEMPLATE.read_text(encoding="utf-8")).substitute(
        parts_table="\n".join(rows), checks="\n".join(checks), total=TOTAL_POINTS, n_parts=len(PARTS))


def student_pyproject(text: str, regions_per_file: dict[str, int]) -> str:
    """The edition's pyproject.toml: pytest loads the "to do" plugin, and ruff leaves alone the unused or
    undefined names a stub leaves behind in the files that have exercises."""
    lines = text.split("\n")
    try:
        section = lines.index("[tool.pytest.ini_options]")
        at = next(i for i in range(section + 1, len(lines)) if lines[i].startswith("addopts = \""))
    except (ValueError, StopIteration):
        raise ClassroomError("pyproject.toml: no [tool.pytest.ini_options] addopts line to add the to-do plugin "
                             "to") from None
    lines[at] = lines[at].replace('addopts = "', f'addopts = "-p {TODO_PLUGIN} ', 1)
    ignores = [f'"{rel}" = {json.dumps(list(STUB_LINT))}' for rel in sorted(regions_per_file)]
    header = "[tool.ruff.lint.per-file-ignores]"
    if header in lines:
        lines[lines.index(header) + 1:lines.index(header) + 1] = ignores
    else:
        lines = [*lines[: len(lines) - (lines[-1] == "")], "", header, *ignores, ""]
    return "\n".join(lines)


def cmd_student(out_dir: str | Path, src: str | Path | None = None) -> int:
    """`classroom student --out DIR`: write the edition and say what was replaced."""
    out, info = _make_student(out_dir, src)
    print(f"student edition written to {out}: {info['files']} files, {info['regions']} solution regions "
          f"replaced in {len(info['regions_per_file'])} files; the grader and its tests left out")
    for rel, n in sorted(info["regions_per_file"].items()):
        print(f"  {rel}: {n}")
    if info["shared_lines"]:
        print("note: these solution lines also appear outside the regions, so students see them:")
        for line in info["shared_lines"]:
            print(f"  {line}")
    return 0
