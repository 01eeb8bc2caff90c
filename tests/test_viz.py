"""viz: per-image IoU, overlays, and the comparison plots drawn from given runs and predictions (no model runs)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from fake_runs import FakeVal, fake_run

from starter_code import viz
from starter_code.data.classes import dataset_info
from starter_code.viz import plt


@pytest.fixture(scope="module")
def runs():
    return {"baseline": fake_run("baseline", 0.30), "cosine": fake_run("cosine", 0.35)}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_per_image_iou_hand_made_case() -> None:
    target = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [255, 255, 2, 2]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 3],
                     [3, 3, 2, 0]])
    iou = viz.per_image_iou(pred, target, num_classes=5)
    # class 0: tp 3, gt 4, pred 4 (the void row's predictions do not count) -> 3 / 5
    # class 1: tp 3, gt 4, pred 4 -> 3 / 5; class 2: tp 1, gt 2, pred 1 -> 1 / 2
    # class 3: tp 0, gt 0, pred 1 -> 0; class 4: absent from both -> NaN
    assert iou[:4].tolist() == pytest.approx([3 / 5, 3 / 5, 1 / 2, 0.0])
    assert math.isnan(iou[4])
    assert viz.nan_mean(iou) == pytest.approx((3 / 5 + 3 / 5 + 1 / 2) / 4)
    assert math.isnan(viz.nan_mean(np.array([np.nan, np.nan])))


def test_per_image_iou_accepts_tensors_and_perfect_prediction() -> None:
    t = torch.tensor([[1, 1], [255, 0]])
    iou = viz.per_image_iou(t.clone(), t, 3)
    assert iou[:2].tolist() == [1.0, 1.0] and math.isnan(iou[2])


def test_image_score_never_ranks_all_background_above_a_prediction_that_found_the_object() -> None:
    classes = dataset_info("voc").classes
    cow = classes.index("cow")
    target = np.zeros((10, 10), dtype=np.int64)
    target[3:8, 2:8] = cow  # a cow on background, a void outline
    target[2, 2:8] = 255
    background = np.zeros_like(target)
    found = np.zeros_like(target)
    found[3:8, 3:8] = cow  # most of the cow, plus four small wrong guesses in the background
    for i, name in enumerate(("horse", "sheep", "dog", "cat")):
        found[0 if i < 2 else 9, 5 * (i % 2):5 * (i % 2) + 2] = classes.index(name)
    # the plain per-image mIoU (every class in either mask) ranks them the wrong way round:
    # background (bg 64/94, cow 0) / 2 = 0.34; found (bg 56/69, cow 25/30, four wrong classes 0) / 6 = 0.27
    plain = {k: viz.nan_mean(viz.per_image_iou(p, target, len(classes))) for k, p in
             (("background", background), ("found", found))}
    assert plain["background"] > plain["found"]
    score = {k: viz.image_score(p, target, classes) for k, p in (("background", background), ("found", found))}
    assert score["background"] == 0.0  # the cow's IoU; background is left out when an object is there
    assert score["found"] == pytest.approx(25 / 30)  # cow: 25 of the 30 cow pixels found, no false cow
    # an image of background only is scored on background; no labelled pixel: NaN
    only_bg = np.zeros((4, 4), dtype=np.int64)
    assert viz.image_score(only_bg, only_bg, classes) == 1.0
    assert math.isnan(viz.image_score(only_bg, np.full((4, 4), 255), classes))
    # a dataset without a background class (CamVid) averages every class of the ground truth
    camvid = dataset_info("camvid").classes
    assert viz.image_score(np.array([[0, 0], [1, 0]]), np.array([[0, 0], [1, 1]]), camvid) == pytest.approx(
        (2 / 3 + 1 / 2) / 2)


def test_overlay_keeps_void_and_blends() -> None:
    rgb = np.full((2, 2, 3), 0.5)
    mask = np.array([[0, 1], [255, 1]])
    palette = dataset_info("voc").palette
    out = viz.overlay(rgb, mask, palette, alpha=1.0)
    assert np.allclose(out[1, 0], 0.5)  # void: the image unchanged
    assert np.allclose(out[0, 1], palette[1] / 255)
    assert np.allclose(viz.overlay(rgb, mask, palette, alpha=0.0), rgb)


def test_image_rgb_undoes_normalisation_and_resizes_to_the_mask() -> None:
    img, mask = FakeVal()[0]
    rgb = viz.image_rgb(img)
    assert rgb.shape == (20, 24, 3) and 0.0 <= rgb.min() and rgb.max() <= 1.0
    raw = torch.full((3, 4, 4), 255, dtype=torch.uint8)
    assert np.allclose(viz.image_rgb(raw, (8, 6), normalized=False), 1.0)
    assert viz.image_rgb(raw, (8, 6), normalized=False).shape == (8, 6, 3)


def test_iou_frame_and_heatmap(runs, tmp_path) -> None:
    df = viz.iou_frame(runs)
    assert df.shape == (2, 21) and list(df.index) == ["baseline", "cosine"]
    assert df.loc["cosine", "background"] == pytest.approx(0.35) and math.isnan(df.loc["cosine", "boat"])
    fig = viz.plot_iou_heatmap(runs, tmp_path / "comparison_heatmap.png")
    assert (tmp_path / "comparison_heatmap.png").stat().st_size > 1000
    assert "IoU" in [ax.get_ylabel() for ax in fig.axes]  # the colorbar says what the colours mean
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["baseline  (mIoU 0.300)", "cosine  (mIoU 0.350)"]


def test_miou_curves_star_each_best_epoch(runs, tmp_path) -> None:
    fig = viz.plot_miou_curves(runs, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").is_file()
    lines = fig.axes[0].get_lines()
    curves = [ln for ln in lines if ln.get_marker() == "o"]
    stars = [ln for ln in lines if ln.get_marker() == "*"]
    assert [list(ln.get_ydata()) for ln in curves][1] == pytest.approx([0.35 / 3, 0.35 * 2 / 3, 0.35])
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in stars] == [(3, pytest.approx(0.3)),
                                                                       (3, pytest.approx(0.35))]


def test_lr_schedule_draws_plans_and_used_rates(tmp_path) -> None:
    planned = {"constant": [1e-3] * 3, "cosine": [1e-3, 5e-4, 1e-4]}
    used = {"cosine": [{"epoch": 1, "lr": 1e-3}, {"epoch": 2, "lr": 5e-4}]}
    fig = viz.plot_lr_schedule(planned, used, tmp_path / "lr.png")
    assert (tmp_path / "lr.png").is_file()
    lines = fig.axes[0].get_lines()
    assert [list(ln.get_xdata()) for ln in lines] == [[1, 2, 3], [1, 2, 3], [1, 2]]
    assert list(lines[1].get_ydata()) == [1e-3, 5e-4, 1e-4] and list(lines[2].get_ydata()) == [1e-3, 5e-4]
    assert lines[2].get_color() == lines[1].get_color()  # the used rates in their plan's colour
    assert lines[0].get_label() == "constant: planned (3 epochs)"


def test_side_by_side_labels_each_prediction_with_its_image_score(tmp_path) -> None:
    val = FakeVal()
    images, targets = [val[i][0] for i in (0, 2)], [val[i][1] for i in (0, 2)]
    wrong = [torch.zeros_like(t) for t in targets]
    fig = viz.plot_side_by_side(images, targets, {"perfect": targets, "background": wrong}, val.info,
                                ["val #0", "val #2"], tmp_path / "sbs.png")
    assert (tmp_path / "sbs.png").is_file()
    axes = fig.axes
    assert len(axes) == 2 * 4
    assert [ax.get_title() for ax in axes[:4]] == ["image", "ground truth", "perfect", "background"]
    assert axes[2].get_xlabel() == "object IoU 1.00"
    assert axes[3].get_xlabel() == "object IoU 0.00"  # background everywhere finds none of the objects
    assert viz.IMAGE_SCORE_MEANS in fig._suptitle.get_text()  # the panels say which score they show
    assert axes[4].get_ylabel() == "val #2"


def test_class_weights_bars_every_weight_column(tmp_path) -> None:
    import pandas as pd

    table = pd.DataFrame({"pixels": [9, 1], "inverse weight": [0.2, 1.8], "median weight": [0.5, 1.5]},
                         index=["bg", "a"])
    fig = viz.plot_class_weights(table, tmp_path / "w.png")
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [0.2, 0.5, 1.5, 1.8] and (tmp_path / "w.png").is_file()


def test_plot_history_marks_best_and_stop(runs) -> None:
    r = runs["cosine"]
    fig = viz.plot_history(r.history, best_epoch=2, stopped_epoch=3, title="cosine")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "best epoch (2)" in labels and "early stop (3)" in labels


def test_plot_history_names_the_stop_and_draws_the_unweighted_val_ce(runs) -> None:
    history = [{**h, "val_ce": h["val_loss"] / 2} for h in runs["cosine"].history]
    fig = viz.plot_history(history, best_epoch=3, stopped_epoch=3, stop_reason="budget", kept="last")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "last epoch (3)" in labels and "time budget (3)" in labels and "val CE (no class weights)" in labels
    same = viz.plot_history(runs["cosine"].history)  # no val_ce recorded (older runs): no third line
    assert "val CE (no class weights)" not in [t.get_text() for t in same.axes[0].get_legend().get_texts()]


def test_curves_skip_epochs_that_were_not_validated(runs, tmp_path) -> None:
    history = [dict(h) for h in runs["cosine"].history]
    for k in ("val_loss", "val_ce", "val_miou", "val_pixel_acc", "val_mean_class_acc"):
        history[1][k] = None  # a recipe validating every k-th epoch: epoch 2 not validated
    fig = viz.plot_history(history, best_epoch=3)
    miou = next(line for line in fig.axes[1].get_lines() if line.get_label() == "val mIoU")
    assert list(miou.get_xdata()) == [1, 3]
    run = replace(runs["cosine"], history=history)
    line = viz.plot_miou_curves({"cosine": run}, tmp_path / "c.png").axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [1, 3]
