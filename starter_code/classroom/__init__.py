"""Classroom mode: hand the kit out as an assignment and grade it.

- `edition`: the student edition, every solution region (`# BEGIN SOLUTION` / `# HINT:` / `# END SOLUTION`)
  replaced by `raise NotImplementedError("<hint>")`, with STUDENT.md and a `make test` that reports per part;
- `grader`: grades a submission by values only (its code runs in its own process on fresh random inputs; the
  outputs are compared with the kit's reference in the grader's process), with partial credit per named check;
- `autograder`: the Gradescope autograder package;
- `parts`: the parts, their points and checks; `todo`: the student edition's pytest plugin.

Importing this package (the CLI parser) imports no torch; the grader and the edition stay with the instructor.
"""

from .cli import add_classroom_parser, cmd_classroom
from .parts import PARTS, Part

__all__ = ["PARTS", "Part", "add_classroom_parser", "cmd_classroom"]
