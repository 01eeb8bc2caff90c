"""Every notebook: committed clean, parameters cell first, the one setup cell (autoreload on), metadata JupyterLab
and Colab keep as they are, check cells that assert; notebook 00 executes in smoke mode (01-08 run on a simulated
Colab VM in tests/test_colab_simulation.py); executing prints no kernel transport warning."""

from __future__ import annotations

import ast
import json
import re

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


def test_setup_cell_enables_autoreload_before_the_kit_is_imported() -> None:
    setup = _code_cells(NOTEBOOKS[0])[1].source
    assert "%load_ext autoreload\n%autoreload 2\n" in setup  # mode 2: every changed module, before each cell
    assert setup.index("%autoreload 2") < setup.index("from starter_code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_metadata_is_what_the_kernel_reports(path) -> None:
    """JupyterLab rewrites kernelspec and language_info from the kernel when a notebook opens and marks it unsaved
    if they change; Colab picks its runtime from the kernelspec. Committed, they must already be the kernel's."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    meta = nbformat.read(path, as_version=4).metadata
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert meta["kernelspec"] == {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    reported = dict(IPythonKernel.language_info)
    assert {k: v for k, v in meta["language_info"].items() if k != "version"} == \
        {k: v for k, v in reported.items() if k != "version"}
    assert meta["language_info"]["version"].startswith("3.")  # the Python that wrote it; a student's may differ
    assert set(meta) == {"kernelspec", "language_info"}  # no papermill or widget state committed


def _is_check(node: ast.AST) -> bool:
    name = getattr(getattr(node, "func", None), "attr", getattr(getattr(node, "func", None), "id", ""))
    if isinstance(node, ast.BoolOp):
        return any(_is_check(v) for v in node.values)
    return (isinstance(node, ast.Compare) and not isinstance(node.ops[0], (ast.In, ast.NotIn))) or \
        name in ("allclose", "equal", "isclose", "array_equal")


def _printed_checks(source: str) -> list[str]:
    """print(...) calls that show a check's True/False (a comparison or allclose/equal/isclose as a printed value):
    such a check passes CI whatever it prints. Comparisons that only choose the words printed are fine."""
    code = "\n".join("" if line.lstrip().startswith("%") else line for line in source.splitlines())
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
            values = [v.value if isinstance(v, ast.FormattedValue) else v for arg in node.args
                      for v in (arg.values if isinstance(arg, ast.JoinedStr) else [arg])]
            if any(_is_check(v) for v in values):
                found.append(ast.unparse(node))
    return found


def test_printed_checks_are_found() -> None:
    assert _printed_checks('print("identical:", a == b)\nprint(f"x {y:.3f}")\n%matplotlib inline') == \
        ["print('identical:', a == b)"]
    assert _printed_checks("print(torch.allclose(a, b))") and _printed_checks('print(f"same: {a == b}")')
    assert _printed_checks('print("identical:", a == b and c == d)')
    assert not _printed_checks('print("a == b: True")\nprint(f"{\'up\' if a > b else \'down\'}")')


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_check_cells_assert_rather_than_print(path) -> None:
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            assert not _printed_checks(cell.source), f"{path.name}: assert it: {_printed_checks(cell.source)}"


def test_try_it_suggestions_train_under_a_new_name() -> None:
    """A config that changes a course experiment and is trained (or suggested for training in the text) must get
    its own name, its own run directory, or train_or_load would retrain over the course's run."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            calls = re.findall(r"S\.config\([^()]*(?:\([^()]*\)[^()]*)*\)", cell.source)
            if cell.cell_type == "code":  # in code only what is trained; a config costed or inspected is harmless
                calls = [c for c in calls if f"train_or_load({c}" in cell.source]
            for call in calls:
                if "," in call:  # overrides beyond the experiment's name
                    assert "name=" in call, f"{path.name}: {call}"


def test_executing_prints_no_kernel_transport_warning(tmp_path, capfd) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, tmp_path / "one.ipynb")
    execute_notebooks([tmp_path / "one.ipynb"], tmp_path / "out")
    out = nbformat.read(tmp_path / "out" / "one.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"] == "42\n"
    captured = capfd.readouterr()  # the kernel process writes to the same file descriptors
    assert "without encryption" not in captured.out + captured.err
    assert not [p.name for p in tmp_path.iterdir() if "ipc" in p.name]  # no sockets left in the notebook's folder


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS[:1], ids=lambda p: p.name)  # 01-08: tests/test_colab_simulation.py
def test_notebook_executes_in_smoke_mode(path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path.parent / "smoke-shared"))  # shared so 02+ reuse the baseline
    execute_notebooks([path], tmp_path / "out", {"smoke": True}, timeout=600)
    executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, json.dumps(errors[:1])[:2000]


@pytest.mark.slow
def test_skipping_augment_strong_as_notebook_03_suggests_leaves_it_running(tmp_path, monkeypatch) -> None:
    path = next(p for p in NOTEBOOKS if p.name.startswith("03"))
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "# comment out to skip it" in c.source)
    cell.source = "\n".join("# " + line if "# comment out to skip it" in line else line
                            for line in cell.source.splitlines())
    nbformat.write(nb, tmp_path / path.name)
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path / "smoke"))
    execute_notebooks([tmp_path / path.name], tmp_path / "out", {"smoke": True}, timeout=600)
    executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, json.dumps(errors[:1])[:2000]
    assert not (tmp_path / "smoke" / "runs" / "augment_strong-synthetic").exists()
