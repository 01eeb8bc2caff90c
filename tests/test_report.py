"""report: a run's standard figures, the comparison tables, and the docs written from run directories."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_runs import FakeVal, fake_run, save_run

from starter_code import report
from starter_code.config import EXPERIMENTS
from starter_code.runs import list_runs, load_run, results_markdown


@pytest.fixture(scope="module")
def runs():
    return {"baseline": fake_run("baseline", 0.30), "cosine": fake_run("cosine", 0.35)}


def test_save_run_figures_writes_the_three_figures(runs, tmp_path) -> None:
    paths = report.save_run_figures(runs["cosine"], FakeVal(), tmp_path, n=2)
    assert {k: p.name for k, p in paths.items()} == {"curves": "cosine_synthetic_curves.png",
                                                     "masks": "cosine_synthetic_masks.png",
                                                     "class_iou": "cosine_synthetic_class_iou.png"}
    assert all(p.stat().st_size > 1000 for p in paths.values())


def test_class_iou_delta_and_loss_gap(runs) -> None:
    delta = report.class_iou_delta(runs)
    assert list(delta.columns) == ["baseline", "cosine", "cosine - baseline"]
    assert delta.loc["background", "cosine - baseline"] == pytest.approx(0.05)
    gap = report.loss_gap_table(runs)
    assert gap.loc["baseline", "epoch"] == 3  # the best epoch's row
    assert gap.loc["baseline", "gap (val - train)"] == pytest.approx(2.2 / 3 - 2.0 / 3)


def test_transfer_table_reads_each_config(runs) -> None:
    scratch = fake_run("resnet34_fcn_scratch", 0.2, cfg=EXPERIMENTS["resnet34_fcn_scratch"])
    pretrained = fake_run("resnet34_fcn", 0.4, cfg=EXPERIMENTS["resnet34_fcn"])
    df = report.transfer_table({"baseline": runs["baseline"], "resnet34_fcn": pretrained,
                                "resnet34_fcn_scratch": scratch})
    assert df["encoder init"].tolist() == ["random (no encoder to pretrain)", "ImageNet", "random (scratch)"]
    assert df["encoder lr"].isna().tolist() == [True, False, False]
    assert df.loc["resnet34_fcn", "encoder lr"] == 1e-4 and df.loc["resnet34_fcn_scratch", "encoder lr"] == 1e-3
    assert df.loc["resnet34_fcn", "mIoU vs baseline"] == pytest.approx(0.1)
    assert df.loc["baseline", "parameters"] == sum(p.numel() for p in runs["baseline"].model.parameters())


def _write(tmp_path, names_miou, dataset="synthetic"):
    for name, miou in names_miou.items():
        save_run(fake_run(name, miou, dataset=dataset), tmp_path)


def test_results_doc_holds_the_one_table_and_the_missing_runs(tmp_path) -> None:
    _write(tmp_path, {"cosine": 0.35, "baseline": 0.30})
    _write(tmp_path, {"baseline": 0.5}, dataset="voc")
    text = report.results_markdown_doc(tmp_path, "make run", "offline", "synthetic")
    assert text.startswith("## synthetic\n") and "(profile offline, dataset synthetic)" in text
    assert "```bash\nmake run\n```" in text
    assert results_markdown(list_runs(tmp_path, dataset="synthetic")) in text  # the one results table
    assert "| voc |" not in text
    assert "Expected runs not found on synthetic: augment, augment_strong, weighted, dropout," in text
    only = report.results_markdown_doc(tmp_path, "make run", "offline", "synthetic", expected=["baseline", "cosine"])
    assert "Expected runs not found" not in only


def test_write_results_doc_links_figures_and_assemble_joins_sections(tmp_path) -> None:
    runs_dir, docs = tmp_path / "runs", tmp_path / "docs"
    _write(runs_dir, {"baseline": 0.3})
    fig = tmp_path / "figures" / "comparison_synthetic_miou_curves.png"
    path = report.write_results_doc(docs / "results" / "synthetic.md", runs_dir, "make run", "offline", "synthetic",
                                    [fig], expected=["baseline"])
    assert "[comparison_synthetic_miou_curves.png](../../figures/comparison_synthetic_miou_curves.png)" in \
        path.read_text()
    (docs / "results" / "camvid.md").write_text("## camvid\n\nsection\n")
    out = report.assemble_results(docs)
    text = out.read_text()
    assert out == docs / "RESULTS.md" and text.startswith("# Results\n")
    assert text.index("## camvid") < text.index("## synthetic")  # sections in file-name order
    assert "](../figures/comparison_synthetic_miou_curves.png)" in text  # one folder up from docs/results/


def test_run_section_reproduces_the_run(tmp_path) -> None:
    run = fake_run("camvid_fast", 0.5, cfg=replace(EXPERIMENTS["camvid_fast"], epochs=3))
    d = save_run(run, tmp_path)
    text = report.run_section(d, "CamVid in 30 minutes", "intro")
    assert text.startswith("## CamVid in 30 minutes\n\nintro\n")
    assert f"--experiment camvid_fast --dataset camvid --data-root data/camvid --out {d.as_posix()}" in text
    assert "model='unet_small'" in text and "name=" not in text.split("Config (diff from BASELINE): ")[1][:40]
    assert "**0.1 min**" in text  # fit_seconds 3.0
    assert results_markdown([load_run(d, weights=False)]) in text
    assert "scored val mIoU 0.5000" in text and "| 0.500 |" in text
