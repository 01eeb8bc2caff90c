"""The student edition (starter_code/classroom/edition.py): every solution hidden, the grader left out, STUDENT.md
added, and its `make test` reports per part what is done and what is still to do."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from starter_code.classroom import PARTS, add_classroom_parser, cmd_classroom
from starter_code.classroom.edition import (
    BEGIN_MARK,
    END_MARK,
    HINT_PREFIX,
    ClassroomError,
    find_leaks,
    make_student,
    project_root,
    strip_solutions,
)
from starter_code.classroom.todo import unfinished

ROOT = project_root()
# unmistakable pieces of each part's reference code (the grader's own leak scan covers every solution line)
SOLUTION_SNIPPETS = ("torch.bincount(t * n + p, minlength=n * n)", "tp / union.clamp(min=1)",
                     "scaler.scale(loss).backward()", "np.median(freq) / freq", "1.0 / (pixels[present] + eps)",
                     "v2.RandomResizedCrop(size, scale=(0.9, 1.0)", "v2.RandomCrop(size, pad_if_needed=True",
                     "nn.Conv2d(cout, cout, 3, padding=1, bias=False)", 'sum(row[i] for i, row in enumerate(val',
                     "return np.array(im)", "img, msk = self.transform(*to_tv(img, msk))")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_classroom_parser(parser.add_subparsers(dest="cmd", required=True))
    return cmd_classroom(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("classroom") / "student"
    assert _cli("classroom", "student", "--out", str(out)) == 0
    return out



# ------------------------------------------------------------------------------------------------ markers
def test_region_becomes_a_raise_at_its_indentation() -> None:
    src = "\n".join(["def f(x):", "    y = 1", f"    {BEGIN_MARK}", f'    {HINT_PREFIX} add "one"',
                     "    y = x + 1", "    z = 2", f"    {END_MARK}", "    return y", ""])
    text, regions, raises = strip_solutions(src)
    assert text == 'def f(x):\n    y = 1\n    raise NotImplementedError("add \\"one\\"")\n    return y\n'
    assert [r.hint for r in regions] == ['add "one"'] and regions[0].code == ["    y = x + 1", "    z = 2"]
    assert raises == [3]


@pytest.mark.parametrize("lines, why", [
    ([BEGIN_MARK, "x = 1", END_MARK], "HINT"),
    ([BEGIN_MARK, f"{HINT_PREFIX} h", "x = 1"], "never closed"),
    ([END_MARK], "without"),
    ([BEGIN_MARK, f"{HINT_PREFIX} h", BEGIN_MARK], "inside"),
    (["if 1:", f"    {BEGIN_MARK}", f"    {HINT_PREFIX} h", "    x = 1", END_MARK], "indented"),
])
def test_bad_markers_are_errors(lines: list[str], why: str) -> None:
    with pytest.raises(ClassroomError, match=why):
        strip_solutions("\n".join(lines))


def test_a_region_outside_a_function_is_refused(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    (kit / "starter_code").mkdir(parents=True)
    (kit / "starter_code" / "__init__.py").write_text("\n".join([BEGIN_MARK, f"{HINT_PREFIX} h", "X = 1", END_MARK]))
    with pytest.raises(ClassroomError, match="outside a function body"):
        make_student(tmp_path / "out", src=kit)


def _mini_kit(root: Path, doc: str = "notes\n") -> Path:
    """A tiny kit outside git: one part, a doc, and folders a student edition must leave out."""
    region = [f"    {BEGIN_MARK}", f"    {HINT_PREFIX} add one", "    return value_plus_one_the_secret_way(x)",
              f"    {END_MARK}"]
    files = {"starter_code/__init__.py": "", "starter_code/part.py": "\n".join(["def f(x):", *region, ""]),
             "docs/notes.md": doc, "data/README.md": "put data here\n", "data/big.bin": "x",
             "runs/a/metrics.json": "{}", ".venv/lib.py": "", "starter_code/__pycache__/part.pyc": "",
             "tests/classroom/test_part_f.py": "", "tests/test_classroom_x.py": "", "tests/test_ok.py": "",
             "starter_code/classroom/grader.py": ""}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_mini_kit_outside_git(tmp_path: Path) -> None:
    out = make_student(tmp_path / "out", src=_mini_kit(tmp_path / "kit"))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["data/README.md", "docs/notes.md", "starter_code/__init__.py", "starter_code/part.py",
                     "tests/classroom/test_part_f.py", "tests/test_ok.py"]
    assert (out / "starter_code/part.py").read_text() == 'def f(x):\n    raise NotImplementedError("add one")\n'


def test_solution_quoted_elsewhere_is_caught(tmp_path: Path) -> None:
    kit = _mini_kit(tmp_path / "kit", doc="The answer: `return value_plus_one_the_secret_way(x)`\n")
    with pytest.raises(ClassroomError, match="docs/notes.md: return value_plus_one_the_secret_way"):
        make_student(tmp_path / "out", src=kit)
    assert list((tmp_path / "out").iterdir()) == []  # nothing leaky left behind


def test_refuses_non_empty_or_nested_output(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ClassroomError, match="not an empty folder"):
        make_student(tmp_path / "busy")
    with pytest.raises(ClassroomError, match="inside the source tree"):
        make_student(ROOT / "build" / "student-edition")
    assert not (ROOT / "build" / "student-edition").exists()


def test_the_leak_scan_finds_solution_lines(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    return torch.bincount(t * n + p, minlength=n * n)\n")
    (tmp_path / "b.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": ['x = "quoted text"\n']}]}))
    leaks = find_leaks(tmp_path, {"torch.bincount(t * n + p, minlength=n * n)", 'x = "quoted text"'})
    assert len(leaks) == 2 and leaks[0].startswith("a.py") and leaks[1].startswith("b.ipynb")


# ---------------------------------------------------------------------------------------- student edition
def test_student_edition_hides_every_solution(student: Path) -> None:
    files = [p for p in student.rglob("*") if p.is_file()]
    assert (student / "starter_code" / "metrics.py").is_file() and (student / "data" / "README.md").is_file()
    assert (student / "tests" / "classroom" / "test_part_load_mask.py").is_file()  # the public part tests
    assert not list((student / "tests").glob("test_classroom*"))
    assert sorted(p.name for p in (student / "starter_code" / "classroom").iterdir()) == [
        "__init__.py", "cli.py", "parts.py", "todo.py"]  # no grader, no reference-running code
    assert not any(part in (".git", ".venv", "runs", "__pycache__") for p in files for part in p.parts)
    for path in files:
        text = path.read_text(errors="replace")
        for snippet in SOLUTION_SNIPPETS:
            assert snippet not in text, f"{path}: {snippet}"
        if path.suffix in (".py", ".ipynb"):
            assert not any(ln.strip().strip('",').replace("\\n", "").strip() in (BEGIN_MARK, END_MARK)
                           for ln in text.splitlines()), path
    raises = sum(p.read_text().count("raise NotImplementedError(") - (ROOT / p.relative_to(student)).read_text()
                 .count("raise NotImplementedError(") for p in (student / "starter_code").rglob("*.py"))
    assert raises == 13  # 2 metrics, 2 stats, 2 transforms, 1 unet, 2 dataset, 4 engine (2 in train_one_epoch)
    fcn = student / "starter_code" / "models" / "fcn.py"
    assert fcn.read_text() == (ROOT / "starter_code" / "models" / "fcn.py").read_text()


def test_student_notebooks_are_valid_and_clean(student: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    for path in sorted((student / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    nb01 = nbformat.read(student / "notebooks" / "01_baseline_fcn.ipynb", as_version=4)
    exercise = [c.source for c in nb01.cells if c.cell_type == "code" and "NotImplementedError" in c.source]
    assert len(exercise) == 1 and "evaluate(" in exercise[0]
    assert "assert " in exercise[0] and 'val["pixel_acc"]' in exercise[0]  # the student's own check asserts


def test_student_edition_imports_and_its_other_tests_pass(student: Path) -> None:
    code = ("import sys, pytest, starter_code, starter_code.engine, starter_code.models, starter_code.metrics, "
            "starter_code.classroom\n"
            f"assert starter_code.__file__.startswith({str(student)!r}), starter_code.__file__\n"
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_download.py']))")
    env = {**os.environ, "PYTHONPATH": str(student), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=student, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


def test_every_part_is_unfinished_in_the_edition_and_done_in_the_kit(student: Path) -> None:
    assert unfinished(ROOT) == {}
    assert set(unfinished(student)) == {p.name for p in PARTS}


def test_student_md_lists_every_part_in_order(student: Path) -> None:
    text = (student / "STUDENT.md").read_text()
    positions = [text.index(f"| `{p.name}` |") for p in PARTS]
    assert positions == sorted(positions)
    assert f"{sum(p.points for p in PARTS)} points" in text and "make test" in text and "starter_code/" in text
    assert "$" not in text  # every template field filled


def test_edition_lints_clean_and_loads_the_todo_plugin(student: Path) -> None:
    assert 'addopts = "-p starter_code.classroom.todo' in (student / "pyproject.toml").read_text()
    r = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check", "--no-cache", "."], cwd=student,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]


def _student_pytest(student: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(student), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=student, env=env,
                          capture_output=True, text=True, timeout=600)


def test_edition_make_test_reports_parts_to_do(student: Path) -> None:
    """The public part tests of the edition: every one reported as "to do", none as an error, and the summary."""
    r = _student_pytest(student, "-q", "tests/classroom", "tests/test_download.py")
    assert r.returncode == 0, r.stdout[-3000:]
    assert " failed" not in r.stdout and " error" not in r.stdout, r.stdout[-3000:]
    assert "xfailed" in r.stdout and "exercise parts" in r.stdout
    for p in PARTS:
        assert f"{p.name:<16s} to do" in r.stdout


def test_a_finished_part_shows_done_and_a_wrong_one_failing(student: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(student, work)
    shutil.copyfile(ROOT / "starter_code" / "data" / "stats.py", work / "starter_code" / "data" / "stats.py")
    unet = work / "starter_code" / "models" / "unet.py"
    stub = next(ln for ln in unet.read_text().splitlines() if "raise NotImplementedError(" in ln)
    unet.write_text(unet.read_text().replace(stub, "    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1))"))
    r = _student_pytest(work, "-q", "tests/classroom")
    assert r.returncode == 1
    assert "class_weights    done" in r.stdout and "double_conv      FAILING" in r.stdout
    assert "metrics_update   to do" in r.stdout
