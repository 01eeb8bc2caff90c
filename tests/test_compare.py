"""starter_code.compare: per-image IoU, expected runs, tables, figures and the explorer, on fake runs (no training)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from starter_code import compare
from starter_code.config import BASELINE
from starter_code.data.classes import dataset_info
from starter_code.data.transforms import normalize
from starter_code.engine import RunResult
from starter_code.models import build_model
from starter_code.viz import plt

NAN = float("nan")


class FakeVal:
    """A 3-image 'validation set' of 20x24 random images with masks holding classes 0, 1, 15 and void."""

    info = dataset_info("synthetic")

    def __init__(self, n: int = 3) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = [f"fake_{i}" for i in range(n)]
        self.items = []
        for _ in range(n):
            img = torch.randint(0, 256, (3, 20, 24), generator=g, dtype=torch.uint8)
            mask = torch.zeros(20, 24, dtype=torch.long)
            mask[5:15, 4:12], mask[2:8, 14:22], mask[0, :] = 1, 15, 255
            self.items.append((normalize(img), mask))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def fake_run(name: str, miou: float, epochs: int = 3, model: str = "baseline") -> RunResult:
    classes = list(dataset_info("voc").classes)
    torch.manual_seed(len(name))
    cfg = replace(BASELINE, name=name, model=model, epochs=epochs)
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "val_miou": miou * e / epochs,
                "val_pixel_acc": 0.5 + 0.1 * e, "val_mean_class_acc": 0.1 * e, "lr": 1e-3, "seconds": 1.0}
               for e in range(1, epochs + 1)]
    iou = {c: (NAN if i % 5 == 4 else miou) for i, c in enumerate(classes)}
    metrics = {"split": "val", "epoch": epochs, "pixel_acc": 0.8, "mean_class_acc": 0.3, "miou": miou,
               "fw_iou": 0.7, "loss": 1.0, "iou": iou, "class_acc": iou, "num_pixels": 100}
    model_ = build_model(model, num_classes=len(classes)).eval()
    return RunResult(cfg, Path(f"runs/{name}-synthetic"), model_, history, metrics, epochs, None, classes)


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
    iou = compare.per_image_iou(pred, target, num_classes=5)
    # class 0: tp 3, gt 4, pred 4 (the void row's predictions do not count) -> 3 / 5
    # class 1: tp 3, gt 4, pred 4 -> 3 / 5; class 2: tp 1, gt 2, pred 1 -> 1 / 2
    # class 3: tp 0, gt 0, pred 1 -> 0; class 4: absent from both -> NaN
    assert iou[:4].tolist() == pytest.approx([3 / 5, 3 / 5, 1 / 2, 0.0])
    assert math.isnan(iou[4])
    table = compare.image_iou_table(pred, target, ["a", "b", "c", "d", "e"])
    assert list(table.index) == ["a", "b", "c", "d"]
    assert table.loc["c", "ground-truth pixels"] == 2 and table.loc["d", "predicted pixels"] == 1


def test_per_image_iou_accepts_tensors_and_perfect_prediction() -> None:
    t = torch.tensor([[1, 1], [255, 0]])
    iou = compare.per_image_iou(t.clone(), t, 3)
    assert iou[:2].tolist() == [1.0, 1.0] and math.isnan(iou[2])


def test_expected_missing(runs) -> None:
    missing = compare.expected_missing(runs)
    assert missing == ["augment", "weighted", "dropout", "resnet34_fcn", "resnet34_unet", "unet"]
    # a run keyed by its folder still counts through its config name
    assert "cosine" not in compare.expected_missing({"cosine-voc": runs["cosine"]})
    assert compare.expected_missing(runs, ["baseline", "unet"]) == ["unet"]
    assert compare.expected_missing({}, ["baseline"]) == ["baseline"]


def test_results_table_has_the_three_metrics_and_delta(runs) -> None:
    df = compare.results_table(runs)
    assert list(df.index) == ["baseline", "cosine"]
    for col in ("pixel accuracy", "mean class accuracy", "mIoU"):
        assert col in df.columns
    assert df.loc["cosine", "mIoU vs baseline"] == pytest.approx(0.05)
    assert compare.iou_frame(runs).shape == (2, 21)


def test_heatmap_and_curves_write_files(runs, tmp_path) -> None:
    fig = compare.plot_iou_heatmap(runs, tmp_path / "comparison_heatmap.png")
    assert (tmp_path / "comparison_heatmap.png").stat().st_size > 1000
    cbar_labels = [ax.get_ylabel() for ax in fig.axes]
    assert "IoU" in cbar_labels
    compare.plot_miou_curves(runs, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").is_file()
    cfgs = {k: replace(r.config, scheduler="cosine" if k == "cosine" else None) for k, r in runs.items()}
    compare.plot_lr_schedule(cfgs, {k: r.history for k, r in runs.items()}, tmp_path / "lr.png")
    assert (tmp_path / "lr.png").is_file()


def test_side_by_side_and_render_view(runs, tmp_path) -> None:
    val = FakeVal()
    fig = compare.plot_side_by_side(runs, val, [0, 2], tmp_path / "sbs.png")
    assert (tmp_path / "sbs.png").is_file()
    assert len(fig.axes) == 2 * (2 + len(runs))
    for mode in compare.VIEW_MODES:
        fig, table = compare.render_view(runs, val, "cosine", 1, mode, 0.3)
        assert table["IoU"].between(0, 1).all()
    with pytest.raises(ValueError):
        compare.render_view(runs, val, mode="bogus")


def test_explorer_builds_on_two_fake_runs(runs) -> None:
    pytest.importorskip("ipywidgets")
    ui = compare.explorer(runs, FakeVal())
    c = ui.controls
    assert list(c["run"].options) == ["baseline", "cosine"]
    assert c["index"].max == 2
    assert c["mode"].value == "overlay" and not c["alpha"].disabled
    c["run"].value = "cosine"  # every control change redraws without error
    c["index"].value = 2
    c["alpha"].value = 0.8
    c["mode"].value = "side by side"
    assert c["alpha"].disabled


def test_overlay_keeps_void_and_blends() -> None:
    rgb = np.full((2, 2, 3), 0.5)
    mask = np.array([[0, 1], [255, 1]])
    out = compare.overlay(rgb, mask, dataset_info("voc").palette, alpha=1.0)
    assert np.allclose(out[1, 0], 0.5)  # void: the image unchanged
    assert np.allclose(out[0, 1], dataset_info("voc").palette[1] / 255)
    assert np.allclose(compare.overlay(rgb, mask, dataset_info("voc").palette, alpha=0.0), rgb)


def test_load_runs_reads_run_dirs_and_filters_dataset(runs, tmp_path) -> None:
    for name, r in runs.items():
        for dataset in ("synthetic", "voc"):
            d = tmp_path / f"{name}-{dataset}"
            d.mkdir()
            cfg = replace(r.config, dataset=dataset).to_dict()
            torch.save({"model": r.model.state_dict(), "config": cfg, "classes": r.classes}, d / "best.pt")
            (d / "config.json").write_text(json.dumps(cfg))
            (d / "metrics.json").write_text(json.dumps(r.metrics))
            (d / "history.json").write_text(json.dumps({"history": r.history, "best_epoch": r.best_epoch,
                                                        "stopped_epoch": None}))
    (tmp_path / "broken-synthetic").mkdir()
    (tmp_path / "broken-synthetic" / "metrics.json").write_text("{}")
    loaded = compare.load_runs(tmp_path, dataset="voc", verbose=False)
    assert list(loaded) == ["baseline", "cosine"]
    assert all(r.config.dataset == "voc" for r in loaded.values())
    both = compare.load_runs(tmp_path, verbose=False)  # names clash across datasets: keyed by folder
    assert sorted(both) == ["baseline-synthetic", "baseline-voc", "cosine-synthetic", "cosine-voc"]
    assert compare.expected_missing(both)[:2] == ["augment", "weighted"]


def test_class_weight_table_matches_engine_weights() -> None:
    from starter_code.data.stats import class_weights

    stats = {"classes": ["bg", "a", "b"], "pixels": [900, 90, 0], "images": [10, 5, 0],
             "image_pixels": [1000, 500, 0]}
    cfgs = {"inverse": replace(BASELINE, class_weights="inverse"),
            "median": replace(BASELINE, class_weights="median", weight_clip=10.0)}
    df = compare.class_weight_table(stats, cfgs)
    assert df["inverse weight"].tolist() == pytest.approx(class_weights(stats, "inverse"))
    assert df["median weight"].tolist() == pytest.approx(class_weights(stats, "median", 10.0))
    assert df.loc["b", "inverse weight"] == 0.0
    assert df["% of labelled pixels"].sum() == pytest.approx(100)


def test_results_markdown_doc_names_command_and_missing(tmp_path) -> None:
    text = compare.results_markdown_doc(tmp_path, "make run", "offline", "synthetic")
    assert "make run" in text and "| run | model |" in text
    assert "baseline, cosine, augment" in text
