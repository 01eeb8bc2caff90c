"""What every benchmark shares: the machine's description, interleaved timing, JSON output, the data it uses.

Every timing is a RATIO measured side by side in one process: other jobs may share the cores, so absolute
seconds are noisy, but two paths timed interleaved (round-robin, order reversed every other round, median of the
rounds) see the same machine. Each result records the machine (torch version, threads, CPU model, load average).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED_DATA = REPO.parent / "shared" / "data"
CAMVID_ROOT = SHARED_DATA / "camvid"
SYNTHETIC_ROOT = Path("build/bench/synthetic")  # the benchmarks' own copy of the default 600/200 @ 128 set


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags that matter for fp32/bf16 speed (avx2, fma, avx512f, avx512_bf16, amx_bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]


def machine_info() -> dict[str, Any]:
    """torch version, threads, cores, CPU model and flags, and the load average now (how busy the box is)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    return {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(), "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "cuda": torch.cuda.is_available(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def median(xs: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(xs))


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (None: leave as is)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 n x n matmul rate (GFLOP/s, median of `repeats`) with the current threads: the machine's roofline."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / median(times) / 1e9


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each fn, called round-robin `rounds` times; the order is reversed every other round."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    return times


def save_json(obj: Any, path: str | Path | None) -> None:
    """Write `obj` as indented JSON (parents created); None writes nothing."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def build(name: str, num_classes: int, state: dict[str, torch.Tensor] | None = None, **kwargs: Any) -> nn.Module:
    """A registered model, never with downloaded weights (the speed does not depend on them), optionally
    loaded with `state` so every timed path starts from the same weights."""
    from starter_code.models import build_model

    if name.startswith("resnet34"):
        kwargs.setdefault("pretrained", False)
    model = build_model(name, num_classes=num_classes, **kwargs)
    if state is not None:
        model.load_state_dict(state)
    return model


def dataset_root(dataset: str, data_root: str | Path | None) -> Path:
    """`data_root`, else the shared CamVid copy or the benchmarks' own synthetic set."""
    if data_root is not None:
        return Path(data_root)
    return CAMVID_ROOT if dataset == "camvid" else SYNTHETIC_ROOT


def ensure_synthetic(root: str | Path, n_train: int = 600, n_val: int = 200, size: int = 128) -> float:
    """Make sure the synthetic set exists under root; return the seconds it took (0 when it was already there)."""
    from starter_code.data.synthetic import generate_synthetic_voc

    t = time.perf_counter()
    generate_synthetic_voc(root, n_train=n_train, n_val=n_val, size=size, seed=0, progress=False)
    return time.perf_counter() - t


def iterate(loader: Any, max_batches: int | None) -> tuple[int, float]:
    """(images, seconds) of one pass over a loader, stopping after `max_batches` batches."""
    t, n = time.perf_counter(), 0
    for i, (images, _) in enumerate(loader):
        n += images.shape[0]
        if max_batches is not None and i + 1 >= max_batches:
            break
    return n, time.perf_counter() - t


def ints(s: str) -> list[int]:
    """"0,1,2" -> [0, 1, 2] (an argparse type)."""
    return [int(x) for x in s.split(",") if x.strip()]


def bools(s: str) -> list[bool]:
    """"false,true" -> [False, True] (an argparse type)."""
    return [x.strip().lower() in ("1", "true", "yes", "on") for x in s.split(",") if x.strip()]
