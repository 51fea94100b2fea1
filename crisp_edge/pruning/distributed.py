"""Run the training loops under ``torchrun`` with DistributedDataParallel (docs/pruning.md#many-processes-torchrun).

The same code serves one process and many: :func:`context` reads the environment ``torchrun``
sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); with a world of one nothing is initialised and
every helper here is a no-op. With more ranks, :func:`init` starts the process group (``gloo`` on
CPU, ``nccl`` with CUDA), :func:`wrap` puts the model in DDP, :func:`all_reduce_mean` averages
tensors, and only the main rank (rank 0) writes files and prints progress.

    torchrun --nproc_per_node 2 -m crisp_edge.cli prune --arch resnet18_cifar ...

Data: every rank reads the same data set through a ``DistributedSampler`` seeded like the
single-process sampler, and the per-rank batch is the global batch divided by the world size, so
one optimiser step sees the same global batch of samples as a single-process run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from crisp_edge.errors import ArgumentError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``world_size`` ranks in all, this one is ``rank``."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes checkpoints, reports and progress."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ArgumentError(f"environment variable {name}={value!r} is not an integer") from None


def context() -> DistContext:
    """The distributed context from ``torchrun``'s environment (a world of one without it)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ArgumentError(f"RANK={rank} does not fit WORLD_SIZE={world}")
    device = f"cuda:{local}" if world > 1 and torch.cuda.is_available() else "cpu"
    return DistContext(world_size=world, rank=rank, local_rank=local, device=device)


def init(ctx: DistContext) -> None:
    """Start the process group for ``ctx`` (idempotent; nothing to do for a world of one)."""
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if ctx.device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)


def shutdown() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session() -> Iterator[DistContext]:
    """``with session() as ctx:`` initialises the process group if needed and always destroys
    it afterwards, also when the body raises."""
    ctx = context()
    init(ctx)
    try:
        yield ctx
    finally:
        shutdown()


def active() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if active():
        dist.barrier()


def device() -> torch.device:
    """Where the model runs: this rank's GPU under an NCCL process group, else the CPU."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _collective_buffer(tensor: torch.Tensor) -> torch.Tensor:
    """A buffer the backend accepts: NCCL needs CUDA tensors, and bool goes as uint8."""
    buf = tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor
    if dist.get_backend() == "nccl" and not buf.is_cuda:
        buf = buf.to(device())
    return buf


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` in place over the ranks and return it (unchanged in one process)."""
    if active():
        buf = _collective_buffer(tensor)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        buf.div_(dist.get_world_size())
        if buf is not tensor:
            tensor.copy_(buf)
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s value (bool tensors included)."""
    if active():
        buf = _collective_buffer(tensor)
        dist.broadcast(buf, src)
        if buf is not tensor:
            tensor.copy_(buf.to(tensor.dtype))
    return tensor


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when a process group runs, else ``model`` itself."""
    if not active():
        return model
    device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def world_size() -> int:
    """Number of ranks of the running process group (1 without one)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on rank 0 (and in one process)."""
    return rank() == 0
