"""The package's import layers: a module never imports one from a higher layer (not even inside a function),
and nothing in the package imports `notebook` (the notebooks' front door)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "starter_code"
# lowest first; a module may import its own layer's modules only where ALLOWED_SIDEWAYS says so
LAYERS = [
    {"config", "metrics", "distributed"},
    {"data"},
    {"models"},  # a model may use the data's normalisation constants
    {"checkpoint"},
    {"runs"},
    {"engine"},
    {"viz", "explorer", "report"},
    {"workspace", "notebook", "predict"},
    {"classroom"},
    {"cli"},
    {"__main__", "__init__"},
]
ALLOWED_SIDEWAYS = {("explorer", "viz"), ("report", "viz"), ("notebook", "workspace")}


def _layer(top: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if top in names)


def _imports(path: Path) -> set[str]:
    """Top-level starter_code modules imported by `path`, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(parts[:-1])[: len(parts) - node.level]
                mod = [*base, *(node.module or "").split(".")] if node.module else base
                names = [[*mod, a.name] for a in node.names] if not node.module else [mod]
                for n in names:
                    n = [x for x in n if x]
                    if n:
                        found.add(n[0])
            elif node.module and node.module.startswith("starter_code."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("starter_code."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent == PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_look_down(path) -> None:
    me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for other in _imports(path) - {me}:
        if other not in {n for layer in LAYERS for n in layer}:
            continue
        ok = _layer(other) < _layer(me) or (me, other) in ALLOWED_SIDEWAYS
        assert ok, f"{path.relative_to(PACKAGE)} imports starter_code.{other} (layer {_layer(other)} >= {_layer(me)})"


def test_nothing_in_the_package_imports_notebook() -> None:
    users = [str(p.relative_to(PACKAGE)) for p in MODULES if "notebook" in _imports(p) and p.stem != "notebook"]
    assert users == []


def test_the_parser_sees_imports() -> None:  # the checks above would pass vacuously if the walk found nothing
    assert {"config", "engine", "report", "runs", "viz", "workspace"} <= _imports(PACKAGE / "notebook.py")
    assert "engine" not in _imports(PACKAGE / "viz.py") and "runs" not in _imports(PACKAGE / "viz.py")
