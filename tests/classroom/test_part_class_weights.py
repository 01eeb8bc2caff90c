"""Part class_weights (10 points): the inverse-frequency and median-frequency formulas of `class_weights`.
Public tests: small fixed examples (the grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

import pytest

from starter_code.data.stats import class_weights

# 4 classes; class 2 never occurs in train
STATS = {"pixels": [100, 300, 0, 600], "image_pixels": [1000, 600, 0, 2000]}


def test_inverse_normalised_to_mean_one_over_present_classes() -> None:
    # 1/100, 1/300, 1/600 have mean 1/200 -> 2, 2/3, 1/3; absent class 0
    assert class_weights(STATS, "inverse", eps=0.0) == pytest.approx([2.0, 2 / 3, 0.0, 1 / 3])
    raw = [1 / 101, 1 / 301, 1 / 601]
    mean = sum(raw) / 3
    assert class_weights(STATS, "inverse") == pytest.approx([raw[0] / mean, raw[1] / mean, 0.0, raw[2] / mean])


def test_median_frequency() -> None:
    # freq = pixels / pixels of the images containing the class = 0.1, 0.5, 0.3 -> median 0.3
    assert class_weights(STATS, "median") == pytest.approx([3.0, 0.6, 0.0, 1.0])


def test_clip_and_plain_floats() -> None:
    w = class_weights(STATS, "median", clip=2.5)
    assert w == pytest.approx([2.5, 0.6, 0.0, 1.0])
    assert isinstance(w, list) and all(type(x) is float for x in w)
