"""Experiment configs as plain values: BASELINE, and every experiment as a visible diff of it."""

from __future__ import annotations

import dataclasses
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
    time_limit_min: float | None = None  # stop (keeping the best epoch) before an epoch would end past this
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
    # U-Net (seed Table 6) at the paper's width; CPU notebooks override base_width
    "unet": replace(BASELINE, name="unet", model="unet", model_kwargs={"base_width": 64}),
    # CamVid in <= 30 CPU-minutes (issue 7), chosen on a dev split cut from CamVid train, never on val
    # (benchmarks/camvid_recipe.py, docs/BENCHMARKS.md): at equal wall time the quarter-width U-Net beat ResNet-34
    # U-Net (scratch), the baseline FCN, a wider U-Net and 288 px crops; median-frequency weights beat none; the
    # mild `paper` augmentation beat `strong` at 3.5 and at 7 minutes. 55 epochs took 22 min here; cosine to eta_min;
    # every epoch counts (no early stopping); images decoded once into memory; a guard stops before 29 minutes.
    "camvid_fast": replace(BASELINE, name="camvid_fast", dataset="camvid", data_root="data/camvid",
                           model="unet_small", image_size=224, eval_size=240, augment="paper",
                           class_weights="median", weight_clip=10.0, scheduler="cosine", epochs=55, batch_size=8,
                           patience=None, cache=True, time_limit_min=29.0),
}


def get_experiment(name: str, **overrides: Any) -> Config:
    """The named experiment with `overrides` applied (None values are ignored)."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    return replace(EXPERIMENTS[name], **{k: v for k, v in overrides.items() if v is not None})
