"""config.py: recipe vs environment vs budget, typed overrides, the named experiments and the course list."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from starter_code.config import (
    BASELINE,
    BUDGET_FIELDS,
    COURSE,
    ENV_FIELDS,
    EXPERIMENTS,
    Config,
    expected_runs,
    make_config,
    parse_overrides,
    parse_value,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_env_and_budget_fields_are_config_fields_and_disjoint() -> None:
    fields = set(Config.__dataclass_fields__)
    assert ENV_FIELDS <= fields and BUDGET_FIELDS <= fields and not ENV_FIELDS & BUDGET_FIELDS


def test_env_and_budget_apply_to_a_recipe_and_leave_it_alone() -> None:
    cfg = make_config("cosine", env={"dataset": "voc", "data_root": "data/voc", "device": "cpu", "workers": None},
                      budget={"epochs": 3, "image_size": 96, "batch_size": None})
    assert (cfg.dataset, cfg.data_root, cfg.device, cfg.epochs, cfg.image_size) == ("voc", "data/voc", "cpu", 3, 96)
    assert cfg.workers == BASELINE.workers and cfg.batch_size == BASELINE.batch_size  # None: not set
    assert cfg.scheduler == "cosine" and cfg.name == "cosine"


def test_a_key_in_the_wrong_place_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="lr is not an environment field"):
        make_config("baseline", env={"lr": 0.1})
    with pytest.raises(ValueError, match="dataset is not a budget field"):
        make_config("baseline", budget={"dataset": "voc"})


def test_an_experiment_that_pins_its_dataset_refuses_another() -> None:
    with pytest.raises(ValueError, match="camvid_fast is a camvid recipe; it cannot run on synthetic"):
        make_config("camvid_fast", env={"dataset": "synthetic"})
    cfg = make_config("camvid_fast", env={"dataset": "camvid", "data_root": "/data/camvid"})
    assert cfg.data_root == "/data/camvid"  # where the data lives is the environment's


def test_an_experiment_with_its_own_budget_keeps_it_and_says_so() -> None:
    with pytest.warns(UserWarning) as caught:
        cfg = make_config("camvid_fast", env={"dataset": "camvid"}, budget={"epochs": 6, "image_size": 96})
    assert sorted(str(w.message).split(" (")[0] for w in caught) == [
        "experiment camvid_fast keeps its own epochs=55", "experiment camvid_fast keeps its own image_size=224"]
    assert (cfg.epochs, cfg.image_size) == (55, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit override changes it, silently
        assert make_config("camvid_fast", budget={"epochs": 6}, overrides={"epochs": 2}).epochs == 2
        assert make_config("baseline", budget={"epochs": 6}).epochs == 6  # the baseline's budget is the profile's


def test_overrides_as_strings_are_typed_as_their_field() -> None:
    cfg = make_config("baseline", overrides=["epochs=3", "lr=5e-4", "scheduler=cosine", "patience=none",
                                             "cache=true", "model_kwargs={\"dropout\": true}", "eval_size=None"])
    assert (cfg.epochs, cfg.lr, cfg.scheduler, cfg.patience, cfg.cache) == (3, 5e-4, "cosine", None, True)
    assert cfg.model_kwargs == {"dropout": True} and cfg.eval_size is None
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    assert make_config("baseline", overrides={"lr": 1, "epochs": "4"}).lr == 1.0  # an int is a fine float


@pytest.mark.parametrize(("item", "message"), [
    ("epochs=abc", "--set epochs=abc: epochs expects int"),
    ("cache=maybe", "--set cache=maybe: cache expects bool"),
    ("lr=fast", "--set lr=fast: lr expects float"),
    ("model_kwargs=[1]", "model_kwargs expects dict"),
    ("epoch=3", "epoch is not a config field"),
    ("epochs", "expected KEY=VALUE"),
    ("augment=wild", "augment='wild': expected one of none, paper, paper_color, photo, scale, strong"),
    ("dataset=imagenet", "expected one of synthetic, voc, camvid"),
])
def test_bad_overrides_fail_naming_the_setting(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_config("baseline", overrides=[item])


def test_mapping_overrides_are_type_checked_and_none_ignored() -> None:
    with pytest.raises(ValueError, match="epochs expects int"):
        make_config("baseline", overrides={"epochs": 1.5})
    with pytest.raises(ValueError, match="cache expects bool"):
        make_config("baseline", overrides={"cache": 1})
    assert make_config("baseline", overrides={"epochs": None}).epochs == BASELINE.epochs


def test_parse_helpers() -> None:
    assert parse_value("weight_clip", "none") is None and parse_value("weight_clip", "10") == 10.0
    assert parse_value("class_weights", "median") == "median" and parse_value("amp", "off") is False
    assert parse_overrides(["seed=1", " lr = 0.1"]) == {"seed": 1, "lr": 0.1}


def test_unknown_experiment_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown experiment 'nope'; known: .*baseline"):
        make_config("nope")


def test_named_variants_are_visible_diffs() -> None:
    def diff(name: str, ref: str) -> dict:
        return {k: v[1] for k, v in EXPERIMENTS[name].diff(EXPERIMENTS[ref]).items() if k != "name"}

    assert diff("resnet34_fcn_scratch", "resnet34_fcn") == {"model_kwargs": {"pretrained": False}, "encoder_lr": None}
    assert diff("resnet34_unet_scratch", "resnet34_unet") == {"model_kwargs": {"pretrained": False},
                                                              "encoder_lr": None}
    assert diff("resnet34_fcn_frozen", "resnet34_fcn") == {"freeze_encoder_epochs": 3}
    assert diff("unet_cpu", "unet") == {"model_kwargs": {"base_width": 16}}
    assert all(name == cfg.name for name, cfg in EXPERIMENTS.items())


def test_course_names_notebooks_and_experiments_that_exist() -> None:
    assert {p.stem for p in NOTEBOOKS.glob("0[1-7]_*.ipynb")} == set(COURSE)
    names = [n for names in COURSE.values() for n in names]
    assert len(names) == len(set(names)) and set(names) <= set(EXPERIMENTS)
    assert list(COURSE) == sorted(COURSE)


def test_expected_runs_follow_the_course_order_and_the_setting() -> None:
    everything = expected_runs()
    assert list(everything) == [n for names in COURSE.values() for n in names]
    assert everything["baseline"] == "01_baseline_fcn" and everything["unet_cpu"] == "07_unet"
    offline = expected_runs(pretrained=False, cpu=True)
    assert [n for n in offline if offline[n] >= "06"] == ["resnet34_fcn_scratch", "resnet34_unet_scratch",
                                                           "unet_cpu"]
    colab = expected_runs(pretrained=True, cpu=False)
    assert [n for n in colab if colab[n] >= "06"] == ["resnet34_fcn", "resnet34_unet", "resnet34_fcn_scratch",
                                                       "resnet34_fcn_frozen", "unet"]
    assert list(offline)[:6] == list(colab)[:6] == ["baseline", "cosine", "augment", "augment_strong", "weighted",
                                                    "dropout"]
