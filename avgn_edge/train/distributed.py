"""Training across processes with torch.distributed (DDP), launched by torchrun.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them this is one process and every
helper below is a no-op. The backend is NCCL on CUDA and gloo otherwise (the CPU tests).

Semantics that keep N processes equivalent to one: ``--batch-size`` is the global batch,
split evenly; every process draws the same global permutation and takes its slice of each
global batch (batches.py); gradients are averaged by DDP; logged losses and validation
scores are reduced across processes; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import InputError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1          # processes on this machine

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """The process's place in a torchrun job (rank 0 of 1 when not launched by torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        raise InputError("RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE must be integers "
                         "(torchrun sets them)") from None
    return Dist(rank, world, local, local_world)


def init(d: Dist, device: torch.device):
    """Join the process group (once per process)."""
    if not d.active or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=d.rank, world_size=d.world,
                            device_id=device if device.type == "cuda" else None)


def shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()


def mean(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """The mean over processes of a tensor (each process's own value when alone)."""
    if not d.active:
        return values
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / d.world


def gather(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Concatenate every process's ``t`` (first dimensions may differ) in rank order."""
    if not d.active:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(d.world)]
    dist.all_gather(sizes, n)
    most = int(max(s.item() for s in sizes))
    padded = torch.zeros((most, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[:t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(d.world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(s.item())] for p, s in zip(parts, sizes)])


def broadcast_flag(flag: bool, d: Dist, device: torch.device) -> bool:
    """Rank 0's decision, for every process."""
    if not d.active:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def barrier(d: Dist):
    if d.active:
        dist.barrier()


def check_in_sync(model, d: Dist, device: torch.device):
    """All processes must hold the same weights (DDP's invariant); a cheap checksum proves it."""
    if not d.active:
        return
    s = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().to(device)
    lo, hi = s.clone(), s.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if lo.item() != hi.item():
        raise RuntimeError(f"processes hold different weights after training (checksums {lo.item()} .. {hi.item()})")


def check_same_start(stage: int, step: int, d: Dist, device: torch.device):
    """Every process must resume from the same point: on several machines, --out must be shared."""
    if not d.active:
        return
    t = torch.tensor([stage, step], device=device)
    lo, hi = t.clone(), t.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise InputError(f"the processes found different runs in the run folder (stage/step {lo.tolist()} .. "
                         f"{hi.tolist()})", hint="on several machines --out must be a folder they all see "
                                                 "(a shared file system)")


def split_batch(batch_size: int, d: Dist) -> int:
    if batch_size % d.world:
        raise InputError(f"--batch-size {batch_size} does not split evenly over {d.world} processes",
                         hint=f"use a multiple of {d.world} (the batch size is the global batch)")
    return batch_size // d.world
