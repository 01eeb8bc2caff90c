"""The Gradescope package (starter_code/classroom/autograder.py) run end to end under a temporary root, and the
`classroom` CLI parser staying free of torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from starter_code.classroom.autograder import build_autograder
from starter_code.classroom.edition import ClassroomError, make_student, project_root
from starter_code.classroom.parts import TOTAL_POINTS

ROOT = project_root()


def _unpack(package: Path, root: Path) -> None:
    """What Gradescope does: unzip into ROOT/source, copy run_autograder to ROOT."""
    with zipfile.ZipFile(package) as zf:
        for info in zf.infolist():
            path = zf.extract(info, root / "source")
            os.chmod(path, (info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")


def test_package_holds_the_scripts_and_the_grader(tmp_path: Path) -> None:
    package = build_autograder(tmp_path / "autograder.zip")
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert names[:2] == ["setup.sh", "run_autograder"] and modes["run_autograder"] == 0o755
    assert {"starter_code/classroom/grader.py", "starter_code/classroom/checks.py", "requirements.txt"} <= set(names)
    assert not any(n.startswith(("tests/", "notebooks/", "data/", "runs/")) for n in names)
    with pytest.raises(ClassroomError, match=".zip"):
        build_autograder(tmp_path / "autograder.tar")


def test_run_autograder_grades_a_submission_under_a_temporary_root(tmp_path: Path) -> None:
    root = tmp_path / "autograder"
    _unpack(build_autograder(tmp_path / "autograder.zip"), root)
    student = make_student(tmp_path / "student")
    shutil.copytree(student / "starter_code", root / "submission" / "starter_code")
    shutil.copyfile(ROOT / "starter_code" / "data" / "stats.py", root / "submission" / "starter_code" / "data" /
                    "stats.py")  # one part done
    # a forged results.json left where Gradescope reads must not survive
    (root / "submission" / "starter_code" / "__init__.py").write_text(
        f"import pathlib\nr = pathlib.Path({str(root / 'results')!r})\n"
        "r.mkdir(exist_ok=True)\n(r / 'results.json').write_text('{\"score\": 120}')\n")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, "AUTOGRADER_RUN_AS": ""}
    r = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"].split(":")[0]: t for t in results["tests"]}
    assert tests["class_weights"]["score"] == 10 and tests["metrics_update"]["score"] == 0
    assert results["score"] == sum(t["score"] for t in results["tests"]) < TOTAL_POINTS
    assert sum(t["max_score"] for t in results["tests"]) == TOTAL_POINTS
    assert "NotImplementedError" in tests["metrics_update"]["output"]


def test_run_autograder_without_a_submission_scores_zero(tmp_path: Path) -> None:
    root = tmp_path / "autograder"
    _unpack(build_autograder(tmp_path / "autograder.zip"), root)
    (root / "submission").mkdir()
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, "AUTOGRADER_RUN_AS": ""}
    subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "no starter_code" in results["output"]


def test_the_classroom_parser_imports_no_torch() -> None:
    code = ("import argparse, sys\nfrom starter_code.classroom import add_classroom_parser\n"
            "p = argparse.ArgumentParser(); add_classroom_parser(p.add_subparsers(dest='cmd'))\n"
            "a = p.parse_args(['classroom', 'grade', 'x', '--parts', 'evaluate', '--json', 'r.json'])\n"
            "assert a.parts == ['evaluate'] and a.json == 'r.json'\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
