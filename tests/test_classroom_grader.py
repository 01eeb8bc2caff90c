"""The grader (starter_code/classroom/grader.py, checks.py, harness.py): the reference scores full marks, a fresh
student edition zero, a pasted-back part exactly its points, typical mistakes lose exactly the checks they break
(with words, not expected values), and forged submissions score 0 whatever they print, patch or write."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from starter_code.classroom import PARTS
from starter_code.classroom.checks import CHECKS, INPUTS
from starter_code.classroom.edition import make_student, project_root
from starter_code.classroom.grader import GradingError, find_submission, grade, grade_all, gradescope_results
from starter_code.classroom.parts import TOTAL_POINTS

ROOT = project_root()
CHEAP = ["class_weights", "metrics_update"]  # parts a forgery is graded on: quick, and stubs in the edition


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_student(tmp_path_factory.mktemp("classroom") / "student")


def _by_part(results: list[dict]) -> dict[str, dict]:
    return {r["part"]: r for r in results}


def _checks(r: dict) -> dict[str, dict]:
    return {c["name"]: c for c in r["checks"]}


def test_every_check_has_a_test_and_points() -> None:
    assert set(INPUTS) == set(CHECKS) == {p.name for p in PARTS}
    for p in PARTS:
        assert set(CHECKS[p.name]) == {c.name for c in p.checks} and len(p.checks) == len(CHECKS[p.name])
        assert all(c.points > 0 for c in p.checks)
    assert TOTAL_POINTS == sum(p.points for p in PARTS) == 120


def test_reference_gets_full_marks_in_gradescope_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = grade(ROOT, tmp_path / "results.json")
    assert [r["part"] for r in results] == [p.name for p in PARTS]
    assert all(r["points"] == r["max_points"] and not r["error"] for r in results), results
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["score"] == TOTAL_POINTS
    assert len(saved["tests"]) == len(PARTS)
    for t in saved["tests"]:
        assert set(t) == {"name", "score", "max_score", "output", "visibility"} and t["score"] == t["max_score"]
    assert f"total            {TOTAL_POINTS}/{TOTAL_POINTS}" in capsys.readouterr().out


def test_fresh_student_edition_scores_zero_with_the_hint(student: Path) -> None:
    for r in grade(student, quiet=True):
        assert r["points"] == 0, r
        for c in r["checks"]:
            assert c["message"].startswith("crashed: NotImplementedError: ") and "starter_code/" in c["message"], r


def test_one_part_pasted_back_scores_exactly_that_part(student: Path, tmp_path: Path) -> None:
    sub = tmp_path / "submission"
    shutil.copytree(student, sub)
    shutil.copyfile(ROOT / "starter_code" / "data" / "stats.py", sub / "starter_code" / "data" / "stats.py")
    results = _by_part(grade(sub, tmp_path / "results.json", parts=["class_weights", "metrics_update"], quiet=True))
    assert results["class_weights"]["points"] == 10 and results["metrics_update"]["points"] == 0
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 10


def test_the_grader_never_falls_back_to_the_kit(student: Path, tmp_path: Path) -> None:
    """A module missing from the submission is an import error, not silently the reference's module."""
    sub = tmp_path / "submission"
    shutil.copytree(student, sub)
    (sub / "starter_code" / "data" / "stats.py").unlink()
    (r,) = grade(sub, parts=["class_weights"], quiet=True)
    assert r["points"] == 0 and "starter_code.data.stats" in r["error"], r


def test_run_as_an_unknown_user_is_refused_before_grading(tmp_path: Path) -> None:
    with pytest.raises(GradingError, match="no-such-user"):
        grade(ROOT, parts=["class_weights"], run_as="no-such-user", quiet=True)


def test_an_upload_folder_is_found_and_a_missing_one_named(student: Path, tmp_path: Path) -> None:
    (tmp_path / "upload").mkdir()
    shutil.copytree(student / "starter_code", tmp_path / "upload" / "kit" / "starter_code")
    assert find_submission(tmp_path / "upload") == (tmp_path / "upload" / "kit").resolve()
    with pytest.raises(FileNotFoundError, match="no starter_code"):
        find_submission(tmp_path)


def test_a_student_edition_cannot_grade(student: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(student), "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([sys.executable, "-m", "starter_code", "classroom", "grade", str(student)], cwd=student,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "needs the instructor's kit" in r.stderr, r.stderr[-2000:]


# --------------------------------------------------------------------------------------------- mistakes
def _mutant(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the reference's starter_code with text replacements (each must match)."""
    sub = tmp_path / "mutant"
    shutil.copytree(ROOT / "starter_code", sub / "starter_code", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, pairs in edits.items():
        path = sub / "starter_code" / rel
        text = path.read_text()
        for old, new in pairs:
            assert text.count(old) == 1, (rel, old)
            text = text.replace(old, new)
        path.write_text(text)
    return sub


def test_typical_mistakes_lose_exactly_their_checks(tmp_path: Path) -> None:
    sub = _mutant(tmp_path, {
        "metrics.py": [("torch.bincount(t * n + p, minlength=n * n)", "torch.bincount(p * n + t, minlength=n * n)"),
                       ("iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, nan))",
                        "iou = tp / union.clamp(min=1)")],
        "data/transforms.py": [("v2.RandomApply([v2.RandomResizedCrop(size, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3), "
                                "antialias=True)], p=0.3),", "")],
        "data/dataset.py": [("            if mode in (\"P\", \"L\"):\n                return np.array(im)\n", ""),
                            ("img, msk = self._pair(index)\n        img, msk = self.transform(*to_tv(img, msk))",
                             "if index not in self._cache:\n            self._cache[index] = self.transform("
                             "*to_tv(*self._pair(index)))\n        img, msk = self._cache[index]")],
        "data/stats.py": [("w[present] /= w[present].mean()", "w[present] /= w[present].sum()")],
    })
    results = _by_part(grade(sub, parts=["metrics_update", "metrics_compute", "transforms", "load_mask",
                                         "dataset_epochs", "class_weights"], quiet=True))
    failed = {name: {c["name"]: c["message"] for c in r["checks"] if not c["passed"]} for name, r in results.items()}
    assert "transposed" in failed["metrics_update"]["rows are ground truth, columns prediction"]
    assert "int64 counts, num_classes x num_classes" not in failed["metrics_update"]
    assert results["metrics_update"]["points"] == 2  # partial credit
    absent = "IoU of a class absent from prediction and target is NaN (left out of mIoU)"
    assert failed["metrics_compute"][absent].endswith("got 0.0")
    assert "pixel accuracy" not in failed["metrics_compute"]
    assert set(failed["transforms"]) == {"paper: random-resized crop on about 30% of samples, centre crop otherwise",
                                         "paper: crop scale (area 90-100%) and aspect ratio (3/4-4/3) statistics"}
    assert results["transforms"]["points"] == 10
    # a palette mask read through RGB maps void to an unknown colour: load_mask refuses it or loses void
    assert "palette mask: indices read as they are" in failed["load_mask"]
    assert "identical in every epoch" in failed["dataset_epochs"][
        "with cache=True the decoded pair is cached, the augmentation still drawn per read"]
    assert "eval item: normalised float32 C x H x W image, int64 H x W mask with void 255" not in failed[
        "dataset_epochs"]
    assert "average 1" in failed["class_weights"]["inverse frequency, normalised to mean 1 over present classes"]
    assert results["class_weights"]["points"] == 4  # median right; inverse (and its clipped case) wrong
    # feedback never shows an expected value: no message quotes a number from the reference outputs
    assert all(len(msg) < 400 for msgs in failed.values() for msg in msgs.values())


def test_the_report_bugs_in_the_engine_lose_their_checks(tmp_path: Path) -> None:
    """The loss that drops the class weights, and evaluate counting only the last batch."""
    sub = _mutant(tmp_path, {"engine.py": [
        ("return nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)",
         "return nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)"),
        ("    cm = ConfusionMatrix(num_classes, IGNORE_INDEX, device=device)\n", ""),
        ("        cm.update(logits.contiguous(memory_format=torch.channels_last).argmax(1), masks)",
         "        cm = ConfusionMatrix(num_classes, IGNORE_INDEX, device=device)\n"
         "        cm.update(logits.argmax(1), masks)"),
    ]})
    results = _by_part(grade(sub, parts=["criterion", "evaluate"], quiet=True))
    crit, ev = _checks(results["criterion"]), _checks(results["evaluate"])
    assert "never reach the loss" in crit["class weights of the training set reach the loss"]["message"]
    assert results["criterion"]["points"] == 7
    assert not ev["one confusion matrix over the split (not a mean of per-batch metrics)"]["passed"]
    assert not ev["every non-void pixel counted once, at the mask's resolution"]["passed"]
    assert ev["mean loss weighted by batch size"]["passed"] and ev["model in eval mode"]["passed"]
    assert results["evaluate"]["points"] == 5


# --------------------------------------------------------------------------------------------- forgeries
FORGERIES = {
    # the three-line __init__.py: write a passing result where the grader reads, then leave before any check
    "writes_results_and_exits": """
        import json, os, sys
        for d in {os.getcwd(), *sys.argv[1:2]}:
            forged = {"class_weights": {"ok": {}}, "single": {"ok": {"mat": [[1]]}}}
            json.dump(forged, open(os.path.join(d, "outputs.json"), "w"))
            open(os.path.join(d, "result.json"), "w").write('{"passed": 99, "failed": 0, "score": 120}')
        os._exit(0)
    """,
    # patch every comparison function and pytest itself, then carry on (the stubs still raise)
    "patches_comparisons": """
        import numpy, numpy.testing, torch, sys, types
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        numpy.allclose = lambda *a, **k: True
        numpy.array_equal = lambda *a, **k: True
        numpy.testing.assert_allclose = lambda *a, **k: None
        fake = types.ModuleType("pytest"); fake.main = lambda *a, **k: 0; fake.approx = lambda x, **k: x
        sys.modules["pytest"] = fake
        sys.excepthook = lambda *a: None
        sys.exit = lambda *a: None
    """,
    # print a perfect score table and exit 0 at once
    "prints_a_score_and_exits": """
        import os
        print("total            120/120")
        print('{"score": 120, "tests": []}')
        os._exit(0)
    """,
    # write files wherever the grader might read: every job folder, the reference folder, the results file
    "writes_where_the_grader_reads": """
        import json, os, pathlib
        here = pathlib.Path(os.getcwd())
        for d in [p for p in here.parent.parent.rglob("*") if p.is_dir()] + [here]:
            try:
                (d / "outputs.json").write_text(json.dumps({"inverse": {"ok": {"w": [1.0]}}}))
                (d / "mask_P.png").write_bytes(b"")
            except OSError:
                pass
        pathlib.Path(os.environ.get("FORGED_RESULTS", "RESULTS_PATH")).write_text('{"score": 120}')
    """,
    # replace the grader's modules and the reference in sys.modules (the process it runs in is its own)
    "patches_the_reference": """
        import sys, types
        fake = types.ModuleType("starter_code.classroom.checks")
        fake.CHECKS = {}
        for name in ("starter_code.classroom.checks", "starter_code.classroom.grader", "starter_code.metrics"):
            sys.modules[name] = fake
        main = sys.modules.get("__main__")
        if main is not None and hasattr(main, "run_part"):
            main.run_part = lambda part, api, inputs, catch=True: {c: {"ok": {"w": inputs}} for c in main.CASES[part]}
    """,
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_submissions_score_zero(name: str, student: Path, tmp_path: Path) -> None:
    sub = tmp_path / "forged"
    shutil.copytree(student / "starter_code", sub / "starter_code")
    results_path = tmp_path / "results.json"
    code = textwrap.dedent(FORGERIES[name]).replace("RESULTS_PATH", str(results_path))
    (sub / "starter_code" / "__init__.py").write_text(code)
    results = grade(sub, results_path, parts=CHEAP, quiet=True)
    assert [r["points"] for r in results] == [0, 0], results
    assert all(r["error"] or not any(c["passed"] for c in r["checks"]) for r in results)
    assert json.loads(results_path.read_text())["score"] == 0  # the grader's file, written last


def test_a_hang_is_stopped_and_scores_zero(student: Path, tmp_path: Path) -> None:
    sub = tmp_path / "hangs"
    shutil.copytree(student / "starter_code", sub / "starter_code")
    (sub / "starter_code" / "__init__.py").write_text("while True:\n    pass\n")
    (r,) = grade(sub, parts=["class_weights"], timeout=5, quiet=True)
    assert r["points"] == 0 and r["error"].startswith("timed out after 5 s"), r


# --------------------------------------------------------------------------------------------- gradebook
def test_grade_all_writes_one_row_per_student(student: Path, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    shutil.copytree(student / "starter_code", subs / "bob" / "starter_code")
    shutil.copytree(student / "starter_code", subs / "alice" / "starter_code")
    shutil.copyfile(ROOT / "starter_code" / "data" / "stats.py", subs / "alice" / "starter_code" / "data" / "stats.py")
    (subs / "carol").mkdir()  # handed in nothing usable
    import starter_code.classroom.grader as grader

    real = grader.grade
    rows = []

    def only_cheap(path, *args, **kwargs):  # two parts keep the test quick; grade() is tested above
        kwargs["parts"] = CHEAP
        return real(path, *args, **kwargs)

    grader.grade = only_cheap
    try:
        rows = grade_all(subs, tmp_path / "gradebook.csv", json_dir=tmp_path / "json")
    finally:
        grader.grade = real
    with open(tmp_path / "gradebook.csv") as f:
        book = list(csv.DictReader(f))
    assert [r["student"] for r in book] == ["alice", "bob", "carol"] == [r["student"] for r in rows]
    assert list(book[0]) == ["student", *(p.name for p in PARTS), "total", "error"]
    assert book[0]["class_weights"] == "10" and book[0]["total"] == "10" and book[1]["total"] == "0"
    assert "no starter_code" in book[2]["error"]
    assert json.loads((tmp_path / "json" / "alice.json").read_text())["score"] == 10


def test_gradescope_output_names_the_failed_property() -> None:
    r = {"part": "p", "title": "T", "where": "w", "points": 3, "max_points": 5, "error": "", "seconds": 1.0,
         "checks": [{"name": "a", "points": 3, "max_points": 3, "passed": True, "message": ""},
                    {"name": "b", "points": 0, "max_points": 2, "passed": False, "message": "why b fails"}]}
    out = gradescope_results([r])
    assert out["score"] == 3 and out["tests"][0]["max_score"] == 5
    assert "ok   a (3/3)" in out["tests"][0]["output"] and "FAIL b (0/2): why b fails" in out["tests"][0]["output"]
