"""report: a run's standard figures, the comparison tables, and the docs written from run directories."""

from __future__ import annotations

import math
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
    assert gap.loc["baseline", "gap (val CE - train)"] == pytest.approx(2.2 / 3 - 2.0 / 3)
    weighted = fake_run("weighted", 0.2, class_weights="inverse")
    for h in weighted.history:  # a weighted run: its val loss is weighted, its val CE is not
        h["val_ce"], h["val_loss"] = 0.5, 9.0
    assert report.loss_gap_table({"weighted": weighted}).loc["weighted", "val CE"] == 0.5


def test_transfer_table_reads_each_config(runs) -> None:
    scratch = fake_run("resnet34_fcn_scratch", 0.2, cfg=EXPERIMENTS["resnet34_fcn_scratch"])
    pretrained = fake_run("resnet34_fcn", 0.4, cfg=EXPERIMENTS["resnet34_fcn"])
    df = report.transfer_table({"baseline": runs["baseline"], "resnet34_fcn": pretrained,
                                "resnet34_fcn_scratch": scratch})
    assert df["encoder init"].tolist() == ["random (no encoder to pretrain)", "ImageNet", "random (scratch)"]
    assert df["encoder lr"].isna().tolist() == [True, False, False]
    assert df.loc["resnet34_fcn", "encoder lr"] == 1e-4 and df.loc["resnet34_fcn_scratch", "encoder lr"] == 1e-3
    assert df.loc["resnet34_fcn", "mIoU vs baseline"] == pytest.approx(0.1)
    seeds = _seeds([0.3, 0.2])  # the reference is the mean over its seeds, as in the spread tables
    with_seeds = report.transfer_table({**seeds, "resnet34_fcn": pretrained})
    assert with_seeds.loc["resnet34_fcn", "mIoU vs baseline"] == pytest.approx(0.15)
    assert df.loc["baseline", "parameters"] == sum(p.numel() for p in runs["baseline"].model.parameters())


def _write(tmp_path, names_miou, dataset="synthetic"):
    for name, miou in names_miou.items():
        save_run(fake_run(name, miou, dataset=dataset), tmp_path)


def _seeds(values, name="baseline", **fields):
    """Runs of one experiment at seeds 0, 1, ... with the given mIoU values, keyed as list_runs keys them."""
    return {(name if i == 0 else f"{name}-seed{i}"): fake_run(name, v, seed=i, **fields)
            for i, v in enumerate(values)}


def test_spread_is_mean_and_sample_std_over_seeds() -> None:
    s = report.Spread("baseline", "mIoU", (0.1, 0.11, 0.12))
    assert s.n == 3 and s.mean == pytest.approx(0.11) and s.std == pytest.approx(0.01)
    assert s.text() == "0.110 ± 0.010 (3 seeds)"
    one = report.Spread("cosine", "mIoU", (0.1,))
    assert math.isnan(one.std) and one.text() == "0.100"


def test_seed_runs_fold_into_one_row_and_others_stay_apart() -> None:
    runs = {**_seeds([0.10, 0.11, 0.12]), "cosine": fake_run("cosine", 0.2, scheduler="cosine")}
    assert report.seed_groups(runs) == {"baseline": ["baseline", "baseline-seed1", "baseline-seed2"],
                                        "cosine": ["cosine"]}
    rows = {r["experiment"]: r for r in report.spread_rows(runs)}
    assert rows["baseline"]["seeds"] == 3 and rows["baseline"]["mIoU"] == pytest.approx(0.11)
    assert rows["baseline"]["mIoU std"] == pytest.approx(0.01) and math.isnan(rows["cosine"]["mIoU std"])
    # same name, another recipe: not a seed of the baseline
    other = {**runs, "baseline-lr": fake_run("baseline", 0.3, lr=0.5)}
    assert report.seed_groups(other)["baseline-lr"] == ["baseline-lr"]


def test_compare_says_whether_a_difference_exceeds_the_seed_spread() -> None:
    runs = {**_seeds([0.096, 0.102, 0.108]), "cosine": fake_run("cosine", 0.100, scheduler="cosine"),
            "unet": fake_run("unet", 0.2, model="unet"), "weighted": fake_run("weighted", 0.04)}
    assert report.compare(runs, "cosine") == ("cosine 0.100 vs baseline 0.102 ± 0.006 (3 seeds): "
                                              "within seed noise at this budget")
    assert report.compare(runs, "unet").endswith(": above the seed spread at this budget")
    assert report.compare(runs, "weighted").endswith(": below the seed spread at this budget")
    assert report.compare(runs, "weighted", metric="pixel accuracy").startswith(
        "weighted 0.800 vs baseline 0.800 ± 0.000 (3 seeds) (pixel accuracy): ")
    single = {"baseline": fake_run("baseline", 0.1), "cosine": runs["cosine"]}
    assert report.compare(single, "cosine").endswith("no seed spread to judge it by")
    with pytest.raises(KeyError, match="no run of 'dropout'"):
        report.compare(runs, "dropout")


def test_spread_table_shows_plus_minus_and_the_verdict() -> None:
    runs = {**_seeds([0.096, 0.102, 0.108]), "unet": fake_run("unet", 0.2, model="unet")}
    df = report.spread_table(runs)
    assert list(df.index) == ["baseline", "unet"]
    assert df.loc["baseline", "mIoU"] == "0.1020 ± 0.0060" and df.loc["unet", "mIoU"] == "0.2000"
    assert df.loc["baseline", "seeds"] == 3 and df.loc["baseline", "mIoU vs baseline"] == ""
    assert df.loc["unet", "mIoU vs baseline"] == "+0.0980 (above the seed spread at this budget)"
    md = report.spread_markdown(runs)
    assert md.splitlines()[0].startswith("| experiment | model | seeds | pixel accuracy |")
    assert "| baseline | baseline | 3 | 0.8000 ± 0.0000 |" in md


def test_the_reports_numbers_live_in_one_table_beside_ours() -> None:
    assert report.REPORT_NUMBERS["baseline"]["pixel accuracy"] == 0.7377
    assert report.REPORT_NUMBERS["resnet34_fcn"]["mIoU"] == 0.1875
    runs = {**_seeds([0.1, 0.2]), "unet_cpu": fake_run("unet_cpu", 0.3, model="unet")}
    df = report.beside_the_report(runs)
    assert list(df.index) == list(report.REPORT_NUMBERS)
    assert df.loc["baseline", "ours: mIoU"] == pytest.approx(0.15) and df.loc["baseline", "our seeds"] == 2
    assert df.loc["unet", "our run"] == "unet_cpu"  # the CPU-sized U-Net stands in for the report's
    scratch = report.beside_the_report({**runs, "resnet34_fcn_scratch": fake_run("resnet34_fcn_scratch", 0.05)})
    assert scratch.loc["resnet34_fcn", "our run"] == "resnet34_fcn_scratch"  # named: never passed off as pretrained
    both = {**runs, "resnet34_fcn_scratch": fake_run("resnet34_fcn_scratch", 0.05),
            "resnet34_fcn": fake_run("resnet34_fcn", 0.25)}
    assert report.beside_the_report(both).loc["resnet34_fcn", "our run"] == "resnet34_fcn"  # the real one first
    assert df.loc["cosine", "our run"] == "" and math.isnan(df.loc["cosine", "ours: mIoU"])
    text = report.report_caveats("synthetic")
    for reason in ("void", "per batch", "random half"):
        assert reason in text
    assert "synthetic" in text and "synthetic" not in report.report_caveats("voc")


def test_results_doc_holds_the_spread_table_the_report_and_the_missing_runs(tmp_path) -> None:
    _write(tmp_path, {"cosine": 0.35, "baseline": 0.30})
    _write(tmp_path, {"baseline": 0.5}, dataset="voc")
    for seed, miou in ((1, 0.32), (2, 0.34)):  # seeds live in their own run directories
        d = save_run(fake_run("baseline", miou, seed=seed), tmp_path / f"s{seed}")
        d.rename(tmp_path / f"baseline-synthetic-seed{seed}")
    text = report.results_markdown_doc(tmp_path, "make run", "offline", "synthetic")
    assert text.startswith("## synthetic\n") and "(profile offline, dataset synthetic)" in text
    assert "```bash\nmake run\n```" in text
    assert report.spread_markdown(list_runs(tmp_path, dataset="synthetic", verbose=False)) in text
    assert "| baseline | baseline | 3 |" in text and "0.3200 ± 0.0200" in text
    assert "mIoU of each seed: baseline: 0.3000, 0.3200, 0.3400 (seeds 0, 1, 2)." in text
    assert "| voc |" not in text and "0.5000" not in text
    assert "Expected runs not found on synthetic: augment, augment_strong, weighted, dropout," in text
    assert "| baseline | baseline FCN | 0.7377 | 0.0665 | baseline | 0.8000 | 0.3200 | 3 |" in text
    assert report.report_caveats("synthetic") in text
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
    assert "The table is the last epoch (3; keep='last'" in text and "| 0.500 |" in text  # camvid_fast keeps the last
    assert "3 epochs, validated every 5 and the last" in text
    assert "Stop: all 3 epochs run. Epoch time on this box: median" in text
    best = save_run(fake_run("baseline", 0.4, dataset="camvid"), tmp_path)
    assert "the last epoch, chosen by nothing, scored val mIoU 0.4000." in report.run_section(best, "baseline")


def test_run_facts_names_a_budget_stop_and_the_last_rate() -> None:
    run = fake_run("camvid_fast", 0.5, epochs=4, cfg=replace(EXPERIMENTS["camvid_fast"], epochs=4))
    for h, sec, val in zip(run.history, [10.0, 30.0, 12.0, 40.0], [None, 0.3, None, 0.5]):
        h["seconds"], h["val_miou"], h["lr"] = sec, val, 1e-5
    run = replace(run, stopped_epoch=2, stop_reason="budget")
    text = report.run_facts(run)
    assert text.startswith("Stop: time budget of 29 min spent after epoch 2, schedule completed.")
    assert "median 11.0 s over the epochs without validation" in text  # 10 and 12; validated epochs cost more
    assert "last epoch's learning rate 1e-05 (eta_min 1e-05)" in text


def test_unweighted_val_ce_is_folded_when_runs_recorded_it() -> None:
    runs = _seeds([0.1, 0.2])
    assert "val CE" not in report.spread_table(runs).columns  # runs written before it was recorded
    for r, ce in zip(runs.values(), (1.0, 1.2)):
        r.metrics["ce"] = ce
    rows = report.spread_rows(runs)
    assert rows[0]["val CE"] == pytest.approx(1.1) and rows[0]["val CE std"] == pytest.approx(0.1414, abs=1e-4)
    assert report.spread_table(runs).loc["baseline", "val CE"] == "1.1000 ± 0.1414"
