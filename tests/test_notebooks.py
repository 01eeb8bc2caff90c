"""Every notebook: committed clean, parameters cell first, the one setup cell, and executes in smoke mode."""

from __future__ import annotations

import json

import nbformat
import pytest

from starter_code.workspace import execute_notebooks, notebook_paths

NOTEBOOKS = notebook_paths()


def _code_cells(path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 9 and names[0] == "00_data_tour.ipynb" and names[-1] == "08_results_comparison.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean_with_parameters_cell_first(path) -> None:
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    for name in ("dataset", "data_root", "epochs", "image_size", "batch_size", "device", "smoke", "profile",
                 "REPO_URL"):
        assert f"\n{name} =" in first.source, f"{path.name}: parameters cell lacks {name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not cleared"
    # no training loop written in a notebook: the engine does it
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert ".backward(" not in code and "optimizer.step" not in code


def test_one_setup_cell_identical_in_every_notebook() -> None:
    setups = {p.name: _code_cells(p)[1].source for p in NOTEBOOKS}
    reference = setups["00_data_tour.ipynb"]
    assert all(src == reference for src in setups.values()), [n for n, s in setups.items() if s != reference]
    assert "S = setup(REPO_URL, dataset=dataset, data_root=data_root" in reference
    for p in NOTEBOOKS:  # the setup cell is the only place the kit is fetched or the workspace chosen
        later = "\n".join(c.source for c in _code_cells(p)[2:])
        assert "git clone" not in later and "setup(" not in later and "drive.mount" not in later, p.name


def test_parameters_cells_identical() -> None:
    params = {_code_cells(p)[0].source for p in NOTEBOOKS}
    assert len(params) == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_smoke_mode(path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path.parent / "smoke-shared"))  # shared so 02+ reuse the baseline
    execute_notebooks([path], tmp_path / "out", {"smoke": True}, timeout=600)
    executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, json.dumps(errors[:1])[:2000]
