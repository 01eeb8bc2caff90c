"""runs: a run directory <-> one Run; listing in course order; the one results table (DataFrame and markdown)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from starter_code import checkpoint, runs
from starter_code.config import BASELINE, EXPERIMENTS, Config, expected_runs
from starter_code.data.classes import VOC_INFO
from starter_code.models import build_model
from starter_code.runs import Run, list_runs, load_model, load_run, run_dir_for

CLASSES = list(VOC_INFO.classes)


def write_run(runs_dir: Path, cfg: Config, miou: float, epochs: int = 3, seconds: float = 6.0,
              stopped: int | None = None, folder: str | None = None, weights: bool = True,
              stop_reason: str | None | type = ..., best_epoch: int | None = None, ce: float | None = None) -> Path:
    """A run directory as fit writes it, through the checkpoint writers, with chosen numbers."""
    d = runs_dir / (folder or f"{cfg.name}-{cfg.dataset}")
    d.mkdir(parents=True)
    best_epoch = best_epoch or epochs
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_miou": miou * e / epochs,
                "val_pixel_acc": 0.5, "val_mean_class_acc": 0.2, "lr": 1e-3, "seconds": seconds}
               for e in range(1, epochs + 1)]
    iou = {c: (math.nan if i % 5 == 4 else miou) for i, c in enumerate(CLASSES)}
    metrics = {"split": "val", "epoch": best_epoch, "pixel_acc": 0.75 + miou / 10, "mean_class_acc": 0.25 + miou,
               "miou": miou, "fw_iou": 0.6, "loss": 1.0, "iou": iou, "class_acc": iou, "num_pixels": 100}
    if ce is not None:  # runs written before the unweighted val CE was recorded have no "ce"
        metrics["ce"] = ce
    checkpoint.write_config(d, cfg)
    checkpoint.write_metrics(d, metrics)
    checkpoint.write_history(d, history, best_epoch, stopped, None, 12.5)
    if stop_reason is ...:  # a history.json written before stop_reason was stored
        saved = json.loads((d / "history.json").read_text())
        del saved["stop_reason"]
        (d / "history.json").write_text(json.dumps(saved))
    elif stop_reason is not None:
        checkpoint.write_history(d, history, best_epoch, stopped, stop_reason, 12.5)
    if weights:
        model = build_model(cfg.model, len(CLASSES), **cfg.model_kwargs)
        checkpoint.save_best([d], checkpoint.plain_state_dict(model), cfg.to_dict(), best_epoch, CLASSES, metrics)
    return d


def tiny(name: str, dataset: str = "synthetic", **kw) -> Config:
    base = EXPERIMENTS.get(name, replace(BASELINE, name=name))
    return replace(base, name=name, dataset=dataset, model="unet", model_kwargs={"base_width": 2}, **kw)


def test_run_dir_rule() -> None:
    cfg = replace(BASELINE, name="cosine", dataset="camvid")
    assert run_dir_for(cfg) == Path("runs") / "cosine-camvid"
    assert run_dir_for(cfg, "/w/runs") == Path("/w/runs/cosine-camvid")
    assert run_dir_for(replace(cfg, seed=2), "/w/runs") == Path("/w/runs/cosine-camvid-seed2")  # seeds apart


def test_load_run_reads_every_file(tmp_path) -> None:
    cfg = tiny("baseline")
    d = write_run(tmp_path, cfg, 0.3, epochs=4, seconds=30.0, stopped=None, stop_reason=None)
    run = load_run(d)
    assert isinstance(run, Run) and run.config == cfg and run.run_dir == d and run.name == "baseline"
    assert run.epochs_run == 4 and run.seconds == 120.0 and run.fit_seconds == 12.5
    assert run.best_epoch == 4 and run.stopped_epoch is None and run.stop_reason is None
    assert run.classes == CLASSES and run.metrics["miou"] == 0.3
    assert isinstance(run.model, torch.nn.Module) and not run.model.training
    light = load_run(d, weights=False)
    assert light.model is None and light.classes == CLASSES and light.config == cfg


def test_load_run_without_weights_needs_no_best_pt(tmp_path) -> None:
    d = write_run(tmp_path, tiny("cosine"), 0.2, weights=False)
    assert load_run(d, weights=False).metrics["miou"] == 0.2
    with pytest.raises(checkpoint.TrainingError, match="best.pt: checkpoint not found"):
        load_run(d)


def test_a_folder_that_is_not_a_finished_run_is_named(tmp_path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"half: not a finished run \(no metrics.json\)"):
        load_run(tmp_path / "half")


@pytest.mark.parametrize(("stopped", "stored", "expected"), [
    (None, ..., None),  # ran every epoch
    (5, ..., "early_stop"),  # best epoch 3, patience 2: the early-stop rule explains the stop
    (4, ..., "time_limit"),  # one epoch after the best: only the time guard of that time stops there
    (5, "time_limit", "time_limit"),  # stored: taken as written
    (5, "budget", "budget"),
])
def test_stop_reason_is_stored_or_inferred_for_old_runs(tmp_path, stopped, stored, expected) -> None:
    cfg = tiny("baseline", patience=2)
    d = write_run(tmp_path, cfg, 0.3, epochs=stopped or 6, stopped=stopped, stop_reason=stored, best_epoch=3,
                  weights=False)
    assert load_run(d, weights=False).stop_reason == expected


def test_load_model_never_fetches_imagenet_weights(tmp_path, monkeypatch) -> None:
    cfg = replace(EXPERIMENTS["resnet34_fcn"], dataset="synthetic")
    assert cfg.model_kwargs == {"pretrained": True}
    d = tmp_path / "r"
    d.mkdir()
    weights = checkpoint.plain_state_dict(build_model("resnet34_fcn", len(CLASSES), pretrained=False))
    checkpoint.save_best([d], weights, cfg.to_dict(), 1, CLASSES, {})

    def no_download(*a, **k):
        raise AssertionError("opening a finished run fetched ImageNet weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # nothing cached either
    model, loaded_cfg, ckpt = load_model(d)
    assert loaded_cfg == cfg and ckpt["epoch"] == 1 and not model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_list_runs_course_order_dataset_filter_and_skips(tmp_path, capsys) -> None:
    course = list(expected_runs())
    for name in ("weighted", "zeta_custom", "baseline", "cosine", "alpha_custom"):
        write_run(tmp_path, tiny(name), 0.1, weights=False)
    write_run(tmp_path, tiny("baseline", dataset="camvid"), 0.4, weights=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{")
    (tmp_path / "broken" / "config.json").write_text('{"dataset": "synthetic"}')

    found = list_runs(tmp_path, dataset="synthetic")
    assert list(found) == [n for n in course if n in ("weighted", "baseline", "cosine")] + ["alpha_custom",
                                                                                            "zeta_custom"]
    assert list(found)[:3] == ["baseline", "cosine", "weighted"]
    assert all(r.model is None for r in found.values())
    assert capsys.readouterr().out.startswith(f"skipped {tmp_path / 'broken'}: ")
    both = list_runs(tmp_path, verbose=False)  # baseline on two datasets: keyed by folder
    assert "baseline-synthetic" in both and "baseline-camvid" in both
    assert both["baseline-camvid"].metrics["miou"] == 0.4
    assert list_runs(tmp_path / "nothing-here") == {}


def test_expected_missing_follows_the_course(tmp_path) -> None:
    write_run(tmp_path, tiny("cosine"), 0.1, weights=False)
    write_run(tmp_path, tiny("baseline"), 0.1, weights=False, folder="my-baseline")
    found = list_runs(tmp_path, verbose=False)
    missing = runs.expected_missing(found)
    assert missing == [n for n in expected_runs() if n not in ("baseline", "cosine")]
    assert runs.expected_missing(found, expected=["baseline", "unet"]) == ["unet"]


def test_results_table_columns_and_reference(tmp_path) -> None:
    write_run(tmp_path, tiny("baseline"), 0.30, weights=False)
    write_run(tmp_path, tiny("cosine"), 0.35, epochs=2, weights=False)
    found = list_runs(tmp_path, verbose=False)
    df = runs.results_table(found)
    assert list(df.columns) == ["model", "pixel accuracy", "mean class accuracy", "mIoU", "mIoU vs baseline",
                                "best epoch", "epochs run", "val CE"]
    assert list(df.index) == ["baseline", "cosine"] and df.index.name == "run"
    assert df.loc["cosine", "mIoU vs baseline"] == pytest.approx(0.05)
    assert df.loc["cosine", "epochs run"] == 2 and df.loc["baseline", "best epoch"] == 3
    assert "mIoU vs baseline" not in runs.results_table({"cosine": found["cosine"]}).columns
    write_run(tmp_path, tiny("baseline", seed=1), 0.20, weights=False, folder="baseline-synthetic-seed1")
    with_seed = runs.results_table(list_runs(tmp_path, verbose=False))  # the reference: the mean of its seeds
    assert with_seed.loc["cosine", "mIoU vs baseline"] == pytest.approx(0.35 - 0.25)
    assert with_seed.loc["baseline", "mIoU vs baseline"] == pytest.approx(0.05)
    assert runs.results_table({}).empty


def test_results_markdown_is_the_docs_table(tmp_path) -> None:
    write_run(tmp_path, tiny("weighted"), 0.0442, epochs=6, seconds=7.0, best_epoch=6, weights=False, ce=1.23456)
    write_run(tmp_path, tiny("augment"), 0.1066, epochs=6, seconds=8.0, best_epoch=5, weights=False)
    found = list_runs(tmp_path, verbose=False)
    assert list(found) == ["augment", "weighted"]
    expected = "\n".join([
        "| run | model | dataset | image size | epochs (best) | train time | pixel acc | mean class acc | mIoU "
        "| val CE |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| augment | unet | synthetic | 128 | 6 (5) | 0.8 min | 0.7607 | 0.3566 | 0.1066 | - |",
        "| weighted | unet | synthetic | 128 | 6 (6) | 0.7 min | 0.7544 | 0.2942 | 0.0442 | 1.2346 |"])
    assert runs.results_markdown(found) == expected
    assert runs.results_markdown(dict(reversed(found.items()))) == expected  # same runs, same bytes
    assert runs.results_markdown(list(found.values())) == expected
    assert [r["run"] for r in runs.results_rows(found)] == ["augment", "weighted"]


def test_val_ce_and_seed_reach_the_rows(tmp_path) -> None:
    write_run(tmp_path, tiny("weighted", seed=3), 0.2, weights=False, ce=0.75)
    write_run(tmp_path, tiny("baseline"), 0.3, weights=False)  # written before val CE was recorded
    rows = {r["run"]: r for r in runs.results_rows(list_runs(tmp_path, verbose=False))}
    assert (rows["weighted-seed3"]["val CE"], rows["weighted-seed3"]["seed"]) == (0.75, 3)
    assert (rows["baseline"]["val CE"], rows["baseline"]["seed"]) == (None, 0)


def test_seeds_have_their_own_folders_and_keys_next_to_their_experiment(tmp_path) -> None:
    for name, seed in (("cosine", 0), ("baseline", 2), ("zeta_custom", 1), ("baseline", 0), ("baseline", 1),
                       ("zeta_custom", 0)):
        cfg = tiny(name, seed=seed)
        write_run(tmp_path, cfg, 0.1, weights=False, folder=run_dir_for(cfg).name)
    found = list_runs(tmp_path, verbose=False)
    assert list(found) == ["baseline", "baseline-seed1", "baseline-seed2", "cosine", "zeta_custom",
                           "zeta_custom-seed1"]
    assert found["baseline-seed2"].run_dir.name == "baseline-synthetic-seed2"
    assert found["baseline-seed2"].config.seed == 2 and found["baseline"].config.seed == 0
