"""notebook: train-or-load (reuse, resume, retrain), the small tables, the learning-rate plan, side by side."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch
from fake_runs import FakeVal, fake_run, save_run

from starter_code import notebook as nb
from starter_code.config import BASELINE
from starter_code.engine import lr_factor
from starter_code.viz import plt
from starter_code.workspace import settings


@pytest.fixture
def S(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path / "smoke"))
    return settings(profile="smoke", data_root=str(tmp_path / "data"), quiet=True)


@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    def fake_fit(cfg, path, resume, progress):
        calls.append((cfg.name, path, resume))
        return cfg.seed

    monkeypatch.setattr(nb, "fit", fake_fit)
    return calls


def _finished(S, cfg, miou=0.3):
    (S.data_root / "train.txt").parent.mkdir(parents=True, exist_ok=True)
    (S.data_root / "train.txt").write_text("a\n")
    d = save_run(fake_run(cfg.name, miou, cfg=cfg), S.runs_dir, weights=True)
    (d / "data.json").write_text(json.dumps({"signature": nb.data_signature(cfg)}))  # trained on this data
    return d


def test_train_or_load_reuses_a_finished_run_with_the_same_config(S, fit_calls) -> None:
    cfg = S.config("baseline")
    d = _finished(S, cfg)
    run = nb.train_or_load(cfg, S)
    assert fit_calls == [] and run.run_dir == d and run.metrics["miou"] == 0.3 and run.model is not None


def test_train_or_load_retrains_when_config_or_data_changed(S, fit_calls) -> None:
    cfg = S.config("baseline")
    d = _finished(S, cfg)
    nb.train_or_load(replace(cfg, lr=0.5), S)  # another config in the same folder: train afresh
    nb.train_or_load(cfg, S, retrain=True)
    os.utime(S.data_root / "train.txt")  # the same data written again (a new Colab VM): reused
    nb.train_or_load(cfg, S)
    (S.data_root / "train.txt").write_text("a\nb\n")  # other data: train again
    nb.train_or_load(cfg, S)
    assert fit_calls == [("baseline", d, False)] * 3


def test_train_or_load_continues_an_interrupted_run(S, fit_calls) -> None:
    cfg = S.config("cosine")
    d = _finished(S, cfg)
    (d / "metrics.json").unlink()  # killed before the end: config.json and last.pt, no metrics.json
    nb.train_or_load(cfg, S)
    assert fit_calls == [("cosine", d, "auto")]


def test_seed_runs_train_each_seed_in_its_own_run_directory(S, fit_calls) -> None:
    cfg = S.config("baseline")
    d = _finished(S, cfg)  # seed 0 is the course's run: reused
    runs = nb.seed_runs(cfg, S)
    assert list(runs) == ["baseline", "baseline-seed1", "baseline-seed2"] and runs["baseline"].run_dir == d
    assert fit_calls == [("baseline", S.runs_dir / "baseline-synthetic-seed1", False),
                         ("baseline", S.runs_dir / "baseline-synthetic-seed2", False)]


def test_versus_seeds_words_a_number_against_the_seed_spread() -> None:
    seeds = [0.1, 0.2, 0.3]  # mean 0.2, sample std 0.1: noise is 2 x 0.1
    assert nb.versus_seeds(0.35, seeds) == "0.350 vs baseline 0.200 ± 0.100 (3 seeds): within seed noise at this budget"
    assert nb.versus_seeds(0.45, seeds).endswith("above the seed spread at this budget")
    assert nb.versus_seeds(-0.05, seeds, reference="cosine").startswith("-0.050 vs cosine 0.200")
    assert nb.versus_seeds(-0.05, seeds).endswith("below the seed spread at this budget")
    assert nb.versus_seeds(0.5, [0.2]).endswith("no seed spread to judge it by")


def test_versus_by_seeds_judges_two_single_runs_by_the_baseline_spread() -> None:
    runs = {"baseline": fake_run("baseline", 0.1), "baseline-seed1": fake_run("baseline", 0.2, seed=1),
            "baseline-seed2": fake_run("baseline", 0.3, seed=2),  # std 0.1: noise 0.2
            "a": fake_run("a", 0.5), "b": fake_run("b", 0.45), "c": fake_run("c", 0.1)}
    assert nb.versus_by_seeds(runs, "a", "b") == ("a 0.500 vs b 0.450: within seed noise at this budget "
                                                  "(judged by the baseline seeds' spread)")
    assert "above the seed spread" in nb.versus_by_seeds(runs, "a", "c")
    with pytest.raises(KeyError, match="no run of 'd'"):
        nb.versus_by_seeds(runs, "d", "a")


def test_loss_turn_finds_where_validation_loss_turned_up() -> None:
    run = fake_run("baseline", 0.3, epochs=4)
    run.history = [{"epoch": e, "train_loss": t, "val_loss": v, "val_ce": c}
                   for e, t, v, c in [(1, 2.0, 1.5, 1.4), (2, 1.5, 1.2, 1.0), (3, 1.2, 1.3, 1.1), (4, 1.0, 1.1, 1.2)]]
    turn = nb.loss_turn(run)  # judged on the unweighted val CE, not the (weighted) val loss
    assert turn == {"low": 2, "last": 4, "val_rise": pytest.approx(0.2), "train_change": pytest.approx(-0.5)}
    falling = nb.loss_turn(fake_run("baseline", 0.3, epochs=3))  # val loss 2.2 / epoch: lowest at the end
    assert falling["low"] == falling["last"] == 3 and falling["val_rise"] == 0


def test_diff_table_lists_only_changed_fields() -> None:
    df = nb.diff_table(replace(BASELINE, name="cosine", scheduler="cosine"), BASELINE)
    assert list(df.index) == ["name", "scheduler"]
    assert df.loc["scheduler"].tolist() == ["None", "'cosine'"]


def test_planned_lr_is_the_scheduler_plan() -> None:
    cfg = replace(BASELINE, scheduler="cosine", epochs=4)
    plan = nb.planned_lr(cfg)
    assert plan == [cfg.lr * lr_factor(cfg, e, cfg.lr) for e in range(4)]
    assert plan[0] == cfg.lr and plan == sorted(plan, reverse=True)
    assert nb.planned_lr(replace(BASELINE, epochs=3)) == [BASELINE.lr] * 3


def test_class_weight_table_matches_engine_weights() -> None:
    from starter_code.data.stats import class_weights

    stats = {"classes": ["bg", "a", "b"], "pixels": [900, 90, 0], "images": [10, 5, 0],
             "image_pixels": [1000, 500, 0]}
    cfgs = {"inverse": replace(BASELINE, class_weights="inverse"),
            "median": replace(BASELINE, class_weights="median", weight_clip=10.0)}
    df = nb.class_weight_table(stats, cfgs)
    assert df["inverse weight"].tolist() == pytest.approx(class_weights(stats, "inverse"))
    assert df["median weight"].tolist() == pytest.approx(class_weights(stats, "median", 10.0))
    assert df.loc["b", "inverse weight"] == 0.0
    assert df["% of labelled pixels"].sum() == pytest.approx(100)


def test_augmented_draws_are_seeded() -> None:
    class Noisy:
        def __getitem__(self, i):
            return torch.rand(1), torch.rand(1)

    a, b = nb.augmented_draws(Noisy(), 0, n=3, seed=7), nb.augmented_draws(Noisy(), 0, n=3, seed=7)
    assert torch.equal(torch.cat(a[0]), torch.cat(b[0])) and len(a[0]) == 3
    assert not torch.equal(a[0][0], a[0][1])  # each draw differs


def test_side_by_side_predicts_with_every_run(tmp_path) -> None:
    runs = {"baseline": fake_run("baseline", 0.3), "dropout": fake_run("dropout", 0.2, model="baseline_dropout")}
    fig = nb.side_by_side(runs, FakeVal(), [0, 2], tmp_path / "sbs.png")
    assert len(fig.axes) == 2 * 4 and (tmp_path / "sbs.png").is_file()
    assert [ax.get_title() for ax in fig.axes[2:4]] == ["baseline", "dropout"]
    assert fig.axes[0].get_ylabel() == "val #0" and fig.axes[4].get_ylabel() == "val #2"
    plt.close(fig)


def test_course_runs_follow_the_profile_and_the_weights(S, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(nb, "weights_cache_path", lambda: tmp_path / "absent.pth")
    cpu = nb.course_runs({}, S)
    assert "unet_cpu" in cpu and "unet" not in cpu and "resnet34_unet_scratch" in cpu and "resnet34_fcn" not in cpu
    pretrained = {"resnet34_fcn": fake_run("resnet34_fcn", 0.4, model="baseline",
                                           cfg=replace(BASELINE, name="resnet34_fcn", model="resnet34_fcn",
                                                       model_kwargs={"pretrained": True}))}
    with_weights = nb.course_runs(pretrained, S)
    assert "resnet34_fcn_frozen" in with_weights and "resnet34_unet_scratch" not in with_weights
    assert json.dumps(list(cpu)).startswith('["baseline", "cosine"')
