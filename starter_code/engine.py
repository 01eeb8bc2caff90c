"""The one training engine every notebook and the CLI use: fit / train_one_epoch / evaluate / checkpoints.

A run directory holds config.json, history.json, best.pt, last.pt and metrics.json. Checkpoints hold only
tensors and plain Python data, so they load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .config import Config
from .data import IGNORE_INDEX, build_datasets
from .data.stats import class_stats, class_weights
from .distributed import DistInfo, ShardSampler, all_reduce_sum, barrier, init_distributed, sync_buffers
from .metrics import ConfusionMatrix
from .models import build_model


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, refused resume, failed checkpoint); the message says why."""


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
    """A DataLoader whose shuffle order and worker seeds depend only on (seed, epoch), so resumed runs repeat.
    Under torchrun each process gets its own shard (training: DistributedSampler; evaluation: no padding)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    sampler = None
    if dist_info is not None and dist_info.enabled:
        if train:
            sampler = DistributedSampler(ds, dist_info.world_size, dist_info.rank, shuffle=True, seed=seed,
                                         drop_last=True)
            sampler.set_epoch(epoch)
        else:
            sampler = ShardSampler(len(ds), dist_info.rank, dist_info.world_size)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler,
        drop_last=train and len(ds) > batch_size,
        num_workers=workers, pin_memory=device.type == "cuda", generator=gen,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
    )


def amp_enabled(cfg: Config, device: torch.device) -> bool:
    """Mixed precision only on CUDA (fp16 + GradScaler). Never on CPU: without bf16 units it is far slower."""
    return cfg.amp and device.type == "cuda"


# ------------------------------------------------------------------------------------------ loss, optim, sched
def build_criterion(cfg: Config, train_ds: Any, device: torch.device, progress: bool = False) -> nn.Module:
    """Cross-entropy ignoring void (255), with class weights from the training masks when asked."""
    weight = None
    if cfg.class_weights:
        stats = class_stats(train_ds, progress=progress)
        weight = torch.tensor(class_weights(stats, cfg.class_weights, cfg.weight_clip), dtype=torch.float32)
        weight = weight.to(device)
    return nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)


def param_groups(model: nn.Module, cfg: Config) -> list[dict[str, Any]]:
    """One group, or two when the model has an `encoder` and cfg.encoder_lr is set (transfer learning)."""
    enc = getattr(model, "encoder", None)
    if cfg.encoder_lr is None or enc is None:
        return [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}]
    enc_ids = {id(p) for p in enc.parameters()}
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    return [{"params": list(enc.parameters()), "lr": cfg.encoder_lr, "name": "encoder"},
            {"params": rest, "lr": cfg.lr, "name": "decoder"}]


def lr_factor(cfg: Config, epoch: int, base_lr: float) -> float:
    """Multiplier of the base lr at `epoch` (0-based): linear warmup, then cosine from base to eta_min."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.scheduler is None:
        return 1.0
    if cfg.scheduler != "cosine":
        raise ValueError(f"unknown scheduler {cfg.scheduler!r}; expected None or 'cosine'")
    t, total = epoch - cfg.warmup_epochs, max(1, cfg.epochs - cfg.warmup_epochs)
    lr = cfg.eta_min + (base_lr - cfg.eta_min) * (1 + math.cos(math.pi * t / total)) / 2
    return lr / base_lr


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Epoch-wise schedule (stepped once per epoch), one closed-form lambda per parameter group."""
    lambdas = [lambda e, b=g["lr"]: lr_factor(cfg, e, b) for g in optimizer.param_groups]
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
    """Loss and dataset-level metrics (one confusion matrix over the whole loader), at the masks' resolution."""
    model.eval()
    cm = ConfusionMatrix(num_classes, IGNORE_INDEX, device=device)
    loss_sum, n = torch.zeros((), device=device), 0
    for images, masks in tqdm(loader, desc=desc, leave=False, disable=not progress):
        images, masks = _to_device(images, device, channels_last), masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = forward_logits(model, images, masks.shape[-2:])
        if criterion is not None:
            loss_sum += criterion(logits.float(), masks) * images.shape[0]
            n += images.shape[0]
        cm.update(logits.argmax(1), masks)
    all_reduce_sum(cm.mat)  # every process saw a disjoint shard: the sum is the whole split's matrix
    sums = all_reduce_sum(torch.stack([loss_sum.float(), torch.tensor(float(n), device=device)]))
    out = cm.compute()
    out["loss"] = (sums[0] / sums[1]).item() if sums[1] > 0 else float("nan")
    return out


def eval_batch_size(ds: Any, batch_size: int) -> int:
    """Images of different sizes (real VOC) are evaluated one at a time at native resolution; uniform ones batched."""
    return batch_size if getattr(ds, "uniform_size", False) else 1


# ------------------------------------------------------------------------------------------------- checkpoints
def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then os.replace: a crash never leaves a half file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # disk full, read-only folder, Ctrl-C: never leave the temp file behind
        tmp.unlink(missing_ok=True)
        if not isinstance(e, (OSError, RuntimeError)):  # torch's zip writer reports write errors as RuntimeError
            raise
        kept = "the previous one is intact" if path.exists() else "no earlier checkpoint existed"
        why = (e.strerror if isinstance(e, OSError) else None) or (str(e).strip().splitlines() or [repr(e)])[0]
        raise TrainingError(f"could not write checkpoint {path} ({why}); {kept}") from None


def write_json(obj: Any, path: str | Path) -> None:
    """JSON written atomically (temp file + os.replace)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=float))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"could not write {path} ({e.strerror or e}); the previous version is intact") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; one that would run code is refused with a clear message."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: checkpoint not found") from None
    except pickle.UnpicklingError as e:  # the weights-only unpickler met a Python object it will not build
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[-1] if lines else repr(e))
        raise TrainingError(f"{path}: refused to load: the checkpoint holds Python objects that could execute "
                            f"code ({why.rstrip('.')}); only tensors and plain data are accepted. Load only "
                            "checkpoints you trust, re-saved as tensors + plain data") from None
    except Exception as e:  # zip/pickle read errors: a truncated or corrupt file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise TrainingError(f"{path}: cannot read checkpoint ({type(e).__name__}: {first[:160]}); the file is "
                            "corrupt or truncated: use another checkpoint or train again") from None


def _rng_state() -> dict[str, Any]:
    npst = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
             "numpy": npst[1].tolist(), "numpy_pos": int(npst[2]), "numpy_gauss": [int(npst[3]), float(npst[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    has_gauss, gauss = state.get("numpy_gauss", (0, 0.0))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DDP wrapper
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


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


@dataclass
class RunResult:
    """What `fit` returns: the trained (best) model and everything written to the run directory."""

    config: Config
    run_dir: Path
    model: nn.Module
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    best_epoch: int
    stopped_epoch: int | None
    classes: list[str] = field(default_factory=list)


def over_time_limit(cfg: Config, elapsed_s: float, history: list[dict[str, Any]]) -> bool:
    """True when one more epoch (as long as the slowest so far) would end past cfg.time_limit_min.
    A guard for slower machines: a recipe sized to its budget never triggers it on the machine it was sized on."""
    if cfg.time_limit_min is None or not history:
        return False
    return elapsed_s + max(h["seconds"] for h in history) > 60 * cfg.time_limit_min


def default_run_dir(cfg: Config) -> Path:
    """runs/<experiment name>-<dataset>."""
    return Path("runs") / f"{cfg.name}-{cfg.dataset}"


def _resume_state(cfg: Config, last: Path) -> dict[str, Any]:
    ckpt = load_checkpoint(last)
    needed = ("model", "optimizer", "scheduler", "epoch", "history", "best", "bad_epochs", "rng", "config")
    missing = [k for k in needed if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise TrainingError(f"{last}: not a training checkpoint (missing {', '.join(missing)}); "
                            "resume needs the last.pt written by fit")
    saved = Config.from_dict(ckpt["config"])
    differ = sorted(k for k, (a, b) in cfg.diff(saved).items() if k not in ("device", "workers"))
    if differ:
        detail = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in differ)
        raise TrainingError(f"{last}: cannot resume with a different config ({detail}); "
                            "use the checkpoint's settings or a new --out folder")
    return ckpt


def fit(cfg: Config, run_dir: str | Path | None = None, resume: bool | str = False, progress: bool = True,
        datasets: tuple[Any, Any] | None = None, checkpoint_dir: str | Path | None = None) -> RunResult:
    """Train `cfg` end to end and return the best model (by val mIoU) with its history and metrics.

    `resume=True` continues from `checkpoint_dir/last.pt` (default: the run dir), refusing a different config;
    `resume="auto"` does so only when last.pt exists (re-run the same cell after a Colab disconnect).
    `checkpoint_dir` may point elsewhere (e.g. a Google Drive folder on Colab) so a disconnect loses nothing.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device.type)  # torchrun: one process per GPU (or CPU worker)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    main = dist_info.is_main  # only rank 0 writes files and draws progress bars
    progress = progress and main
    t_start = time.perf_counter()
    seed_everything(cfg.seed)
    train_ds, val_ds = datasets if datasets is not None else build_datasets(cfg)
    if cfg.cache:  # decode once here; forked loader workers share it instead of re-decoding every epoch
        for ds in (train_ds, val_ds):
            if hasattr(ds, "fill_cache"):
                ds.fill_cache(progress)
    info = train_ds.info
    model = build_model(cfg.model, num_classes=info.num_classes, **cfg.model_kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = model
    if dist_info.enabled:
        if cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              find_unused_parameters=cfg.freeze_encoder_epochs > 0)
    optimizer = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = build_scheduler(cfg, optimizer)
    use_amp = amp_enabled(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp) if use_amp else None
    criterion = build_criterion(cfg, train_ds, device, progress)
    workers = cfg.workers if cfg.workers >= 0 else default_workers(device)
    step_model = torch.compile(train_model) if cfg.compile else train_model

    history: list[dict[str, Any]] = []
    best = {"miou": -1.0, "epoch": -1, "metrics": {}}
    bad_epochs, start, stopped = 0, 0, None
    last_path = ckpt_dir / "last.pt"
    if resume == "auto":
        resume = last_path.exists()
    if resume:
        if not last_path.exists():
            raise TrainingError(f"{last_path}: nothing to resume (no last.pt); start without --resume")
        ckpt = _resume_state(cfg, last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        history, best, bad_epochs = ckpt["history"], ckpt["best"], ckpt["bad_epochs"]
        start, stopped = ckpt["epoch"] + 1, ckpt.get("stopped_epoch")
        _set_rng_state(ckpt["rng"])
    if resume and main:
        for name in ("last.pt", "best.pt", "history.json", "config.json", "metrics.json"):
            for stale in {*ckpt_dir.glob(f".{name}.tmp-*"), *run_dir.glob(f".{name}.tmp-*")}:
                stale.unlink(missing_ok=True)  # left by a run killed mid-write; never read
        if best["epoch"] == start:  # best.pt is written after last.pt: a kill in between left it one epoch behind
            atomic_save({"model": ckpt["model"], "config": ckpt["config"], "epoch": best["epoch"],
                         "classes": ckpt["classes"], "metrics": best["metrics"]}, run_dir / "best.pt")
        write_json({"history": history, "best_epoch": best["epoch"], "stopped_epoch": stopped},
                   run_dir / "history.json")  # may lag last.pt by one epoch after a kill
    if main:
        write_json(cfg.to_dict(), run_dir / "config.json")

    val_loader = make_loader(val_ds, eval_batch_size(val_ds, cfg.batch_size), False, device, workers,
                             dist_info=dist_info)
    epochs = tqdm(range(start, cfg.epochs), desc=cfg.name, disable=not progress, initial=start, total=cfg.epochs)
    for epoch in epochs:
        if stopped is not None:
            break
        t0 = time.perf_counter()
        seed_everything(cfg.seed * 1000 + epoch + 7919 * dist_info.rank)  # depends on (seed, epoch, rank) only
        if cfg.freeze_encoder_epochs and hasattr(model, "encoder"):
            model.encoder.requires_grad_(epoch >= cfg.freeze_encoder_epochs)
        train_loader = make_loader(train_ds, cfg.batch_size, True, device, workers, cfg.seed, epoch, dist_info)
        lr = optimizer.param_groups[-1]["lr"]
        train_loss = train_one_epoch(step_model, train_loader, criterion, optimizer, device, epoch, scaler,
                                     cfg.channels_last, progress)
        scheduler.step()
        sync_buffers(model)
        val = evaluate(model, val_loader, info.num_classes, device, criterion, use_amp, cfg.channels_last,
                       progress, desc=f"epoch {epoch + 1} val")
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"], "val_miou": val["miou"],
               "val_pixel_acc": val["pixel_acc"], "val_mean_class_acc": val["mean_class_acc"], "lr": lr,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        improved = val["miou"] > best["miou"]
        if improved:
            best = {"miou": val["miou"], "epoch": epoch + 1, "metrics": _named_metrics(val, info.classes)}
        bad_epochs = epoch + 1 - best["epoch"]  # kept in last.pt for readers of the checkpoint
        stopped = early_stop_epoch([h["val_miou"] for h in history], cfg.patience)  # the one stopping rule
        late = over_time_limit(cfg, time.perf_counter() - t_start, history) and epoch + 1 < cfg.epochs
        late = bool(all_reduce_sum(torch.tensor(float(late), device=device)) > 0)  # every rank stops together
        if stopped is None and late:
            stopped = epoch + 1
            if progress:
                tqdm.write(f"{cfg.name}: stopping after epoch {epoch + 1} of {cfg.epochs}: another epoch would end "
                           f"past time_limit_min={cfg.time_limit_min:g} (best epoch {best['epoch']} is kept)")
        if not main:
            continue
        atomic_save({"model": _plain_state_dict(model), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                     "epoch": epoch, "history": history, "best": best, "bad_epochs": bad_epochs,
                     "stopped_epoch": stopped, "rng": _rng_state(), "config": cfg.to_dict(),
                     "classes": list(info.classes)}, last_path)
        if improved:  # after last.pt, so a resume can always rebuild best.pt from last.pt (see the resume block)
            atomic_save({"model": _plain_state_dict(model), "config": cfg.to_dict(), "epoch": epoch + 1,
                         "classes": list(info.classes), "metrics": best["metrics"]}, run_dir / "best.pt")
        write_json({"history": history, "best_epoch": best["epoch"], "stopped_epoch": stopped,
                    "fit_seconds": round(time.perf_counter() - t_start, 1)},  # wall clock of this process's fit
                   run_dir / "history.json")
        epochs.set_postfix(loss=f"{train_loss:.3f}", miou=f"{val['miou']:.3f}", best=f"{best['miou']:.3f}")
    epochs.close()

    if best["epoch"] < 0:
        raise TrainingError(f"no epoch finished in {run_dir}; nothing to report")
    barrier()  # rank 0 has written best.pt
    model.load_state_dict(load_checkpoint(run_dir / "best.pt", device)["model"])
    metrics = {"split": "val", "epoch": best["epoch"], **best["metrics"]}
    if main:
        write_json(metrics, run_dir / "metrics.json")
    return RunResult(cfg, run_dir, model, history, metrics, best["epoch"], stopped, list(info.classes))


def _named_metrics(m: dict[str, Any], classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Metrics with per-class values keyed by class name (JSON-ready; NaN for absent classes)."""
    return {
        "pixel_acc": m["pixel_acc"], "mean_class_acc": m["mean_class_acc"], "miou": m["miou"],
        "fw_iou": m["fw_iou"], "loss": m["loss"],
        "iou": dict(zip(classes, m["iou"])), "class_acc": dict(zip(classes, m["class_acc"])),
        "num_pixels": m["num_pixels"],
    }


def load_run(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
             ) -> tuple[nn.Module, Config, dict[str, Any]]:
    """Rebuild a trained model from a run directory: (model in eval mode, its Config, the checkpoint dict)."""
    path = Path(run_dir) / f"{which}.pt"
    ckpt = load_checkpoint(path, device)
    cfg = Config.from_dict(ckpt["config"])
    kwargs = dict(cfg.model_kwargs)
    if "pretrained" in kwargs:
        kwargs["pretrained"] = False  # the checkpoint holds every weight: never fetch ImageNet ones to open a run
    model = build_model(cfg.model, num_classes=len(ckpt["classes"]), **kwargs)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg, ckpt


def read_history(run_dir: str | Path) -> dict[str, Any]:
    """history.json of a run: {"history": [...], "best_epoch", "stopped_epoch"}."""
    return json.loads((Path(run_dir) / "history.json").read_text())


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

