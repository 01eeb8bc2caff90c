"""explorer: the per-image IoU table, a static view of any run and image, and the ipywidgets explorer."""

from __future__ import annotations

import numpy as np
import pytest
from fake_runs import FakeVal, fake_run

from starter_code import explorer
from starter_code.viz import plt


@pytest.fixture(scope="module")
def runs():
    return {"baseline": fake_run("baseline", 0.30), "cosine": fake_run("cosine", 0.35)}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_iou_table_lists_the_classes_present() -> None:
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 3], [3, 3, 2, 0]])
    table = explorer.image_iou_table(pred, target, ["a", "b", "c", "d", "e"])
    assert list(table.index) == ["a", "b", "c", "d"]  # e is in neither: no row
    assert table.loc["c", "ground-truth pixels"] == 2 and table.loc["d", "predicted pixels"] == 1
    assert table.loc["a", "IoU"] == pytest.approx(3 / 5) and table.loc["d", "IoU"] == 0.0


def test_render_view_in_both_modes(runs, tmp_path) -> None:
    val = FakeVal()
    for mode in explorer.VIEW_MODES:
        fig, table = explorer.render_view(runs, val, "cosine", 1, mode, 0.3, path=tmp_path / f"{mode}.png")
        assert table["IoU"].between(0, 1).all() and set(table.index) >= {"background", "aeroplane", "person"}
        assert len(fig.axes) == (2 if mode == "overlay" else 3)
        assert fig._suptitle.get_text().startswith("cosine | val image #1 (fake_1)")
        assert (tmp_path / f"{mode}.png").is_file()
    fig, _ = explorer.render_view(runs, val)  # the opening view: first run, image 0, overlay
    assert fig._suptitle.get_text().startswith("baseline | val image #0")
    with pytest.raises(ValueError, match="unknown mode"):
        explorer.render_view(runs, val, mode="bogus")
    with pytest.raises(ValueError, match="no runs"):
        explorer.render_view({}, val)


def test_render_view_needs_the_run_weights(runs) -> None:
    from dataclasses import replace

    light = {"baseline": replace(runs["baseline"], model=None)}
    with pytest.raises(ValueError, match="weights=True"):
        explorer.render_view(light, FakeVal())


def test_render_view_caches_predictions(runs) -> None:
    cache: dict = {}
    explorer.render_view(runs, FakeVal(), "cosine", 2, _cache=cache)
    assert list(cache) == [("cosine", 2)]
    img, target, pred = cache[("cosine", 2)]
    assert pred.shape == target.shape == (20, 24)


def test_explorer_builds_on_two_fake_runs(runs) -> None:
    pytest.importorskip("ipywidgets")
    ui = explorer.explorer(runs, FakeVal())
    c = ui.controls
    assert list(c["run"].options) == ["baseline", "cosine"]
    assert c["index"].max == 2
    assert c["mode"].value == "overlay" and not c["alpha"].disabled
    c["run"].value = "cosine"  # every control change redraws without error
    c["index"].value = 2
    c["alpha"].value = 0.8
    c["mode"].value = "side by side"
    assert c["alpha"].disabled
