"""The camvid-recipe benchmark's domain-generalisation and copy-paste candidates do what their docstrings say."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from conftest import CAMVID, requires_camvid

from benchmarks.__main__ import main
from benchmarks.camvid_recipe import (
    CANDIDATES,
    IBN,
    RARE,
    RECIPE,
    MixStyle,
    PasteRare,
    datasets,
    equal_step_epochs,
    fold,
    other_optimizer,
    run_candidate,
)
from starter_code import engine
from starter_code.models import build_model
from starter_code.workspace import project_root


def test_mixstyle_is_the_identity_in_eval_mode() -> None:
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(MixStyle(p=1.0).eval()(x), x)


def test_mixstyle_keeps_content_and_mixes_each_images_statistics_with_another_ones() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 5, 16, 16) * torch.rand(6, 5, 1, 1) * 3 + torch.randn(6, 5, 1, 1) * 4
    y = MixStyle(p=1.0).train()(x)
    mu, sig = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True)
    mu_y, sig_y = y.mean((2, 3), keepdim=True), y.std((2, 3), keepdim=True)
    # content: the standardised maps are unchanged
    torch.testing.assert_close((y - mu_y) / sig_y, (x - mu) / sig, atol=1e-4, rtol=1e-4)
    # style: each image's new channel means lie between the batch's smallest and largest, and they changed
    assert (mu_y >= mu.min(0).values - 1e-4).all() and (mu_y <= mu.max(0).values + 1e-4).all()
    assert not torch.allclose(mu_y, mu, atol=1e-3)


def test_ibn_normalises_half_the_channels_per_image_and_batch_normalises_the_rest() -> None:
    torch.manual_seed(0)
    ibn = IBN(6).train()
    x = torch.randn(3, 6, 10, 10) * 5 + torch.arange(3.0).view(3, 1, 1, 1) * 7
    y = ibn(x)
    inst = y[:, :3]
    torch.testing.assert_close(inst.mean((2, 3)), torch.zeros(3, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(inst.var((2, 3), unbiased=False), torch.ones(3, 3), atol=1e-3, rtol=0)
    torch.testing.assert_close(y[:, 3:], torch.nn.functional.batch_norm(x[:, 3:], None, None, training=True))


@pytest.mark.parametrize("name", ["unet_small_mixstyle", "unet_small_ibn"])
def test_styled_unets_are_built_by_name_and_predict_at_the_input_size(name: str) -> None:
    net = build_model(name, num_classes=11).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 40, 56)).shape == (2, 11, 40, 56)


@requires_camvid
def test_paste_rare_copies_exactly_the_other_crops_rare_pixels() -> None:
    train, _ = fold(CAMVID, "0016E5")
    cfg = replace(RECIPE, augment="none", cache=False)  # a deterministic crop, so the expected pair can be rebuilt
    pairs = train[:6]
    pasted, plain = datasets(cfg, pairs, True, paste=1.0), datasets(cfg, pairs, True)
    assert isinstance(pasted, PasteRare)
    rare = torch.tensor([plain.info.classes.index(c) for c in RARE])
    for i in range(len(pairs)):
        torch.manual_seed(i)
        img, msk = pasted[i]
        torch.manual_seed(i)
        torch.rand(())
        j = int(torch.randint(len(pairs), ()).item())
        (img0, msk0), (img2, msk2) = plain[i], plain[j]
        m = torch.isin(msk2, rare)
        assert torch.equal(msk[m], msk2[m]) and torch.equal(img[:, m], img2[:, m])
        assert torch.equal(msk[~m], msk0[~m]) and torch.equal(img[:, ~m], img0[:, ~m])
    assert torch.isin(msk, rare).any()


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_other_optimizer_swaps_the_engines_optimiser_for_one_block_only(name: str, kind: type) -> None:
    diff = {k: v for k, v in CANDIDATES[name].items() if k != "optimizer"}
    cfg, net = replace(RECIPE, **diff), build_model("unet_small", num_classes=11)
    with other_optimizer(name):
        opt = engine.build_optimizer(net, cfg, torch.device("cpu"))
    assert type(opt) is kind and opt.defaults["lr"] == cfg.lr and opt.defaults["weight_decay"] == cfg.weight_decay
    assert type(engine.build_optimizer(net, cfg, torch.device("cpu"))) is torch.optim.Adam


@pytest.mark.parametrize("name", ["paste", "sgd"])
def test_fit_only_candidates_refuse_the_fixed_step_comparison(name: str, tmp_path) -> None:
    with pytest.raises(SystemExit, match="--budget-min"):
        run_candidate(name, CANDIDATES[name], "0016E5", 10, tmp_path)


def test_equal_step_epochs_give_a_fold_the_shipped_runs_training() -> None:
    assert equal_step_epochs(55, 367, 367) == 55
    assert [equal_step_epochs(55, n, 367) for n in (163, 266, 305)] == [124, 76, 66]  # 55 x 367 / n, rounded


@requires_camvid
def test_equal_steps_folds_make_as_many_optimizer_steps_as_the_shipped_run() -> None:
    shipped = RECIPE.epochs * (sum(len(p) for p in fold(CAMVID, "0016E5")) // RECIPE.batch_size)  # drop_last
    for dev in ("0001TP", "0006R0", "0016E5"):
        train, _ = fold(CAMVID, dev)
        per_epoch = len(train) // RECIPE.batch_size
        steps = equal_step_epochs(RECIPE.epochs, len(train), sum(len(p) for p in fold(CAMVID, dev))) * per_epoch
        assert abs(steps - shipped) <= per_epoch, (dev, steps, shipped)  # within one of the fold's epochs
        assert RECIPE.epochs * per_epoch < 0.9 * shipped  # what the plain protocol gave the fold


def test_equal_steps_without_a_budget_is_refused(tmp_path) -> None:
    with pytest.raises(SystemExit, match="--budget-min"):
        main(["camvid-recipe", "--equal-steps", "--only", "recipe", "--json", str(tmp_path / "x.json")])


def test_the_documented_dev_estimate_is_the_mean_of_the_committed_equal_steps_runs() -> None:
    """The README's headline CamVid dev figure must come from the JSONs in benchmarks/results, not be typed in."""
    root = project_root()
    names = ("equal_steps", "equal_steps_0001TP", "equal_steps_seed1")
    rows = [r for n in names
            for r in json.loads((root / f"benchmarks/results/camvid_recipe_budget_{n}.json").read_text())["rows"]]
    assert sorted((r["dev_sequence"], r["seed"]) for r in rows) == [
        (d, s) for d in ("0001TP", "0006R0", "0016E5") for s in (0, 1)]  # three folds x two seeds, once each
    assert all(r["equal_steps"] and r["stop_reason"] == "budget" for r in rows)
    mean = sum(r["scores"]["last+flip"]["miou"] for r in rows) / len(rows)
    for doc in ("README.md", "docs/BENCHMARKS.md", "docs/results/camvid_fast.md"):
        assert f"**{mean:.3f}**" in (root / doc).read_text(), doc
