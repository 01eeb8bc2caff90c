"""The student edition's pytest plugin: what is done, what is still to do, never a wall of errors.

The edition's root conftest.py imports these hooks. A test that reaches an exercise not written yet (a
`raise NotImplementedError("<hint>")` left in place) is reported as xfail "to do" instead of failing, end-to-end
runs (marked slow) wait until every part is done, and the summary lists each part: to do, done, or failing.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .parts import LOCATIONS, PARTS

_STATE: dict[str, Any] = {"todo": {}, "tally": {}}


def _function(tree: ast.Module, qualname: str) -> ast.AST | None:
    nodes: list[ast.AST] = list(tree.body)
    found: ast.AST | None = None
    for name in qualname.split("."):
        found = next((n for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None)
        if found is None:
            return None
        nodes = list(getattr(found, "body", []))
    return found


def _is_stub(node: ast.AST) -> bool:
    """`raise NotImplementedError("...")`: the line a solution region became."""
    exc = getattr(node, "exc", None)
    return (isinstance(node, ast.Raise) and isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name)
            and exc.func.id == "NotImplementedError" and bool(exc.args))


def unfinished(root: str | Path) -> dict[str, list[str]]:
    """Part name -> its functions that still hold a stub, for every part not finished in the kit at `root`."""
    out: dict[str, list[str]] = {}
    for part in PARTS:
        for fn in part.functions:
            head, _, rest = fn.partition(".")
            module, qual = LOCATIONS[head].split(":")
            qual = f"{qual}.{rest}" if rest else qual
            path = Path(root, *module.split(".")).with_suffix(".py")
            try:
                node = _function(ast.parse(path.read_text(encoding="utf-8")), qual)
            except (OSError, SyntaxError):
                continue
            if node is not None and any(_is_stub(n) for n in ast.walk(node)):
                out.setdefault(part.name, []).append(fn)
    return out


def _part_of(item: pytest.Item) -> str | None:
    name = Path(str(item.fspath)).name
    if name.startswith("test_part_") and name.endswith(".py"):
        return name[len("test_part_"):-3]
    return None


def pytest_configure(config: pytest.Config) -> None:
    _STATE["todo"] = unfinished(config.rootpath)
    _STATE["tally"] = {p.name: Counter() for p in PARTS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    todo = _STATE["todo"]
    if not todo:
        return
    reason = f"end-to-end run: waits until every part is done (to do: {', '.join(todo)})"
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        exc = call.excinfo
        stub = exc is not None and exc.errisinstance(NotImplementedError) and bool(exc.value.args)
        if stub or (_STATE["todo"] and "NotImplementedError" in str(rep.longrepr)):
            hint = str(exc.value) if stub and exc is not None else "an exercise is not written yet"
            rep.outcome = "skipped"
            rep.wasxfail = f"to do: {hint}"
    part = _part_of(item)
    if part in _STATE["tally"] and (rep.when == "call" or rep.outcome != "passed"):
        key = "todo" if hasattr(rep, "wasxfail") and rep.outcome == "skipped" else rep.outcome
        _STATE["tally"][part][key] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tr = terminalreporter
    todo, tally = _STATE["todo"], _STATE["tally"]
    if not any(tally.values()) and not todo:
        return
    tr.section("exercise parts")
    for p in PARTS:
        t = tally.get(p.name, Counter())
        if p.name in todo:
            status = "to do"
        elif t["failed"]:
            status = "FAILING"
        else:
            status = "done"
        counts = ", ".join(f"{n} {k.replace('todo', 'to do')}" for k, n in sorted(t.items()) if n) or "not run"
        tr.write_line(f"{p.name:<16s} {status:<8s} {p.points:>3d} points   public tests: {counts}   ({p.where})")
    if todo:
        tr.write_line(f"{len(todo)} of {len(PARTS)} parts still to do; tests that reach them are reported as "
                      "xfail 'to do'. See STUDENT.md.")
