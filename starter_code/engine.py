"""The one training engine every notebook and the CLI use: fit / train_one_epoch / evaluate.

`fit` builds its parts, optionally resumes from last.pt, then trains and validates epoch after epoch, writing the
run directory through `checkpoint` (one writer per file) and returning a `runs.Run`. With a time budget
(`budget_min`) the number of epochs and the learning-rate schedule are fitted to the time, re-planned after every
epoch from its measured cost, so the schedule ends at eta_min when the budget ends, on a fast box or a slow one.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .checkpoint import (
    TrainingError,
    implied_stop_reason,
    load_checkpoint,
    plain_state_dict,
    remove_temp_files,
    restore_best,
    resume_state,
    rng_state,
    save_best,
    save_last,
    set_rng_state,
    write_config,
    write_history,
    write_metrics,
)
from .config import Config
from .data import IGNORE_INDEX, build_datasets
from .data.stats import class_stats, class_weights
from .distributed import (
    DistInfo,
    ShardSampler,
    all_reduce_sum,
    barrier,
    current,
    init_distributed,
    sync_buffers,
)
from .metrics import ConfusionMatrix
from .models import build_model
from .models.tta import with_tta
from .runs import Run, run_dir_for
from .slowdown import slowed


# ----------------------------------------------------------------------------------------------- runtime set-up
def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; an explicit device that is not available is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' requested but CUDA is not available; use --device auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_workers(device: torch.device) -> int:
    """Loader workers: on a GPU keep it fed with every core but one; on the CPU the model needs the cores."""
    cores = os.cpu_count() or 1
    return max(1, min(8, cores - 1)) if device.type == "cuda" else 0


def make_loader(ds: Dataset, batch_size: int, train: bool, device: torch.device, workers: int,
                seed: int = 0, epoch: int = 0, dist_info: DistInfo | None = None) -> DataLoader:
    """A DataLoader whose shuffle order and worker seeds depend only on (seed, epoch, rank), so resumed runs repeat.

    Under torchrun each process gets its own shard (training: DistributedSampler, one permutation shared by the
    processes and cut into disjoint parts; evaluation: no padding), its own worker seeds (different augmentations
    per process), and drops the last partial batch only when its own share holds more than one batch."""
    rank = dist_info.rank if dist_info is not None and dist_info.enabled else 0
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch + 7919 * rank)  # rank 0: as in a single process
    sampler = None
    if dist_info is not None and dist_info.enabled:
        if train:
            sampler = DistributedSampler(ds, dist_info.world_size, dist_info.rank, shuffle=True, seed=seed,
                                         drop_last=True)
            sampler.set_epoch(epoch)
        else:
            sampler = ShardSampler(len(ds), dist_info.rank, dist_info.world_size)
    share = len(sampler) if sampler is not None else len(ds)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler,
        drop_last=train and share > batch_size,
        num_workers=workers, pin_memory=device.type == "cuda", generator=gen,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
    )


def amp_enabled(cfg: Config, device: torch.device) -> bool:
    """Mixed precision only on CUDA (fp16 + GradScaler). Never on CPU: without bf16 units it is far slower."""
    return cfg.amp and device.type == "cuda"


# ------------------------------------------------------------------------------------------ loss, optim, sched
def build_criterion(cfg: Config, train_ds: Any, device: torch.device, progress: bool = False) -> nn.Module:
    """Cross-entropy ignoring void (255), with class weights from the training masks when asked."""
    # BEGIN SOLUTION
    # HINT: cfg.class_weights set: class_weights(class_stats(train_ds), method, clip) as float32 on device; ignore void
    weight = None
    if cfg.class_weights:
        stats = class_stats(train_ds, progress=progress)
        weight = torch.tensor(class_weights(stats, cfg.class_weights, cfg.weight_clip), dtype=torch.float32)
        weight = weight.to(device)
    return nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)
    # END SOLUTION


def param_groups(model: nn.Module, cfg: Config) -> list[dict[str, Any]]:
    """One group, or two when the model has an `encoder` and cfg.encoder_lr is set (transfer learning)."""
    enc = getattr(model, "encoder", None)
    if cfg.encoder_lr is None or enc is None:
        return [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}]
    enc_ids = {id(p) for p in enc.parameters()}
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    return [{"params": list(enc.parameters()), "lr": cfg.encoder_lr, "name": "encoder"},
            {"params": rest, "lr": cfg.lr, "name": "decoder"}]


def build_optimizer(model: nn.Module, cfg: Config, device: torch.device) -> torch.optim.Optimizer:
    """Adam on `param_groups`. Fused (one kernel for every parameter, CPU and CUDA, torch >= 2.4): the same update
    as the default loop over tensors, ~8x faster per step on CPU (docs/BENCHMARKS.md, 'Fused Adam')."""
    return torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=device.type in ("cpu", "cuda"))


def lr_factor(cfg: Config, epoch: int, base_lr: float, position: float | None = None) -> float:
    """Multiplier of the base lr at `epoch` (0-based): linear warmup, then cosine from the base lr (first epoch
    after the warmup) down to eta_min (last epoch). `position` (0 = start, 1 = end) places the epoch on the cosine
    instead of its index: a run with a time budget passes the position its plan gave the epoch."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.scheduler is None:
        return 1.0
    if cfg.scheduler != "cosine":
        raise ValueError(f"unknown scheduler {cfg.scheduler!r}; expected None or 'cosine'")
    if position is None:
        t, total = epoch - cfg.warmup_epochs, cfg.epochs - cfg.warmup_epochs
        position = t / (total - 1) if total > 1 else 0.0
    lr = cfg.eta_min + (base_lr - cfg.eta_min) * (1 + math.cos(math.pi * min(position, 1.0))) / 2
    return lr / base_lr


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, plan: Mapping[int, float] | None = None
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Epoch-wise schedule (stepped once per epoch), one closed-form lambda per parameter group. `plan` maps an
    epoch to its position on the cosine (a budgeted run fills it as it goes); other epochs use their index."""
    plan = {} if plan is None else plan
    lambdas = [lambda e, b=g["lr"]: lr_factor(cfg, e, b, plan.get(e)) for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


# ------------------------------------------------------------------------------------------------ train / eval
def forward_logits(model: nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Logits at `size` (the mask's H x W): bilinear resize when the model saw a rescaled image."""
    logits = model(images)
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    return logits


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def train_one_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device, epoch: int, scaler: torch.amp.GradScaler | None = None,
                    channels_last: bool = False, progress: bool = True) -> float:
    """One pass over the training loader; returns the mean loss. A NaN/inf loss raises TrainingError."""
    model.train()
    use_amp = scaler is not None and scaler.is_enabled()
    total, count = torch.zeros((), device=device), 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1} train", leave=False, disable=not progress)
    for step, (images, masks) in enumerate(bar):
        images, masks = _to_device(images, device, channels_last), masks.to(device, non_blocking=True)
        # BEGIN SOLUTION
        # HINT: forward the batch under torch.autocast (fp16, enabled=use_amp) and compute loss with criterion
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            loss = criterion(model(images), masks)
        # END SOLUTION
        check = device.type == "cpu" or step % 20 == 0
        if check and not torch.isfinite(loss):
            raise TrainingError(
                f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: training diverged. Likely causes: "
                "learning rate too high, class weights too large (try weight_clip), or bad labels; "
                "nothing of this epoch was saved: last.pt (if any) keeps the last good epoch")
        # BEGIN SOLUTION
        # HINT: zero the grads, backward and step; with use_amp go through scaler (scale, step, update)
        optimizer.zero_grad(set_to_none=True)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        # END SOLUTION
        total += loss.detach() * images.shape[0]
        count += images.shape[0]
        if progress and (step % 10 == 0 or step == len(loader) - 1):
            bar.set_postfix(loss=f"{(total / count).item():.4f}")
    sums = all_reduce_sum(torch.stack([total.float(), torch.tensor(float(count), device=device)]))
    mean = (sums[0] / sums[1].clamp(min=1)).item()
    finite_weights = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if not math.isfinite(mean) or not finite_weights:
        what = f"mean training loss is {mean}" if not math.isfinite(mean) else "the weights became NaN/inf"
        raise TrainingError(f"{what} at epoch {epoch + 1}, end of the epoch: training diverged. Likely causes: "
                            "learning rate too high, class weights too large (try weight_clip), or bad labels; "
                            "nothing of this epoch was saved: last.pt (if any) keeps the last good epoch")
    return mean


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device,
             criterion: nn.Module | None = None, amp: bool = False, channels_last: bool = False,
             progress: bool = True, desc: str = "eval") -> dict[str, Any]:
    """Dataset-level metrics (one confusion matrix over the whole loader) at the masks' resolution, the criterion's
    loss ("loss", NaN without one) and the plain cross-entropy ("ce": unweighted, void ignored), which compares runs
    trained with different losses."""
    # BEGIN SOLUTION
    # HINT: eval mode; ONE ConfusionMatrix updated per batch (forward_logits at the mask size); losses x batch size
    model.eval()
    cm = ConfusionMatrix(num_classes, IGNORE_INDEX, device=device)
    loss_sum, ce_sum, n = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for images, masks in tqdm(loader, desc=desc, leave=False, disable=not progress):
        images, masks = _to_device(images, device, channels_last), masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = forward_logits(model, images, masks.shape[-2:])
        if criterion is not None:
            loss_sum += criterion(logits.float(), masks) * images.shape[0]
        ce_sum += F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX) * images.shape[0]
        n += images.shape[0]
        # argmax over channels is ~4x faster on CPU in channels_last (the class axis is innermost); same labels
        cm.update(logits.contiguous(memory_format=torch.channels_last).argmax(1), masks)
    all_reduce_sum(cm.mat)  # every process saw a disjoint shard: the sum is the whole split's matrix
    sums = all_reduce_sum(torch.stack([loss_sum.float(), ce_sum.float(), torch.tensor(float(n), device=device)]))
    out = cm.compute()
    out["loss"] = (sums[0] / sums[2]).item() if criterion is not None and sums[2] > 0 else float("nan")
    out["ce"] = (sums[1] / sums[2]).item() if sums[2] > 0 else float("nan")
    return out
    # END SOLUTION


def eval_batch_size(ds: Any, batch_size: int) -> int:
    """Images of different sizes (real VOC) are evaluated one at a time at native resolution; uniform ones batched."""
    return batch_size if getattr(ds, "uniform_size", False) else 1


# --------------------------------------------------------------------------------------------------------- fit
def early_stop_epoch(scores: list[float], patience: int | None) -> int | None:
    """The 1-based epoch at which training stops: `patience` epochs in a row without a new best score."""
    if patience is None:
        return None
    best, bad = float("-inf"), 0
    for i, s in enumerate(scores, 1):
        if s > best:
            best, bad = s, 0
        else:
            bad += 1
            if bad >= patience:
                return i
    return None


def epochs_that_fit(cfg: Config, elapsed: float, costs: Sequence[float]) -> int | None:
    """How many more epochs fit in cfg.budget_min after `elapsed` seconds, each costing as much as the slowest of
    the last three (`costs`: seconds per epoch, validation and checkpoints included; the last `val_every` when
    that is more, so a validated epoch is among them); None without a budget."""
    if cfg.budget_min is None:
        return None
    if not costs:
        return cfg.epochs
    return max(0, math.floor((60 * cfg.budget_min - elapsed) / max(costs[-max(3, cfg.val_every):])))


def next_position(cfg: Config, done: int, position: float, more: int) -> float | None:
    """The budget's plan after `done` epochs: the next epoch's position on the cosine, or None to stop here.

    `position` is the epoch just trained's, `more` how many epochs still fit. The next epoch is placed as if the run
    had min(cfg.epochs, done + more) epochs, never behind the last position; when at most one more fits, it is the
    last (position 1: it trains at eta_min and is validated). A run stops after its last epoch, so the schedule is
    never cut short. If an epoch ran slower than all three before it, so that none fits any more, the last epoch
    still runs: the budget is then overrun by less than one epoch. Without a scheduler the position only marks the
    last epoch, and a run with no time left for another epoch stops at once."""
    if position >= 1.0:
        return None
    if cfg.scheduler is None and more == 0:
        return None
    if more <= 1:
        return 1.0
    if cfg.scheduler is None:
        return position
    total = min(cfg.epochs, done + more) - cfg.warmup_epochs
    t = done - cfg.warmup_epochs
    return max(position, t / (total - 1) if total > 1 else 1.0)


def planned_epochs(cfg: Config, done: int, stopped: int | None, position: float, more: int | None) -> int:
    """How many epochs the run will have as planned after `done` (the progress bar's total): `done` once stopped,
    the budget's plan (`more` epochs fit; `position` the next epoch's, 1.0 = it is the last) or cfg.epochs."""
    if stopped is not None:
        return done
    if more is None:
        return cfg.epochs
    return min(cfg.epochs, done + (1 if position >= 1.0 else max(1, more)))


@dataclass
class Parts:
    """What `fit` trains with, built once by `build_parts`."""

    device: torch.device
    dist: DistInfo
    train_ds: Any
    val_ds: Any
    model: nn.Module  # the bare model: saved, evaluated, returned
    step_model: nn.Module  # what the training step calls: the model, wrapped by DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    criterion: nn.Module
    workers: int
    plan: dict[int, float] = field(default_factory=dict)  # epoch -> cosine position, filled by a budgeted run


@dataclass
class FitState:
    """What changes from epoch to epoch; last.pt stores it, so a resumed run continues where it stopped."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"miou": -1.0, "epoch": -1, "metrics": {}})
    start: int = 0  # the first (0-based) epoch still to train
    stopped: int | None = None  # 1-based epoch after which training stopped before cfg.epochs
    stop_reason: str | None = None  # None | "early_stop" | "budget"
    elapsed: float = 0.0  # seconds of fit so far, over every session of a resumed run
    position: float = 0.0  # where the last epoch trained sits on the cosine (a budgeted run's plan)
    costs: list[float] = field(default_factory=list)  # seconds each epoch cost, validation and checkpoints included
    last_end: float | None = None  # `elapsed` when this session's previous epoch ended (not saved)


def build_parts(cfg: Config, datasets: tuple[Any, Any] | None, progress: bool) -> Parts:
    """Device (and torchrun process group), seeded data, model, optimizer, schedule, AMP scaler and loss."""
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device.type)  # torchrun: one process per GPU (or CPU worker)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    progress = progress and dist_info.is_main
    seed_everything(cfg.seed)
    train_ds, val_ds = datasets if datasets is not None else build_datasets(cfg)
    if cfg.cache:  # decode once here; forked loader workers share it instead of re-decoding every epoch
        for ds in (train_ds, val_ds):
            if hasattr(ds, "fill_cache"):
                ds.fill_cache(progress)
    model = build_model(cfg.model, num_classes=train_ds.info.num_classes, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = model
    if dist_info.enabled:
        if cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              find_unused_parameters=cfg.freeze_encoder_epochs > 0)
    optimizer = build_optimizer(model, cfg, device)
    plan: dict[int, float] = {}
    scheduler = build_scheduler(cfg, optimizer, plan)
    scaler = torch.amp.GradScaler(device.type, enabled=True) if amp_enabled(cfg, device) else None
    criterion = build_criterion(cfg, train_ds, device, progress)
    workers = cfg.workers if cfg.workers >= 0 else default_workers(device)
    step_model = torch.compile(train_model) if cfg.compile else train_model
    return Parts(device, dist_info, train_ds, val_ds, model, step_model, optimizer, scheduler, scaler, criterion,
                 workers, plan)


def resume_from(cfg: Config, p: Parts, last_path: Path, run_dir: Path, best_dirs: list[Path]) -> FitState:
    """Load last.pt into the parts and return the state it saved; rank 0 also repairs what a kill left behind
    (temp files, a best.pt one epoch behind or missing on this machine, a lagging history.json)."""
    if not last_path.exists():
        raise TrainingError(f"{last_path}: nothing to resume (no last.pt); start without --resume")
    ckpt = resume_state(cfg, last_path)
    p.model.load_state_dict(ckpt["model"])
    p.optimizer.load_state_dict(ckpt["optimizer"])
    p.scheduler.load_state_dict(ckpt["scheduler"])
    if p.scaler is not None and ckpt.get("scaler"):
        p.scaler.load_state_dict(ckpt["scaler"])
    stopped = ckpt.get("stopped_epoch")
    reason = ckpt["stop_reason"] if "stop_reason" in ckpt else implied_stop_reason(cfg, stopped, ckpt["best"]["epoch"])
    s = FitState(ckpt["history"], ckpt["best"], ckpt["epoch"] + 1, stopped, reason, ckpt.get("elapsed", 0.0),
                 ckpt.get("position", 0.0), list(ckpt.get("costs", [])))
    set_rng_state(ckpt["rng"])
    if p.dist.is_main:
        remove_temp_files(run_dir, last_path.parent)
        restore_best(best_dirs, ckpt)
        write_history(run_dir, s.history, s.best["epoch"], s.stopped, s.stop_reason, round(s.elapsed, 1))
    return s


def validates(cfg: Config, p: Parts, epoch: int) -> bool:
    """Whether the 0-based `epoch` is validated: every `val_every`-th epoch and always the last (cfg.epochs, or the
    one a budgeted run planned as its last)."""
    return (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs or p.plan.get(epoch) == 1.0


def train_epoch(cfg: Config, p: Parts, epoch: int, val_loader: DataLoader, progress: bool
                ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Train one epoch and validate it when `validates` says so: (the history row, the validation metrics or None;
    the row's val_* values are then None)."""
    t0 = perf_counter()
    seed_everything(cfg.seed * 1000 + epoch + 7919 * p.dist.rank)  # depends on (seed, epoch, rank) only
    if cfg.freeze_encoder_epochs and hasattr(p.model, "encoder"):
        p.model.encoder.requires_grad_(epoch >= cfg.freeze_encoder_epochs)
    train_loader = slowed(make_loader(p.train_ds, cfg.batch_size, True, p.device, p.workers, cfg.seed, epoch, p.dist))
    lr = p.optimizer.param_groups[-1]["lr"]
    train_loss = train_one_epoch(p.step_model, train_loader, p.criterion, p.optimizer, p.device, epoch, p.scaler,
                                 cfg.channels_last, progress)
    val = None
    if validates(cfg, p, epoch):
        sync_buffers(p.model)
        val = evaluate(with_tta(p.model, cfg.tta), val_loader, p.train_ds.info.num_classes, p.device, p.criterion,
                       amp_enabled(cfg, p.device), cfg.channels_last, progress, desc=f"epoch {epoch + 1} val")
    v = val or {}
    row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": v.get("loss"), "val_ce": v.get("ce"),
           "val_miou": v.get("miou"), "val_pixel_acc": v.get("pixel_acc"),
           "val_mean_class_acc": v.get("mean_class_acc"), "lr": lr, "seconds": perf_counter() - t0}
    return row, val


def record_epoch(cfg: Config, s: FitState, row: dict[str, Any], val: dict[str, Any] | None, classes: Sequence[str],
                 elapsed: float, device: torch.device) -> bool:
    """Add an epoch to the state (history, the epoch to keep, whether and why to stop, the budget's plan for the
    next epoch); True when this epoch becomes the one the run reports."""
    rank0 = torch.tensor([elapsed, row["seconds"]] if current().is_main else [0.0, 0.0], dtype=torch.float64,
                         device=device)
    elapsed, seconds = all_reduce_sum(rank0).tolist()  # every rank plans with rank 0's clock
    s.history.append(row)
    s.costs.append(elapsed - s.last_end if s.last_end is not None else seconds)
    s.elapsed, s.last_end = elapsed, elapsed
    kept = val is not None and (cfg.keep == "last" or val["miou"] > s.best["miou"])
    if kept:
        s.best = {"miou": val["miou"], "epoch": row["epoch"], "metrics": _named_metrics(val, classes)}
    validated = [h for h in s.history if h["val_miou"] is not None]
    stop = early_stop_epoch([h["val_miou"] for h in validated], cfg.patience)  # the one stopping rule
    s.stopped = None if stop is None else validated[stop - 1]["epoch"]
    s.stop_reason = None if s.stopped is None else "early_stop"
    more = epochs_that_fit(cfg, elapsed, s.costs)
    if s.stopped is None and more is not None and row["epoch"] < cfg.epochs:
        position = next_position(cfg, row["epoch"], s.position, more)
        if position is None:
            s.stopped, s.stop_reason = row["epoch"], "budget"
        else:
            s.position = position
    return kept


def save_epoch(cfg: Config, p: Parts, s: FitState, kept: bool, last_path: Path, run_dir: Path,
               best_dirs: list[Path]) -> None:
    """last.pt, then best.pt (when this epoch is kept), then history.json: a resume can always rebuild what comes
    later."""
    weights, classes = plain_state_dict(p.model), list(p.train_ds.info.classes)
    save_last(last_path, {
        "model": weights, "optimizer": p.optimizer.state_dict(), "scheduler": p.scheduler.state_dict(),
        "scaler": p.scaler.state_dict() if p.scaler else None, "epoch": len(s.history) - 1, "history": s.history,
        "best": s.best, "stopped_epoch": s.stopped, "stop_reason": s.stop_reason, "elapsed": s.elapsed,
        "position": s.position, "costs": s.costs, "rng": rng_state(), "config": cfg.to_dict(), "classes": classes})
    if kept:
        save_best(best_dirs, weights, cfg.to_dict(), s.best["epoch"], classes, s.best["metrics"])
    write_history(run_dir, s.history, s.best["epoch"], s.stopped, s.stop_reason, round(s.elapsed, 1))


def fit(cfg: Config, run_dir: str | Path | None = None, resume: bool | str = False, progress: bool = True,
        datasets: tuple[Any, Any] | None = None, checkpoint_dir: str | Path | None = None) -> Run:
    """Train `cfg` end to end and return the run with the model it keeps (best by val mIoU, or the last epoch with
    keep="last"), its history and metrics.

    `resume=True` continues from `checkpoint_dir/last.pt` (default: the run dir), refusing a different config;
    `resume="auto"` does so only when last.pt exists (re-run the same cell after a Colab disconnect).
    `checkpoint_dir` may point elsewhere (e.g. a Google Drive folder on Colab): it then holds last.pt and a copy
    of best.pt, so a resume on a new machine, with a new run dir, ends exactly as an uninterrupted run.
    """
    t_start = perf_counter()
    run_dir = Path(run_dir) if run_dir is not None else run_dir_for(cfg)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else run_dir
    for d in (run_dir, ckpt_dir):
        d.mkdir(parents=True, exist_ok=True)
    best_dirs = [ckpt_dir, run_dir] if ckpt_dir.resolve() != run_dir.resolve() else [run_dir]
    p = build_parts(cfg, datasets, progress)
    main, progress, last_path = p.dist.is_main, progress and p.dist.is_main, ckpt_dir / "last.pt"
    if resume == "auto":
        resume = last_path.exists()
    s = resume_from(cfg, p, last_path, run_dir, best_dirs) if resume else FitState()
    t_start -= s.elapsed  # the budget and fit_seconds count every session of a resumed run
    if main:
        write_config(run_dir, cfg)
    val_loader = make_loader(p.val_ds, eval_batch_size(p.val_ds, cfg.batch_size), False, p.device, p.workers,
                             dist_info=p.dist)
    epochs = tqdm(range(s.start, cfg.epochs), desc=cfg.name, disable=not progress, initial=s.start, total=cfg.epochs)
    for epoch in epochs:
        if s.stopped is not None:
            break
        row, val = train_epoch(cfg, p, epoch, val_loader, progress)
        kept = record_epoch(cfg, s, row, val, p.train_ds.info.classes, perf_counter() - t_start, p.device)
        if cfg.budget_min is not None:
            p.plan[epoch + 1] = s.position
        p.scheduler.step()
        epochs.total = planned_epochs(cfg, epoch + 1, s.stopped, s.position,
                                      epochs_that_fit(cfg, s.elapsed, s.costs))  # a budget re-plans the length
        if progress and s.stop_reason == "budget":
            tqdm.write(f"{cfg.name}: the budget of {cfg.budget_min:g} min is used after epoch {epoch + 1} (of at most "
                       f"{cfg.epochs}); its last epoch trained at lr {row['lr']:.3g}")
        if main:
            save_epoch(cfg, p, s, kept, last_path, run_dir, best_dirs)
        epochs.set_postfix(loss=f"{row['train_loss']:.3f}", miou=f"{val['miou']:.3f}" if val else "-",
                           kept=f"{s.best['miou']:.3f}" if s.best["epoch"] > 0 else "-")
    epochs.close()
    if s.best["epoch"] < 0:
        raise TrainingError(f"no epoch finished in {run_dir}; nothing to report")
    barrier()  # rank 0 has written best.pt
    p.model.load_state_dict(load_checkpoint(run_dir / "best.pt", p.device)["model"])
    metrics = {"split": "val", "epoch": s.best["epoch"], **s.best["metrics"]}
    if main:
        write_metrics(run_dir, metrics)
    return Run(cfg, run_dir, s.history, metrics, s.best["epoch"], s.stopped, s.stop_reason,
               list(p.train_ds.info.classes), with_tta(p.model, cfg.tta).eval(), round(s.elapsed, 1))


def _named_metrics(m: dict[str, Any], classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Metrics with per-class values keyed by class name (JSON-ready; NaN for absent classes)."""
    return {
        "pixel_acc": m["pixel_acc"], "mean_class_acc": m["mean_class_acc"], "miou": m["miou"],
        "fw_iou": m["fw_iou"], "loss": m["loss"], "ce": m["ce"],
        "iou": dict(zip(classes, m["iou"])), "class_acc": dict(zip(classes, m["class_acc"])),
        "num_pixels": m["num_pixels"],
    }


@torch.no_grad()
def predict_samples(model: nn.Module, ds: Any, indices: Sequence[int], device: str | torch.device = "cpu"
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """(images, targets, predictions) for a few dataset indices, predictions at the masks' resolution."""
    model.eval()
    images, targets, preds = [], [], []
    for i in indices:
        img, mask = ds[i]
        logits = forward_logits(model, img[None].to(device), mask.shape[-2:])
        images.append(img)
        targets.append(mask)
        preds.append(logits.argmax(1)[0].cpu())
    return images, targets, preds


