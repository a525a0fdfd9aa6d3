"""Training in several processes: DistributedDataParallel when a program is launched by torchrun.

``torchrun --nproc_per_node=N -m srlib train ...`` (or ``torchrun ... script.py``) starts N copies
of a program and tells each its place through the environment: ``WORLD_SIZE`` (N, over all
machines), ``RANK`` (0 to N-1) and ``LOCAL_RANK`` (its number on its machine, which picks its GPU).
:func:`srlib.train.fit` calls :func:`join`; without those variables, or with ``WORLD_SIZE=1``, the
:class:`World` it gets is one process and every method below leaves the one-process loop as it is.

Under torchrun, ``fit``

* joins the process group (NCCL on CUDA, Gloo on the CPU) unless the program has done so, and
  trains on ``cuda:LOCAL_RANK`` (or on the CPU);
* runs model and loss as one module wrapped in DistributedDataParallel, which averages the
  gradients over the processes: every step learns from N x ``batch_size`` patches;
* cuts every batch of N x ``batch_size`` indices of the seeded order into N disjoint parts, part
  ``r`` for rank ``r``: the patches of a step are a function of (seed, step, rank), so a resumed
  run continues exactly. Each part remembers the first index of the whole batch
  (:class:`BatchPart`): a dataset that draws one scale per batch (MDSR's) draws it from that index,
  so every process trains the same scale at every step;
* shares batch normalisation's statistics over the processes (:class:`SyncedBatchNorm2d`): a step
  normalises with the mean and variance of all N x ``batch_size`` patches, as one process with the
  whole batch would, and every process keeps the same running statistics;
* records the mean loss of the N parts; validates, saves, prints and reads the checkpoint on
  rank 0 only, and hands the others what they need (the PSNR; on resume, the checkpoint); they
  wait at a barrier while rank 0 saves.

Every process seeds its generators with the same ``seed``, and on resume restores those rank 0
saved: augmentation that draws from the global generators draws alike in every process (on other
patches), before and after a restart, provided validation (run by rank 0 alone) draws nothing.

Checkpoints hold the bare model's weights (no ``module.`` prefix): a run of N processes and a run
of one write the same kind of file, and either continues the other. Only rank 0 reads and writes
it, so the other machines need no shared disk as long as rank 0 stays on the same machine
(``--node_rank=0`` there, with torchrun's static rendezvous). ``fit`` leaves the process group up
(a program may train several models); :func:`leave` ends it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["World", "BatchPart", "SyncedBatchNorm2d", "this_process", "join", "leave"]


@dataclass(frozen=True)
class World:
    """This process's place among the processes that train together: rank 0 of 1 without torchrun."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, saves, reads checkpoints and prints."""
        return self.rank == 0

    @property
    def facts(self) -> dict:
        """What a checkpoint records about the processes; nothing for a single one."""
        return {"processes": self.size} if self.size > 1 else {}

    def loss(self, model: torch.nn.Module, loss_fn: Callable) -> Callable[..., torch.Tensor]:
        """``batch -> loss_fn(model, *batch)``, under torchrun through DistributedDataParallel.

        DDP wraps model and loss together: the papers' losses call more than ``model(x)``
        (``forward_all``, ``dual``, ...), and all of it must run inside DDP's forward for the
        gradients to be averaged. ``static_graph``: every step uses the same parameters, which
        may leave some out, and may call a module twice (DRN's semi-supervised loss). A model whose
        steps use different parameters says so with ``varying_parameters = True`` (MDSR, whose
        scale changes from batch to batch): DDP then looks for the unused ones at every step.
        Batch normalisation layers become :class:`SyncedBatchNorm2d`."""
        if self.size == 1:
            return partial(loss_fn, model)
        share_batch_norm_statistics(model)
        varying = bool(getattr(model, "varying_parameters", False))
        return DistributedDataParallel(_ModelAndLoss(model, loss_fn), device_ids=self._device_ids,
                                       static_graph=not varying, find_unused_parameters=varying)

    def share(self, order: Iterator[list[int]]) -> Iterator[list[int]]:
        """This process's part of every batch of ``order``: part ``rank`` of ``size`` equal parts."""
        if self.size == 1:
            return order
        return (BatchPart(b[self.rank * len(b) // self.size: (self.rank + 1) * len(b) // self.size], first=b[0])
                for b in order)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (the loss of the whole step)."""
        if self.size == 1:
            return value
        total = torch.tensor(value, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.size

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set in any process: all stop at the same step after a Ctrl-C."""
        if self.size == 1:
            return flag
        raised = torch.tensor(int(flag), device=self.device)
        dist.all_reduce(raised, op=dist.ReduceOp.MAX)
        return bool(raised.item())

    def from_main(self, compute: Callable[[], Any]) -> Any:
        """``compute()``, run on rank 0 only, its result handed to every process."""
        if self.size == 1:
            return compute()
        box = [compute() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every process gets here (the others, while rank 0 writes a checkpoint)."""
        if self.size > 1:
            dist.barrier(device_ids=self._device_ids)

    @property
    def _device_ids(self) -> list[int] | None:
        return [self.device.index] if self.device is not None and self.device.type == "cuda" else None


class BatchPart(list):
    """One process's part of a step's batch of indices, and ``first``, the whole batch's first index."""

    def __init__(self, indices, first: int):
        super().__init__(indices)
        self.first = first


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """Batch normalisation whose training statistics are those of the whole step, over every process.

    Each process sums its part of the batch; one all-reduce gives the sums of the whole batch, and
    the all-reduce's backward pass carries every process's share of the gradient back through the
    shared mean and variance. With one process, or in eval mode, it is ``nn.BatchNorm2d``. Unlike
    ``nn.SyncBatchNorm`` it runs on the CPU (Gloo) as well as on GPUs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        count = torch.full((1,), x.numel() // channels, dtype=torch.float64, device=x.device)
        sums = torch.cat([x.sum((0, 2, 3), dtype=torch.float64), (x * x).sum((0, 2, 3), dtype=torch.float64), count])
        sums = _SumOverProcesses.apply(sums)
        n = sums[-1]
        mean = sums[:channels] / n
        var = sums[channels: 2 * channels] / n - mean * mean  # float64: no cancellation to speak of
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_((var * n / (n - 1)).to(self.running_var.dtype), momentum)
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype  # as autocast's batch_norm
        y = (x.to(dtype) - mean.to(dtype)[:, None, None]) * (var + self.eps).rsqrt().to(dtype)[:, None, None]
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y


class _SumOverProcesses(torch.autograd.Function):
    """The sum of a tensor over the processes, and its gradient: the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def share_batch_norm_statistics(model: nn.Module) -> None:
    """Turn ``model``'s ``nn.BatchNorm2d`` layers into :class:`SyncedBatchNorm2d`, in place: the same
    modules, parameters and buffers (an optimizer built on them stays valid), with the shared forward."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = SyncedBatchNorm2d


class _ModelAndLoss(torch.nn.Module):
    """The model and its loss as one module: what DistributedDataParallel wraps."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, *batch)


def this_process() -> World:
    """Rank and number of processes: the process group's if there is one, else torchrun's variables."""
    if dist.is_available() and dist.is_initialized():
        rank, size = dist.get_rank(), dist.get_world_size()
    else:
        rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if size <= 1:
        return World()
    return World(rank=rank, size=size, local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def join(device: torch.device) -> World:
    """This process's :class:`World`, on ``device``. Under torchrun, with the process group joined
    (NCCL on CUDA, Gloo otherwise) and, with CUDA, on this machine's GPU number ``LOCAL_RANK``."""
    world = this_process()
    if world.size > 1 and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if world.size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")  # rendezvous: torchrun's variables
    return dataclasses.replace(world, device=device)


def leave() -> None:
    """End the process group, if there is one: the last call of a program launched by torchrun."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
