"""Experiment configs as plain values: BASELINE, and every experiment as a visible diff of it.

A config mixes three kinds of fields. The *recipe* (model, loss, optimiser, augmentation: what a run learns) is
the experiment's own. The *environment* (ENV_FIELDS: which data, where it lives, which device, loader workers)
and the *budget* (BUDGET_FIELDS: epochs, crop size, batch size) come from where the run executes: a notebook
profile or the command line. `make_config` puts the three together, refusing a key in the wrong place.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Config:
    """Everything one training run depends on. Plain values only, so it round-trips through JSON."""

    name: str = "baseline"
    # data
    dataset: str = "synthetic"  # synthetic | voc | camvid
    data_root: str = "data/synthetic"  # the folder holding VOCdevkit/ (voc, synthetic) or train/ (camvid)
    image_size: int = 128  # training crop side; evaluation rescales the shorter side to this, metrics at native size
    eval_size: int | None = -1  # shorter side the model sees at evaluation; -1 = image_size, None = native
    augment: str = "none"  # none | paper | strong
    limit_train: int | None = None  # use only the first N training images (smoke runs)
    limit_val: int | None = None
    cache: bool = False  # keep decoded, resized uint8 images in memory
    # model
    model: str = "baseline"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # optimisation
    epochs: int = 12
    batch_size: int = 16
    lr: float = 1e-3
    encoder_lr: float | None = None  # a separate learning rate for a pretrained encoder (param group "encoder")
    freeze_encoder_epochs: int = 0
    weight_decay: float = 0.0
    scheduler: str | None = None  # None | cosine
    eta_min: float = 1e-5
    warmup_epochs: int = 0
    class_weights: str | None = None  # None | inverse | median
    weight_clip: float | None = None
    patience: int | None = 5  # early stopping on val mIoU; None = never stop early
    budget_min: float | None = None  # minutes fit may take (set-up included); epochs and lr schedule fit into it
    keep: str = "best"  # the epoch the run reports (best.pt, metrics.json): best val mIoU, or the last one
    val_every: int = 1  # validate every k-th epoch (and always the last): more of a time budget goes to training
    tta: str | None = None  # None | flip: test-time augmentation wherever the model predicts (val, evaluate, predict)
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    workers: int = -1  # -1 = chosen from the core count
    amp: bool = True  # only ever used on CUDA
    channels_last: bool = True  # measured faster on CPU (docs/BENCHMARKS.md); harmless on CUDA
    compile: bool = False
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over all processes' batches

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready plain data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Rebuild a config from `to_dict()` output, refusing unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)

    def diff(self, other: Config | None = None) -> dict[str, tuple[Any, Any]]:
        """Keys whose values differ from `other` (default: BASELINE), as {key: (other, self)}."""
        other = other or BASELINE
        a, b = other.to_dict(), self.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


BASELINE = Config()

EXPERIMENTS: dict[str, Config] = {
    "baseline": BASELINE,
    "cosine": replace(BASELINE, name="cosine", scheduler="cosine"),
    "augment": replace(BASELINE, name="augment", augment="paper"),
    "augment_strong": replace(BASELINE, name="augment_strong", augment="strong"),
    "weighted": replace(BASELINE, name="weighted", class_weights="inverse"),
    "weighted_median": replace(BASELINE, name="weighted_median", class_weights="median", weight_clip=10.0),
    "dropout": replace(BASELINE, name="dropout", model="baseline_dropout"),
    # transfer learning (seed Table 4) and the improved decoder: ImageNet encoder at a 10x lower learning rate
    "resnet34_fcn": replace(BASELINE, name="resnet34_fcn", model="resnet34_fcn", model_kwargs={"pretrained": True},
                            encoder_lr=1e-4),
    "resnet34_unet": replace(BASELINE, name="resnet34_unet", model="resnet34_unet",
                             model_kwargs={"pretrained": True}, encoder_lr=1e-4),
    # the same networks trained from random weights (one learning rate): what ImageNet weights are worth
    "resnet34_fcn_scratch": replace(BASELINE, name="resnet34_fcn_scratch", model="resnet34_fcn",
                                    model_kwargs={"pretrained": False}),
    "resnet34_unet_scratch": replace(BASELINE, name="resnet34_unet_scratch", model="resnet34_unet",
                                     model_kwargs={"pretrained": False}),
    # the pretrained encoder frozen for the first 3 epochs, so the random decoder cannot disturb it early on
    "resnet34_fcn_frozen": replace(BASELINE, name="resnet34_fcn_frozen", model="resnet34_fcn",
                                   model_kwargs={"pretrained": True}, encoder_lr=1e-4, freeze_encoder_epochs=3),
    # U-Net (seed Table 6) at the paper's width, and at a quarter of it (16-32-64-128-256) for CPU runs
    "unet": replace(BASELINE, name="unet", model="unet", model_kwargs={"base_width": 64}),
    "unet_cpu": replace(BASELINE, name="unet_cpu", model="unet", model_kwargs={"base_width": 16}),
    # CamVid in <= 30 CPU-minutes on any box, chosen on dev splits cut from CamVid train, never on val
    # (benchmarks/camvid_recipe.py, docs/BENCHMARKS.md): the quarter-width U-Net, median-frequency weights, the mild
    # `paper` geometry plus colour jitter (`paper_color`: lighting differs between sequences; dev mIoU 0.316 vs
    # 0.249 for `paper`, mean of two sequence-disjoint folds at equal steps). The 29-minute budget fits the epoch
    # count and the cosine to the box (a slower one runs fewer epochs), still ending at eta_min. Validation every
    # 5th epoch and the last; the last epoch is reported (nothing picked on val); images decoded once into memory.
    # Predictions average the image and its mirror (tta="flip": +0.003 to +0.011 dev mIoU in 16 of 16 paired runs).
    "camvid_fast": replace(BASELINE, name="camvid_fast", dataset="camvid", data_root="data/camvid",
                           model="unet_small", image_size=224, eval_size=240, augment="paper_color",
                           class_weights="median", weight_clip=10.0, scheduler="cosine", epochs=55, batch_size=8,
                           patience=None, cache=True, budget_min=29.0, keep="last", val_every=5, tta="flip"),
}

# Where a run executes, never what it learns: set by a notebook profile or the command line.
ENV_FIELDS: frozenset[str] = frozenset({"dataset", "data_root", "device", "workers", "cache", "limit_train",
                                        "limit_val", "amp", "channels_last", "compile"})
# How big a run is: a profile's size. An experiment that sets its own (differs from BASELINE) keeps it.
BUDGET_FIELDS: frozenset[str] = frozenset({"epochs", "image_size", "batch_size"})

# The values a field may take, where there is a fixed list (the model names live in the model registry).
CHOICES: dict[str, tuple[Any, ...]] = {
    "dataset": ("synthetic", "voc", "camvid"),
    "augment": ("none", "paper", "paper_color", "photo", "scale", "strong"),
    "scheduler": (None, "cosine"),
    "class_weights": (None, "inverse", "median"),
    "keep": ("best", "last"),
    "tta": (None, "flip"),
    "device": ("auto", "cpu", "cuda", "mps"),
}

# The course: notebook -> the experiments it trains, in the order tables list them.
COURSE: dict[str, tuple[str, ...]] = {
    "01_baseline_fcn": ("baseline",),
    "02_cosine_annealing": ("cosine",),
    "03_augmentation": ("augment", "augment_strong"),
    "04_weighted_loss": ("weighted",),
    "05_dropout_variant": ("dropout",),
    "06_resnet34_transfer": ("resnet34_fcn", "resnet34_unet", "resnet34_fcn_scratch", "resnet34_fcn_frozen",
                             "resnet34_unet_scratch"),
    "07_unet": ("unet", "unet_cpu"),
}
# Course experiments trained only in some settings (any other: always). Notebook 06 trains the pretrained runs
# (and the scratch FCN beside them) when the ImageNet weights are there, and both scratch runs when they are not;
# notebook 07 trains the paper's U-Net on a GPU profile and the quarter-width one on CPU profiles.
ONLY_WHEN: dict[str, tuple[str, bool]] = {
    "resnet34_fcn": ("pretrained", True),
    "resnet34_unet": ("pretrained", True),
    "resnet34_fcn_frozen": ("pretrained", True),
    "resnet34_unet_scratch": ("pretrained", False),
    "unet": ("cpu", False),
    "unet_cpu": ("cpu", True),
}


def expected_runs(*, pretrained: bool | None = None, cpu: bool | None = None) -> dict[str, str]:
    """Experiment name -> the notebook that trains it, in course order (from COURSE).

    With `pretrained` (ImageNet weights available) and `cpu` (a CPU profile) given, only the runs the notebooks
    train in that setting; None keeps the runs of both settings."""
    setting = {"pretrained": pretrained, "cpu": cpu}
    out = {}
    for notebook, names in COURSE.items():
        for name in names:
            key, value = ONLY_WHEN.get(name, ("", None))
            if setting.get(key) is None or setting[key] == value:
                out[name] = notebook
    return out


# ------------------------------------------------------------------------------------------- make_config
_HINTS = typing.get_type_hints(Config)
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _types(key: str) -> tuple[type, ...]:
    """The plain types a field accepts: `int | None` -> (int, NoneType); `dict[str, Any]` -> (dict,)."""
    hint = _HINTS[key]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(typing.get_origin(a) or a for a in args)


def _type_name(key: str) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in _types(key))


def parse_value(key: str, text: str) -> Any:
    """The value of `key=text` typed as the field: "12" -> 12 for epochs, "none" -> None for scheduler,
    "true" -> True for cache, JSON for model_kwargs. ValueError naming the setting and the expected type."""
    if key not in _HINTS:
        raise ValueError(f"--set {key}={text}: {key} is not a config field; fields: {', '.join(sorted(_HINTS))}")
    kinds = _types(key)
    bad = ValueError(f"--set {key}={text}: {key} expects {_type_name(key)}")
    t = text.strip()
    if type(None) in kinds and t.lower() in ("none", "null"):
        return None
    for kind in kinds:
        if kind is bool:
            if t.lower() in _TRUE + _FALSE:
                return t.lower() in _TRUE
        elif kind in (int, float):
            try:
                return kind(t)
            except ValueError:
                continue
        elif kind is dict:
            try:
                value = json.loads(t)
            except json.JSONDecodeError:
                raise bad from None
            if isinstance(value, dict):
                return value
        elif kind is str:
            return t
    raise bad


def _check_value(key: str, value: Any) -> Any:
    """`value` if it has the field's type (an int is a fine float; a string is parsed as on the command line)."""
    if key not in _HINTS:
        raise ValueError(f"{key}: not a config field; fields: {', '.join(sorted(_HINTS))}")
    kinds = _types(key)
    if isinstance(value, str) and str not in kinds:
        return parse_value(key, value)
    ok = any(isinstance(value, k) and not (isinstance(value, bool) and k is not bool) for k in kinds)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ValueError(f"{key}={value!r}: {key} expects {_type_name(key)}")
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """["epochs=3", "scheduler=none"] -> {"epochs": 3, "scheduler": None}, each typed as its field
    (`parse_value`); what `train --set` passes on."""
    out = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--set {item}: expected KEY=VALUE, e.g. --set epochs=3")
        out[key.strip()] = parse_value(key.strip(), text)
    return out


def _as_mapping(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return {k: _check_value(k, v) for k, v in overrides.items() if v is not None}
    return parse_overrides(overrides)


def _only(kind: str, allowed: frozenset[str], values: Mapping[str, Any] | None) -> dict[str, Any]:
    values = {k: v for k, v in (values or {}).items() if v is not None}
    for key in values:
        if key not in allowed:
            raise ValueError(f"{key} is not {kind} field (those are {', '.join(sorted(allowed))}); "
                             f"pass it in overrides instead")
    return {k: _check_value(k, v) for k, v in values.items()}


def make_config(name: str, *, env: Mapping[str, Any] | None = None, budget: Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | Sequence[str] = ()) -> Config:
    """The named experiment run in an environment (ENV_FIELDS), at a budget (BUDGET_FIELDS), with `overrides`.

    An experiment that pins its own dataset (camvid_fast) refuses another dataset in `env`; one that sets its own
    budget (differs from BASELINE) keeps it and warns. `overrides` change any field, last, as {"epochs": 3} or
    ["epochs=3"] (parsed and type-checked against the field). None values mean "not set" everywhere."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    base = EXPERIMENTS[name]
    env_values, budget_values = _only("an environment", ENV_FIELDS, env), _only("a budget", BUDGET_FIELDS, budget)
    over = _as_mapping(overrides)
    pinned = base.dataset != BASELINE.dataset
    if pinned and env_values.get("dataset", base.dataset) != base.dataset and "dataset" not in over:
        raise ValueError(f"experiment {name} is a {base.dataset} recipe; it cannot run on "
                         f"{env_values['dataset']}: use dataset={base.dataset} or another experiment")
    for key, value in list(budget_values.items()):
        own = getattr(base, key)
        if own != getattr(BASELINE, key) and own != value and key not in over:
            warnings.warn(f"experiment {name} keeps its own {key}={own} (not {value}); "
                          f"override it with {key}={value} to change it", stacklevel=2)
            del budget_values[key]
    cfg = replace(base, **{**env_values, **budget_values, **over})
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ValueError(f"{key}={getattr(cfg, key)!r}: expected one of {', '.join(map(str, allowed))}")
    return cfg

