"""Multi-process data parallelism for ``torchrun``: process-group set-up from the environment,
per-rank batch sharding, DDP wrapping and teardown.

Design (how a distributed run reproduces a single-process one):

- every rank draws the **same** global batch order (``epoch_generator(seed, epoch)`` is
  rank-independent) and takes its contiguous part with :func:`split_batch`, so the global
  batch of ``W`` ranks x ``B`` clips is exactly the single-process batch of ``W*B`` clips, in order;
- :class:`~asma.losses.BarlowTwinsLoss` all-gathers the projections with gradients, so every rank
  computes the loss of the global batch, and DDP's gradient averaging then yields the gradient of
  the single-process loss (checked in ``tests/train/test_distributed.py``);
- per-sample random draws (augmentations, masks) taken from the shared generator must be drawn
  for the **global** batch and then cut with the same :func:`split_batch`, otherwise each
  rank's draws differ from the single-process ones (still a valid run, but not the same one);
- BatchNorm in train mode normalises with **per-rank** statistics unless it is synchronised:
  :func:`wrap_ddp` converts it to ``SyncBatchNorm`` on GPUs (``sync_bn=True``); PyTorch's
  ``SyncBatchNorm`` does not run on CPU tensors, so CPU/gloo runs keep per-rank BatchNorm
  (statistics over ``B`` instead of ``W*B`` clips; the usual practice of the SSL lineage).

The training engine (:func:`~asma.train.loop.fit`) keeps the last partial batch of the
supervised and distillation stages, so their global batches may split unevenly (``torch.tensor_split``
parts) and each rank's mean loss is scaled by ``b_rank * W / b_global``: DDP's average of
the scaled gradients is then exactly the gradient of the global-batch mean loss (without
train-mode BatchNorm; dropout masks are drawn per rank). A global batch with fewer clips than
ranks (only the last one can be) is dropped and counted in the epoch record (``"dropped"``).

Devices: the backend follows the device (:func:`init_for_device`: ``nccl`` for CUDA, ``gloo``
for CPU); a process group that already uses ``nccl`` cannot train on the CPU.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node,
    the ``backend`` in use and the ``device`` to put tensors on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank on this node (``LOCAL_RANK`` set by ``torchrun``; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def default_backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo`` (CPU)."""
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_distributed(backend: Optional[str] = None, init_method: Optional[str] = None,
                     rank: Optional[int] = None, world_size: Optional[int] = None,
                     timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by the environment (``torchrun`` sets ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) or by the arguments.

    With a world size of 1 (plain ``python``/``asma`` runs) nothing is initialised and a
    single-process :class:`DistInfo` is returned, so callers need no special case. On GPUs the
    process binds to ``cuda:<local_rank>``. Calling it twice returns the current group's info.

    Args:
        backend: ``gloo`` / ``nccl``; default :func:`default_backend`.
        init_method: e.g. ``file:///tmp/x`` or ``tcp://host:port``; default ``env://``.
        rank, world_size: override the environment (used by ``torch.multiprocessing.spawn``).
    """
    ws = int(world_size if world_size is not None else os.environ.get("WORLD_SIZE", "1"))
    rk = int(rank if rank is not None else os.environ.get("RANK", "0"))
    lr = int(os.environ.get("LOCAL_RANK", rk if rank is not None else 0))
    if ws < 1 or not 0 <= rk < ws:
        raise ValueError(f"invalid distributed setting: rank {rk} of world size {ws}")
    if ws == 1 and not is_distributed():
        return DistInfo(0, 1, 0, None, torch.device("cpu"))
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build")
    backend = backend or default_backend()
    device = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(lr)
        device = torch.device("cuda", lr)
    if not is_distributed():
        dist.init_process_group(backend, init_method=init_method or "env://", rank=rk, world_size=ws,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), lr, dist.get_backend(), device)


def backend_for(device: torch.device) -> str:
    """The process-group backend for training on ``device``: ``nccl`` for CUDA (when built in),
    ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" and dist.is_available() and dist.is_nccl_available() else "gloo"


def init_for_device(device: torch.device) -> DistInfo:
    """:func:`init_distributed` with the backend that fits ``device`` (``nccl`` for CUDA,
    ``gloo`` for CPU); single-process runs get a no-op :class:`DistInfo`.

    Raises:
        ValueError: when the process group already uses ``nccl`` (CUDA-only) but ``device`` is
            not a CUDA device.
    """
    info = init_distributed(backend_for(device))
    if info.backend == "nccl" and device.type != "cuda":
        raise ValueError(f"the process group uses the nccl backend, which only moves CUDA tensors, but the "
                         f"device is {str(device)!r}; use device 'cuda' (or 'auto'), or a gloo process group")
    return info


def split_batch(n: int, world: int) -> List[slice]:
    """Contiguous per-rank parts of a global batch of ``n`` clips, as ``torch.tensor_split``
    makes them (the first ``n % world`` parts one clip larger); concatenated in rank order they
    restore the batch.

    Shapes:
        - one ``slice`` per rank into a :math:`(n,)` batch
    """
    if world < 1:
        raise ValueError(f"invalid world size {world}")
    base, extra = divmod(n, world)
    bounds = [r * base + min(r, extra) for r in range(world + 1)]
    return [slice(bounds[r], bounds[r + 1]) for r in range(world)]


def wrap_ddp(model: nn.Module, sync_bn: bool = True, **ddp_kwargs) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` (identity when not distributed).

    On CUDA the model is moved to ``cuda:<local_rank>`` and, with ``sync_bn``, its BatchNorm
    layers become ``SyncBatchNorm`` (global-batch statistics). On CPU BatchNorm stays per rank:
    PyTorch's ``SyncBatchNorm`` rejects CPU tensors (see the module docstring).
    ``ddp_kwargs`` go to DDP (e.g. ``find_unused_parameters=True``). Access the wrapped model as
    ``wrapped.module``.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    if dist.get_backend() == "nccl" or next(model.parameters()).is_cuda:
        lr = local_rank()
        if sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(torch.device("cuda", lr))
        return DDP(model, device_ids=[lr], output_device=lr, **ddp_kwargs)
    return DDP(model, **ddp_kwargs)


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s buffers (BatchNorm running statistics) to every process (no-op when not
    distributed). DDP broadcasts them at the start of each forward, so after the last training
    step each rank still holds its own statistics; this makes every rank's model equal to the one
    rank 0 checkpoints."""
    if is_distributed():
        for b in module.buffers():
            dist.broadcast(b.data, src)


def all_reduce_sum(values: Tensor) -> Tensor:
    """Element-wise sum of a float64 vector over processes (identity when not distributed),
    returned on the CPU; used to turn per-rank metric sums into global ones."""
    t = values.detach().to(torch.float64).clone()
    if is_distributed():
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
    return t.cpu()


def cleanup() -> None:
    """Destroy the process group (no-op when not distributed), after a barrier: a rank that tears
    its gloo group down while another still finishes a collective can make that rank's process
    abort at exit ("terminate called without an active exception", seen in about 1 of 12 runs of
    the two-process tests on a 2-core machine)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


__all__ = ["DistInfo", "is_distributed", "rank", "world_size", "local_rank", "default_backend",
           "init_distributed", "backend_for", "init_for_device", "split_batch",
           "wrap_ddp", "barrier", "broadcast_buffers", "all_reduce_sum", "cleanup"]
