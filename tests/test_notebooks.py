"""Every notebook: committed clean, parameters cell first, and executes top to bottom in smoke mode."""

from __future__ import annotations

import json

import nbformat
import pytest

from starter_code.notebook import execute_notebooks, notebook_paths

NOTEBOOKS = notebook_paths()


def test_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert "00_data_tour.ipynb" in names and "01_baseline_fcn.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean_with_parameters_cell_first(path) -> None:
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    for name in ("dataset", "data_root", "epochs", "image_size", "device", "smoke"):
        assert f"{name} =" in first.source, f"{path.name}: parameters cell lacks {name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not cleared"
    # no training loop written in a notebook: the engine does it
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert ".backward(" not in code and "optimizer.step" not in code


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_smoke_mode(path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path.parent / "smoke-shared"))  # shared so 02+ reuse the baseline
    execute_notebooks([path], tmp_path / "out", {"smoke": True}, timeout=600)
    executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, json.dumps(errors[:1])[:2000]


def test_profiles_resolve_to_configs() -> None:
    from starter_code.notebook import settings

    colab = settings(profile="colab", quiet=True)
    cfg = colab.config("cosine")
    assert (cfg.dataset, cfg.epochs, cfg.image_size, cfg.batch_size) == ("voc", 30, 224, 16)
    assert cfg.cache and cfg.scheduler == "cosine"  # Colab decodes once into memory; the experiment's diff kept
    offline = settings(profile="offline", quiet=True)
    assert not offline.config().cache and offline.config().dataset == "synthetic"
    assert offline.config("camvid_fast").cache  # an experiment's own cache=True is not switched off
    smoke = settings(profile="smoke", quiet=True)
    assert (smoke.config().epochs, smoke.config().limit_train) == (1, 32)
