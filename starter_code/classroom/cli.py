"""The `classroom` command: student, grade, grade-all, autograder. The parser imports no torch."""

from __future__ import annotations

import argparse
from typing import Any

from .parts import PART_NAMES, TOTAL_POINTS

INSTRUCTOR_ONLY = ("the {cmd} command needs the instructor's kit (this copy has no grader: it is a student "
                   "edition); run the tests with `make test` instead")


def add_classroom_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `classroom {student,grade,grade-all,autograder}` to the kit's CLI subparsers."""
    p = sub.add_parser("classroom", help="assignment mode: student edition, grader, gradebook, Gradescope package")
    csub = p.add_subparsers(dest="classroom_cmd", required=True)
    s = csub.add_parser("student", help="write the student edition (solutions replaced by NotImplementedError)")
    s.add_argument("--out", required=True, help="new or empty folder outside the kit")
    s.add_argument("--src", help="kit to make it from (default: this kit)")

    def grading(q: argparse.ArgumentParser) -> None:
        q.add_argument("--timeout", type=float, default=120, help="seconds per part (default 120)")
        q.add_argument("--jobs", type=int, default=2, help="parts graded at the same time (default 2)")
        q.add_argument("--run-as", metavar="USER", help="run submissions as this user (grader running as root)")

    g = csub.add_parser("grade", help=f"grade one submission ({TOTAL_POINTS} points); exit 0 only on full marks")
    g.add_argument("submission", help="folder holding the submission's starter_code/")
    g.add_argument("--json", metavar="FILE", help="write Gradescope's results.json schema to FILE")
    g.add_argument("--parts", nargs="+", choices=PART_NAMES, help="grade only these parts")
    grading(g)
    a = csub.add_parser("grade-all", help="grade every submission folder in DIR into one gradebook CSV")
    a.add_argument("folder", help="one subfolder per student (its name is the student's)")
    a.add_argument("--csv", required=True, metavar="FILE", help="gradebook: a row per student, a column per part")
    a.add_argument("--json-dir", metavar="DIR", help="also write DIR/<student>.json (results.json schema)")
    grading(a)
    z = csub.add_parser("autograder", help="build the Gradescope autograder package (setup.sh, run_autograder)")
    z.add_argument("--out", required=True, metavar="ZIP", help="the .zip to write")
    z.add_argument("--src", help="kit to package (default: this kit)")
    return p


def cmd_classroom(args: argparse.Namespace) -> int:
    """Run a parsed `classroom` command; `grade` returns 0 on full marks, 1 otherwise."""
    cmd = args.classroom_cmd
    try:
        if cmd == "student":
            from .edition import cmd_student
        elif cmd == "autograder":
            from .autograder import build_autograder
        else:
            from .grader import grade, grade_all
    except ImportError as e:
        if e.name and e.name.startswith("starter_code.classroom."):
            raise SystemExit(f"error: {INSTRUCTOR_ONLY.format(cmd=cmd)}") from None
        raise
    if cmd == "student":
        return cmd_student(args.out, args.src)
    if cmd == "autograder":
        out = build_autograder(args.out, args.src)
        print(f"Gradescope autograder written to {out}: upload it as the assignment's autograder (Ubuntu image)")
        return 0
    if cmd == "grade-all":
        grade_all(args.folder, args.csv, args.timeout, args.jobs, args.json_dir, args.run_as)
        print(f"gradebook written to {args.csv}")
        return 0
    results = grade(args.submission, args.json, args.timeout, args.parts, args.jobs, run_as=args.run_as)
    return 0 if all(r["points"] == r["max_points"] for r in results) else 1
