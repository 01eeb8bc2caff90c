"""Multi-process training with the standard tools: torchrun + DistributedDataParallel.

`torchrun --nproc_per_node=N -m starter_code train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; everything here is a
no-op in a plain single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU); single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def current() -> DistInfo:
    """The running job's DistInfo (single process when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes, in place (no-op in a single process)."""
    if current().enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if current().enabled:
        dist.barrier()


class ShardSampler(Sampler[int]):
    """Evaluation split over processes WITHOUT padding (DistributedSampler repeats samples to even the shards,
    which would count some images twice): rank r gets indices r, r + world, r + 2*world, ..."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.n, self.rank, self.world = n, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def sync_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process before evaluating, so all shards are
    scored with the very weights rank 0 saves (DDP only broadcasts buffers at the start of a training forward)."""
    if current().enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
