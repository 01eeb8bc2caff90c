"""Where an epoch of `camvid_fast` goes: set-up, loader start-up, data, training steps, validation, checkpoints.

    python -m benchmarks.camvid_epoch [--epochs 2] [--workers 0,2] [--json FILE]

Builds the recipe's parts once (`engine.build_parts`: cache fill, class statistics), then for each epoch times,
with the engine's own functions: the training loader's start-up (make_loader + first batch), the time spent
waiting for batches, the training steps, validation (waiting for batches vs the forward pass and metrics), and
each checkpoint writer (last.pt, best.pt, history.json). For loader workers > 0 it also times a fresh loader per
epoch (what `fit` did: forking processes that hold the decoded cache) against one persistent loader, side by
side. Shares of the epoch are what to read on a shared box; the load average is recorded with every row.
Writes benchmarks/results/camvid_epoch.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from starter_code import checkpoint, engine
from starter_code.config import EXPERIMENTS, Config

from .common import CAMVID_ROOT, RESULTS, ints, machine_info, median, save_json


class TimedLoader:
    """A loader that adds up the seconds spent waiting for its batches (its start-up included)."""

    def __init__(self, loader: Any) -> None:
        self.loader, self.wait, self.first = loader, 0.0, None

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        t = time.perf_counter()
        it = iter(self.loader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                self.wait += time.perf_counter() - t
                return
            now = time.perf_counter()
            self.wait += now - t
            if self.first is None:
                self.first = now - t
            yield batch
            t = time.perf_counter()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def time_epoch(cfg: Config, p: engine.Parts, epoch: int, val_loader: Any, run_dir: Path) -> dict[str, Any]:
    """One epoch as `fit` runs it, each part timed (seconds) on its own."""
    t0 = time.perf_counter()
    engine.seed_everything(cfg.seed * 1000 + epoch)
    train = TimedLoader(engine.make_loader(p.train_ds, cfg.batch_size, True, p.device, p.workers, cfg.seed, epoch))
    t1 = time.perf_counter()
    engine.train_one_epoch(p.step_model, train, p.criterion, p.optimizer, p.device, epoch, p.scaler,
                           cfg.channels_last, progress=False)
    t2 = time.perf_counter()
    val = TimedLoader(val_loader)
    m = engine.evaluate(p.model, val, p.train_ds.info.num_classes, p.device, p.criterion,
                        channels_last=cfg.channels_last, progress=False)
    t3 = time.perf_counter()
    weights = checkpoint.plain_state_dict(p.model)
    state = {"model": weights, "optimizer": p.optimizer.state_dict(), "scheduler": p.scheduler.state_dict(),
             "epoch": epoch, "history": [{"epoch": e} for e in range(epoch + 1)], "best": {"epoch": epoch},
             "rng": checkpoint.rng_state(), "config": cfg.to_dict(), "classes": list(p.train_ds.info.classes)}
    checkpoint.save_last(run_dir / "last.pt", state)
    t4 = time.perf_counter()
    checkpoint.save_best([run_dir], weights, cfg.to_dict(), epoch + 1, state["classes"], {"miou": m["miou"]})
    t5 = time.perf_counter()
    checkpoint.write_history(run_dir, state["history"], epoch + 1, None, None, 1.0)
    t6 = time.perf_counter()
    row = {"epoch": epoch + 1, "workers": p.workers, "loader_make": t1 - t0, "train_first_batch": train.first,
           "train_data_wait": train.wait, "train_steps": (t2 - t1) - train.wait, "train": t2 - t1,
           "val_data_wait": val.wait, "val_compute": (t3 - t2) - val.wait, "val": t3 - t2,
           "last_pt": t4 - t3, "best_pt": t5 - t4, "history_json": t6 - t5,
           "last_pt_mb": (run_dir / "last.pt").stat().st_size / 1e6, "total": t6 - t0, "val_miou": m["miou"],
           "loadavg": _load()}
    row["share"] = {k: row[k] / row["total"] for k in ("loader_make", "train_data_wait", "train_steps",
                                                       "val_data_wait", "val_compute", "last_pt", "best_pt",
                                                       "history_json")}
    return row


def loader_start(p: engine.Parts, cfg: Config, workers: int, rounds: int) -> dict[str, Any]:
    """Seconds to the first batch of an epoch: a fresh loader (new worker processes forked from this process,
    which holds the decoded cache) vs a second pass over one persistent loader; interleaved, median of rounds."""
    fresh, again = [], []
    keep = engine.make_loader(p.train_ds, cfg.batch_size, True, p.device, workers, cfg.seed, 0)
    next(iter(keep))  # start its workers once
    for r in range(rounds):
        for kind in ("fresh", "persistent") if r % 2 == 0 else ("persistent", "fresh"):
            t = time.perf_counter()
            loader = keep if kind == "persistent" else engine.make_loader(p.train_ds, cfg.batch_size, True, p.device,
                                                                          workers, cfg.seed, r)
            it = iter(loader)
            next(it)
            (fresh if kind == "fresh" else again).append(time.perf_counter() - t)
            del it
    return {"workers": workers, "fresh_first_batch_s": median(fresh), "persistent_first_batch_s": median(again),
            "fresh": fresh, "persistent": again, "loadavg": _load()}


def bench(data_root: str | Path, epochs: int, workers: Sequence[int], rounds: int, threads: int | None
          ) -> dict[str, Any]:
    """Set-up once, `epochs` timed epochs with the recipe's loader setting, then loader start-up per workers."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    cfg = replace(EXPERIMENTS["camvid_fast"], data_root=str(data_root), device="cpu")
    t = time.perf_counter()
    p = engine.build_parts(cfg, None, progress=False)
    setup = time.perf_counter() - t
    val_loader = engine.make_loader(p.val_ds, engine.eval_batch_size(p.val_ds, cfg.batch_size), False, p.device,
                                    p.workers)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in range(epochs):
            rows.append(time_epoch(cfg, p, e, val_loader, Path(tmp)))
            print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items() if k != "share"},
                  flush=True)
    starts = [loader_start(p, cfg, w, rounds) for w in workers if w > 0]
    for s in starts:
        print(f"workers={s['workers']}: first batch fresh {s['fresh_first_batch_s']:.2f} s, "
              f"persistent {s['persistent_first_batch_s']:.2f} s", flush=True)
    mean_share = {k: sum(r["share"][k] for r in rows) / len(rows) for k in rows[0]["share"]}
    return {"benchmark": "camvid_epoch", "config": cfg.to_dict(), "setup_s": setup, "epochs": rows,
            "mean_share": mean_share, "loader_start": starts, "machine": machine_info()}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `camvid-epoch` sub-command."""
    p = sub.add_parser("camvid-epoch", help="where an epoch of camvid_fast goes", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(CAMVID_ROOT))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=ints, default=[2], help="loader workers whose start-up is timed (>0)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=None)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark (the JSON is written by the caller)."""
    r = bench(args.data_root, args.epochs, args.workers, args.rounds, args.threads)
    print("mean share of an epoch: " + ", ".join(f"{k} {v:.1%}" for k, v in r["mean_share"].items()))
    return r


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.camvid_epoch [options]` (until it is registered in benchmarks/__main__.py)."""
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m benchmarks.camvid_epoch")
    sub = add_parser(parser.add_subparsers(dest="benchmark", required=True))
    sub.add_argument("--json", default=str(RESULTS / "camvid_epoch.json"))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(["camvid-epoch", *argv])
    args.command = shlex.join(["python", "-m", "benchmarks.camvid_epoch", *argv])
    result = run(args)
    result["command"] = args.command
    save_json(result, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
