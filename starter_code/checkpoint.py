"""The files of a run directory, written safely and read back: one writer per file.

A run directory holds config.json, history.json, best.pt, last.pt and metrics.json; last.pt (and a copy of best.pt)
may live in a separate checkpoint folder (Google Drive on Colab) so a lost machine loses nothing. Every write goes
to a temp file first and is then renamed over the old one, so a crash never leaves a half file. Checkpoints hold
only tensors and plain Python data, so they load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import Config

# Keys of last.pt that resume needs; written by `save_last`.
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "best", "rng", "config")
# Fields that describe where a run executes, not what it learns: a resume may change them.
RESUMABLE_CHANGES = ("device", "workers")


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, refused resume, failed checkpoint); the message says why."""


# ------------------------------------------------------------------------------------------------ safe writes
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


RUN_FILES = ("last.pt", "best.pt", "history.json", "config.json", "metrics.json")


def remove_temp_files(*folders: Path) -> None:
    """Delete the temp files of the run's files that a run killed mid-write left behind (they are never read)."""
    for folder in folders:
        for name in RUN_FILES:
            for stale in folder.glob(f".{name}.tmp-*"):
                stale.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ safe reads
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


def read_history(run_dir: str | Path) -> dict[str, Any]:
    """history.json of a run: {"history": [...], "best_epoch", "stopped_epoch", "stop_reason", "fit_seconds"}."""
    return json.loads((Path(run_dir) / "history.json").read_text())


def resume_state(cfg: Config, last: Path) -> dict[str, Any]:
    """last.pt checked for resuming `cfg`: a training checkpoint of the same config (device/workers may differ)."""
    ckpt = load_checkpoint(last)
    missing = [k for k in RESUME_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise TrainingError(f"{last}: not a training checkpoint (missing {', '.join(missing)}); "
                            "resume needs the last.pt written by fit")
    saved = Config.from_dict(ckpt["config"])
    differ = sorted(k for k in cfg.diff(saved) if k not in RESUMABLE_CHANGES)
    if differ:
        detail = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in differ)
        raise TrainingError(f"{last}: cannot resume with a different config ({detail}); "
                            "use the checkpoint's settings or a new --out folder")
    return ckpt


# ------------------------------------------------------------------------------------------ state of a process
def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (and CUDA) generator states as plain data (weights-only loadable)."""
    npst = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
             "numpy": npst[1].tolist(), "numpy_pos": int(npst[2]), "numpy_gauss": [int(npst[3]), float(npst[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured, so a resumed run draws the very numbers the uninterrupted one drew."""
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    has_gauss, gauss = state.get("numpy_gauss", (0, 0.0))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights on the CPU, unwrapped from torch.compile and DDP (loadable into the bare model)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DDP wrapper
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------- one writer per file
def save_last(path: Path, state: dict[str, Any]) -> None:
    """last.pt: everything resume needs (RESUME_KEYS plus scaler, stopped_epoch, stop_reason, elapsed, classes)."""
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise ValueError(f"last.pt state is missing {', '.join(missing)}")
    atomic_save(state, path)


def save_best(folders: list[Path], weights: dict[str, torch.Tensor], config: dict[str, Any], epoch: int,
              classes: list[str], metrics: dict[str, Any]) -> None:
    """best.pt (weights of the best epoch, its config, 1-based epoch, class names, metrics) into each folder:
    the checkpoint folder when it is elsewhere, then the run dir, so a resume on a new machine still has it."""
    ckpt = {"model": weights, "config": config, "epoch": epoch, "classes": list(classes), "metrics": metrics}
    for folder in folders:
        atomic_save(ckpt, folder / "best.pt")


def restore_best(folders: list[Path], last: dict[str, Any]) -> None:
    """After a kill, make best.pt in every folder hold last.pt's best epoch again. When that epoch is the last one
    saved, its weights are last.pt's (best.pt is written after last.pt, so a kill in between left it behind);
    otherwise they are copied from a folder that has them (the checkpoint folder keeps a copy for a new machine)."""
    best = last["best"]
    if best["epoch"] < 0:
        return
    if best["epoch"] == last["epoch"] + 1:
        save_best(folders, last["model"], last["config"], best["epoch"], last["classes"], best["metrics"])
        return
    have = {f: load_checkpoint(f / "best.pt") for f in folders if (f / "best.pt").is_file()}
    good = next((c for c in have.values() if c.get("epoch") == best["epoch"]), None)
    if good is None:
        where = " nor ".join(str(f) for f in folders)
        raise TrainingError(f"{folders[0] / 'best.pt'}: the best epoch's weights (epoch {best['epoch']}) are neither "
                            f"in {where}; this run cannot be resumed without losing them: train it again in a new "
                            "--out folder")
    stale = [f for f in folders if have.get(f, {}).get("epoch") != best["epoch"]]
    save_best(stale, good["model"], good["config"], best["epoch"], good["classes"], good["metrics"])


def implied_stop_reason(cfg: Config, stopped_epoch: int | None, best_epoch: int) -> str | None:
    """Why a run stopped, for files written before the reason was stored: an early stop comes exactly `patience`
    epochs after the best one; any other stop before the last epoch was the time limit."""
    if stopped_epoch is None:
        return None
    return "early_stop" if cfg.patience is not None and stopped_epoch - best_epoch >= cfg.patience else "time_limit"


def write_history(run_dir: Path, history: list[dict[str, Any]], best_epoch: int, stopped_epoch: int | None,
                  stop_reason: str | None, fit_seconds: float | None) -> None:
    """history.json: one row per epoch, the best epoch, where and why training stopped, fit's wall clock."""
    write_json({"history": history, "best_epoch": best_epoch, "stopped_epoch": stopped_epoch,
                "stop_reason": stop_reason, "fit_seconds": fit_seconds}, run_dir / "history.json")


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json: validation metrics of the best epoch (per-class values keyed by class name)."""
    write_json(metrics, run_dir / "metrics.json")


def write_config(run_dir: Path, cfg: Config) -> None:
    """config.json: the run's full Config."""
    write_json(cfg.to_dict(), run_dir / "config.json")
