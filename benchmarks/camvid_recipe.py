"""How `camvid_fast` is chosen: candidates scored on SEQUENCE-DISJOINT dev splits cut from CamVid train, never on val.

    python -m benchmarks camvid-recipe [--steps 600] [--folds 0001TP,0006R0,0016E5] [--only recipe,lovasz]

CamVid train holds three video sequences (0001TP 62 frames, 0006R0 101, 0016E5 204); val is more of 0016E5, so
neighbouring frames make val (and any dev split cut from the same sequence) flatter the model. Each fold trains on
two sequences and scores on the third; the folds rotate. Every candidate trains the same number of optimizer steps
on a fold (`--steps`, so a busy shared CPU does not bias a candidate; its seconds per step are recorded too), with
the recipe's cosine schedule over those steps (dev scored every 4th epoch for the curve), and reports the LAST
model, never an epoch picked on dev. From the same training run it also scores:

- `swa`: the average of the weights at the end of each epoch of the last quarter of the schedule (SWA), batch-norm
  statistics recomputed with one pass over the training crops;
- `+flip`: horizontal-flip test-time augmentation (logits of the image and of its mirror, averaged), for the last
  and the averaged model.

Trained candidates (a diff of camvid_fast each): `recipe` (camvid_fast itself, `paper_color` augmentation),
`paper` (the same geometry without the colour jitter: the recipe before the jitter was chosen), `lovasz` (the
weighted cross-entropy plus the Lovasz-softmax loss, an IoU surrogate), `scale` (random crops of the whole frame
at shorter sides 0.75-1.5x the crop, flip 50%, the same colour jitter), `res288` (288 px crops and evaluation:
thinner things are wider in pixels, at ~1.65x the cost of a step), `wide` (the U-Net at base width 24 instead of
16: ~2.2x the parameters and the cost of a step, so fewer epochs in a budget), `long` (an epoch cap of 70 instead
of 55: on a quiet box the recipe's 55 epochs end before its budget does) and `photo` (harsher colour jitter and a
grey image on 20 %: lighting and cameras unlike any in training); with `--budget-min` also `mixstyle` (MixStyle
after the first three encoder blocks), `ibn` (IBN-a: half of those blocks' first norm per image), `paste`
(rare-class copy-paste between training crops), `sgd` and `adamw` (other optimisers): docs/BENCHMARKS.md ("Five
more families"); `adamw_wd0.02` and `adamw_wd0.2` (AdamW's weight-decay strength) and `long3x` (three times the
epoch cap, run with a budget that does not bind: what the 30-minute limit costs); `--equal-steps` gives each fold
the shipped run's optimizer steps: "Weight decay, and how much training a fold gets". Writes the JSON after every
fold and candidate.

    python -m benchmarks camvid-recipe --budget-min 29 --folds 0001TP [--only recipe,scale] --json FILE

trains the recipe (or a candidate) as `fit` runs it (its time budget, its schedule) on a fold and scores its last
model on the dev sequence (plain, with flip TTA, and with the MULTI_SCALES test-time sets; `--keep DIR` keeps
each run's folder): the estimate of what camvid_fast scores on frames of a sequence it has never seen, and
a comparison at equal wall time (a candidate with a slower loader gets fewer epochs).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from starter_code import engine
from starter_code.config import EXPERIMENTS, Config
from starter_code.data import IGNORE_INDEX, SegmentationDataset, build_transform, cache_size_for, eval_size
from starter_code.data.camvid import read_camvid_list
from starter_code.data.classes import CAMVID_INFO
from starter_code.models import MODELS, register
from starter_code.models.tta import FlipTTA, bare
from starter_code.models.unet import UNet

from .common import CAMVID_ROOT, machine_info, save_json

RECIPE = EXPERIMENTS["camvid_fast"]
SEQUENCES = ("0001TP", "0006R0", "0016E5")
CANDIDATES: dict[str, dict[str, Any]] = {"recipe": {}, "paper": {"augment": "paper"}, "lovasz": {"lovasz": 1.0},
                                         "scale": {"augment": "scale"}, "res288": {"image_size": 288, "eval_size": 288},
                                         "wide": {"model_kwargs": {"base_width": 24}},
                                         "long": {"epochs": 70}, "photo": {"augment": "photo"},
                                         "mixstyle": {"model": "unet_small_mixstyle"},
                                         "ibn": {"model": "unet_small_ibn"}, "paste": {"paste": 0.5},
                                         "sgd": {"optimizer": "sgd", "lr": 0.02, "weight_decay": 5e-4},
                                         "adamw": {"optimizer": "adamw", "weight_decay": 0.05},
                                         "adamw_wd0.02": {"optimizer": "adamw", "weight_decay": 0.02},
                                         "adamw_wd0.2": {"optimizer": "adamw", "weight_decay": 0.2},
                                         "long3x": {"epochs": 165, "val_every": 15}}
MULTI_SCALES = {"ms": (0.75, 1.0, 1.25), "up": (1.0, 1.25)}  # test-time scale sets, each with flip
SWA_FRACTION = 0.25  # the last quarter of the epochs is averaged


def sequence(path: Path) -> str:
    """The video sequence of a CamVid frame: its file-name prefix (0001TP_006690.png -> 0001TP)."""
    return path.name.split("_")[0]


def fold(root: Path, dev_sequence: str) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(train, dev) pairs of CamVid train: dev is every frame of `dev_sequence`, train the other sequences."""
    pairs = read_camvid_list(root, "train")
    found = sorted({sequence(p[0]) for p in pairs})
    if dev_sequence not in found:
        raise ValueError(f"{dev_sequence}: not a sequence of {root}/train.txt (there: {', '.join(found)})")
    return [p for p in pairs if sequence(p[0]) != dev_sequence], [p for p in pairs if sequence(p[0]) == dev_sequence]


RARE = ("Pole", "SignSymbol", "Fence", "Pedestrian", "Bicyclist")  # the five rarest CamVid classes by pixels


class PasteRare(SegmentationDataset):
    """Copy-paste (Ghiasi et al., 2021) for semantic masks: with probability `p` a training crop also receives,
    where they stand in another training crop (independently augmented), that crop's pixels of the RARE classes,
    labels included: thin and small things seen more often, in front of other streets and lighting."""

    def __init__(self, *args: Any, p: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.p = p
        self.rare = torch.tensor([self.info.classes.index(c) for c in RARE])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, msk = super().__getitem__(index)
        if torch.rand(()).item() < self.p:
            img2, msk2 = super().__getitem__(int(torch.randint(len(self), ()).item()))
            if img2.shape == img.shape:
                m = torch.isin(msk2, self.rare)
                img, msk = torch.where(m, img2, img), torch.where(m, msk2, msk)
        return img, msk


# Other optimisers than the engine's Adam, for a candidate's "optimizer" key (fit builds its optimiser through
# engine.build_optimizer, which `other_optimizer` swaps for the length of one run).
OPTIMIZERS: dict[str, Any] = {
    "sgd": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True,
                                               weight_decay=cfg.weight_decay),
    "adamw": lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True),
}


@contextmanager
def other_optimizer(name: str | None) -> Iterator[None]:
    """Within the block, engine.build_optimizer builds OPTIMIZERS[name] (None: the engine's own)."""
    if name is None:
        yield
        return
    own = engine.build_optimizer
    engine.build_optimizer = lambda model, cfg, device: OPTIMIZERS[name](engine.param_groups(model, cfg), cfg)
    try:
        yield
    finally:
        engine.build_optimizer = own


def datasets(cfg: Config, pairs: Sequence[tuple[Path, Path]], train: bool,
             paste: float | None = None) -> SegmentationDataset:
    """A CamVid dataset over `pairs`: the recipe's training transform, or its evaluation one; `paste`: the
    probability of a rare-class copy-paste (PasteRare) on a training crop."""
    preset, size = (cfg.augment, cfg.image_size) if train else ("eval", eval_size(cfg))
    cls = partial(PasteRare, p=paste) if paste else SegmentationDataset
    return cls([p[0] for p in pairs], [p[1] for p in pairs], CAMVID_INFO, [p[0].stem for p in pairs],
               build_transform(preset, size), cache=cfg.cache, cache_size=cache_size_for(preset, size),
               uniform_size=True)


# ---------------------------------------------------------------------------------------------- the candidates
LOVASZ_PIXELS = 65_536  # labelled pixels sampled per batch: one sort per class over 400k pixels costs ~10 steps


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor, ignore: int = IGNORE_INDEX,
                   pixels: int | None = LOVASZ_PIXELS) -> torch.Tensor:
    """Lovasz-softmax loss (Berman et al., 2018) over the batch's labelled pixels (a random sample of `pixels` of
    them; None = all), averaged over the classes present: a convex surrogate of 1 - IoU per class, computed from
    the sorted errors."""
    labels = target.reshape(-1)
    keep = (labels != ignore).nonzero().squeeze(1)
    if pixels is not None and keep.numel() > pixels:
        keep = keep[torch.randperm(keep.numel(), device=keep.device)[:pixels]]
    probs = logits.float().permute(0, 2, 3, 1).reshape(-1, logits.shape[1])[keep].softmax(1)  # per pixel
    labels = labels[keep]
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors, order = errors.sort(descending=True)
        fg = fg[order]
        inter = fg.sum() - fg.cumsum(0)
        union = fg.sum() + (1 - fg).cumsum(0)
        jaccard = 1 - inter / union
        grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(errors @ grad)
    return torch.stack(losses).mean() if losses else logits.sum() * 0


class PlusLovasz(nn.Module):
    """The recipe's criterion plus `weight` x Lovasz-softmax."""

    def __init__(self, base: nn.Module, weight: float) -> None:
        super().__init__()
        self.base, self.weight = base, weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.base(logits, target) + self.weight * lovasz_softmax(logits, target)


# Domain generalisation: dev frames come from a video the model never saw (other light, camera, street), so the
# shallow features' per-image statistics (mostly "style") differ between train and dev.
STYLE_BLOCKS = (0, 1, 2)  # the U-Net encoder blocks (full, 1/2, 1/4 resolution) whose output style is touched


class MixStyle(nn.Module):
    """MixStyle (Zhou et al., ICLR 2021): in training, with probability `p`, each image's channel means and stds
    are replaced by a Beta(alpha, alpha) mix of its own and another batch image's: new "styles" between the
    training videos, content kept. Identity in eval mode."""

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()).item() > self.p:
            return x
        mu = x.mean((2, 3), keepdim=True).detach()
        sig = (x.var((2, 3), keepdim=True) + self.eps).sqrt().detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((x.shape[0], 1, 1, 1)).to(x)
        perm = torch.randperm(x.shape[0], device=x.device)
        return (x - mu) / sig * (lam * sig + (1 - lam) * sig[perm]) + lam * mu + (1 - lam) * mu[perm]


class IBN(nn.Module):
    """IBN-a (Pan et al., ECCV 2018): InstanceNorm (affine) on the first half of the channels, BatchNorm on the
    rest: half the shallow features lose each image's contrast and colour cast, half keep what tells classes apart."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.instance = nn.InstanceNorm2d(self.half, affine=True)
        self.batch = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, :self.half], x[:, self.half:]
        return torch.cat([self.instance(a.contiguous()), self.batch(b)], 1)


def _unet_small_styled(num_classes: int, kind: str) -> nn.Module:
    net = UNet(num_classes, base_width=16)
    for i in STYLE_BLOCKS:
        block = net.encoder[i]
        if kind == "mixstyle":
            net.encoder[i] = nn.Sequential(*block, MixStyle())
        else:  # ibn: the first BatchNorm of the block's double conv
            block[1] = IBN(block[1].num_features)
    return net


if "unet_small_mixstyle" not in MODELS:
    register("unet_small_mixstyle")(lambda num_classes=21: _unet_small_styled(num_classes, "mixstyle"))
    register("unet_small_ibn")(lambda num_classes=21: _unet_small_styled(num_classes, "ibn"))


class MultiScaleTTA(nn.Module):
    """A model whose output is the log of the class probabilities averaged over the image rescaled by each of
    `scales` and its mirrors (each resized back to the input's H x W): thin things are wider at the larger scales,
    large regions see more context at the smaller ones."""

    def __init__(self, model: nn.Module, scales: Sequence[float]) -> None:
        super().__init__()
        self.model, self.scales = model, tuple(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size, probs = x.shape[-2:], 0.0
        for s in self.scales:
            xs = x if s == 1 else nn.functional.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            for flip in (False, True):
                logits = self.model(xs.flip(-1) if flip else xs).float()
                logits = logits.flip(-1) if flip else logits
                if logits.shape[-2:] != size:
                    logits = nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
                probs = probs + logits.softmax(1)
        return (probs / (2 * len(self.scales))).clamp_min(1e-8).log()


class WeightAverage:
    """The running mean of a model's weights (floating-point tensors; BN counters from the last snapshot)."""

    def __init__(self) -> None:
        self.mean: dict[str, torch.Tensor] | None = None
        self.n = 0

    def add(self, model: nn.Module) -> None:
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.n += 1
        if self.mean is None:
            self.mean = sd
            return
        for k, v in sd.items():
            if v.is_floating_point():
                self.mean[k] += (v - self.mean[k]) / self.n
            else:
                self.mean[k] = v

    def model(self, like: nn.Module, train_loader: Any, channels_last: bool) -> nn.Module:
        """A copy of `like` holding the average, its batch-norm statistics recomputed over `train_loader`."""
        avg = copy.deepcopy(like)
        avg.load_state_dict(self.mean)
        bns = [m for m in avg.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the pass
        avg.train()
        with torch.no_grad():
            for images, _ in train_loader:
                avg(images.contiguous(memory_format=torch.channels_last) if channels_last else images)
        return avg.eval()


# ---------------------------------------------------------------------------------------------------- running
def score(model: nn.Module, loader: Any, cfg: Config) -> dict[str, float]:
    m = engine.evaluate(model, loader, CAMVID_INFO.num_classes, torch.device("cpu"), channels_last=cfg.channels_last,
                        progress=False)
    return {"miou": m["miou"], "pixel_acc": m["pixel_acc"], "mean_class_acc": m["mean_class_acc"], "ce": m["ce"],
            "iou": dict(zip(CAMVID_INFO.classes, m["iou"]))}


def run_candidate(name: str, diff: dict[str, Any], dev_seq: str, steps: int, root: Path) -> dict[str, Any]:
    """Train one candidate on a fold for about `steps` optimizer steps; score last / swa, each with and without
    flip TTA, on the dev sequence."""
    diff = dict(diff)
    lovasz = diff.pop("lovasz", None)
    if {"paste", "optimizer"} & set(diff):
        raise SystemExit(f"candidate {name!r} is measured as `fit` runs it: add --budget-min (e.g. --budget-min 29)")
    train_pairs, dev_pairs = fold(root, dev_seq)
    per_epoch = len(train_pairs) // RECIPE.batch_size
    epochs = max(2, round(steps / per_epoch))
    cfg = replace(RECIPE, name=name, epochs=epochs, budget_min=None, keep="last", val_every=4, device="cpu", **diff)
    train_ds, dev_ds = datasets(cfg, train_pairs, True), datasets(cfg, dev_pairs, False)
    t0 = time.perf_counter()
    p = engine.build_parts(cfg, (train_ds, dev_ds), progress=False)
    if lovasz:
        p.criterion = PlusLovasz(p.criterion, lovasz)
    dev_loader = engine.make_loader(dev_ds, cfg.batch_size, False, p.device, 0)
    s, avg = engine.FitState(), WeightAverage()
    swa_from = epochs - max(1, round(SWA_FRACTION * epochs))
    train_s = 0.0
    for epoch in range(epochs):
        row, val = engine.train_epoch(cfg, p, epoch, dev_loader, progress=False)
        engine.record_epoch(cfg, s, row, val, CAMVID_INFO.classes, time.perf_counter() - t0, p.device)
        p.scheduler.step()
        train_s += row["seconds"]
        if epoch >= swa_from:
            avg.add(p.model)
    wall = time.perf_counter() - t0
    bn_loader = engine.make_loader(train_ds, cfg.batch_size, True, p.device, 0, cfg.seed, epochs)
    swa = avg.model(p.model, bn_loader, cfg.channels_last)
    p.model.eval()
    scores = {"last": score(p.model, dev_loader, cfg), "last+flip": score(FlipTTA(p.model), dev_loader, cfg),
              "swa": score(swa, dev_loader, cfg), "swa+flip": score(FlipTTA(swa), dev_loader, cfg)}
    row = {"candidate": name, "diff": {**diff, **({"lovasz": lovasz} if lovasz else {})}, "dev_sequence": dev_seq,
           "train_frames": len(train_pairs), "dev_frames": len(dev_pairs), "epochs": epochs,
           "steps": epochs * per_epoch, "swa_epochs": epochs - swa_from, "wall_s": wall,
           "seconds_per_step": train_s / (epochs * per_epoch),  # epoch seconds (dev evaluation included) / steps
           "scores": scores, "history": s.history}
    print(f"{dev_seq} {name:8s} {epochs:3d} ep {wall / 60:5.1f} min  " + "  ".join(
        f"{k} {v['miou']:.3f}" for k, v in scores.items()), flush=True)
    return row


def equal_step_epochs(epochs: int, train_frames: int, all_frames: int) -> int:
    """Epochs over a fold's `train_frames` that make as many optimizer steps as `epochs` over all the frames
    (the shipped run): a fold trains fewer frames, so the same epoch count would give it less training."""
    return max(1, round(epochs * all_frames / train_frames))


def run_recipe(name: str, diff: dict[str, Any], dev_seq: str, root: Path, budget_min: float,
               out: Path, seed: int = RECIPE.seed, equal_steps: bool = False) -> dict[str, Any]:
    """camvid_fast (with a candidate's diff) as `fit` runs it (its time budget, validation every 5th epoch),
    trained on a fold's two sequences: the last model scored on the dev sequence, plain, with flip TTA and with
    each MULTI_SCALES test-time set. `equal_steps`: as many optimizer steps as the shipped run (all the train
    frames) makes, validated once at the end."""
    if "lovasz" in diff:
        raise SystemExit(f"candidate {name!r} changes the loss, which `fit` does not run: compare it with --steps")
    diff = dict(diff)
    paste, optimizer = diff.pop("paste", None), diff.pop("optimizer", None)
    train_pairs, dev_pairs = fold(root, dev_seq)
    cfg = replace(RECIPE, name=name, budget_min=budget_min, device="cpu", seed=seed, **diff)
    if equal_steps:
        epochs = equal_step_epochs(cfg.epochs, len(train_pairs), len(train_pairs) + len(dev_pairs))
        cfg = replace(cfg, epochs=epochs, val_every=epochs)
    t0 = time.perf_counter()
    with other_optimizer(optimizer):
        run = engine.fit(cfg, out / f"{name}-{dev_seq}", progress=False,
                         datasets=(datasets(cfg, train_pairs, True, paste), datasets(cfg, dev_pairs, False)))
    wall = time.perf_counter() - t0
    dev_loader = engine.make_loader(datasets(cfg, dev_pairs, False), cfg.batch_size, False, torch.device("cpu"), 0)
    net = bare(run.model)  # the trained network, without the recipe's own test-time augmentation
    scores = {"last": score(net, dev_loader, cfg), "last+flip": score(FlipTTA(net), dev_loader, cfg),
              **{f"last+{k}": score(MultiScaleTTA(net, v), dev_loader, cfg) for k, v in MULTI_SCALES.items()}}
    print(f"{dev_seq} {name}, seed {seed}, budget {budget_min:g} min: {run.epochs_run} epochs in {wall / 60:.1f} min, "
          f"stop {run.stop_reason}, last lr {run.history[-1]['lr']:.2g}  " +
          "  ".join(f"{k} {v['miou']:.3f}" for k, v in scores.items()), flush=True)
    extra = {k: v for k, v in (("paste", paste), ("optimizer", optimizer)) if v}
    return {"candidate": name, "diff": {**diff, **extra, "budget_min": budget_min}, "equal_steps": equal_steps,
            "epoch_cap": cfg.epochs,
            "seed": seed, "dev_sequence": dev_seq,
            "train_frames": len(train_pairs), "dev_frames": len(dev_pairs), "epochs": run.epochs_run,
            "stop_reason": run.stop_reason, "wall_s": wall, "fit_seconds": run.fit_seconds, "scores": scores,
            "history": run.history}


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Dev mIoU per candidate and scoring, averaged over the folds that have it (and the folds counted)."""
    out: dict[str, dict[str, float]] = {}
    for cand in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == cand]
        out[cand] = {k: sum(r["scores"][k]["miou"] for r in mine) / len(mine) for k in mine[0]["scores"]}
        out[cand]["folds"] = len(mine)
    return out


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `camvid-recipe` sub-command."""
    p = sub.add_parser("camvid-recipe", help="camvid_fast candidates at equal steps on sequence-disjoint dev folds",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(CAMVID_ROOT))
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per candidate and fold")
    p.add_argument("--folds", default=",".join(SEQUENCES), help="dev sequences, one fold each")
    p.add_argument("--only", default=None,
                   help=f"candidates: {', '.join(CANDIDATES)} (default: all; with --budget-min: recipe)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--budget-min", type=float, default=None,
                   help="train as `fit` does, under this time budget on each fold (--only: recipe by default)")
    p.add_argument("--keep", default=None,
                   help="with --budget-min: keep each run's folder (checkpoint, history) under this directory")
    p.add_argument("--equal-steps", action="store_true",
                   help="with --budget-min: each fold makes as many optimizer steps as the shipped run on all the "
                        "train frames (more epochs over a fold's fewer frames), validated once at the end")
    p.add_argument("--seed", type=int, default=RECIPE.seed,
                   help="with --budget-min: the training seed (another seed measures the seed spread)")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every candidate on every fold, the JSON written after each (a long study survives an interruption)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if getattr(args, "equal_steps", False) and not args.budget_min:
        raise SystemExit("--equal-steps trains as `fit` does: give it --budget-min too (e.g. --budget-min 29)")
    root = Path(args.data_root)
    result: dict[str, Any] = {"benchmark": "camvid_recipe", "machine": machine_info(), "base": RECIPE.to_dict(),
                              "steps": None if args.budget_min else args.steps,
                              "budget_min": args.budget_min, "command": getattr(args, "command", ""), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = getattr(args, "keep", None) or tmp
        only = (args.only or ("recipe" if args.budget_min else ",".join(CANDIDATES))).split(",")
        unknown = [n for n in only if n not in CANDIDATES]
        if unknown:
            raise SystemExit(f"--only {','.join(unknown)}: unknown candidate; expected some of {', '.join(CANDIDATES)}")
        for dev_seq in args.folds.split(","):
            for name in only:
                result["rows"].append(run_recipe(name, CANDIDATES[name], dev_seq, root, args.budget_min, Path(tmp),
                                                 args.seed, args.equal_steps)
                                      if args.budget_min
                                      else run_candidate(name, CANDIDATES[name], dev_seq, args.steps, root))
                result["summary"] = summary(result["rows"])
                result["machine_end"] = machine_info()
                save_json(result, args.json)
    for cand, s in result["summary"].items():
        print(f"{cand:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in s.items() if k != "folds") +
              f"  ({s['folds']} folds)")
    return result
