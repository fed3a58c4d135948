"""The one training engine (:func:`fit`) of pretraining, linear probes, fine-tuning, aligned
fine-tuning and distillation: shuffled global batches split over DDP ranks, torch's warm-up +
cosine schedule, per-epoch atomic checkpoints, metrics through a :class:`~asma.train.loggers.Logger`,
rich progress, exact resumption."""
from __future__ import annotations

import math
import re
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import torch
from rich.console import Console
from torch import Tensor, nn

from ..io import latest_checkpoint, load_checkpoint, save_checkpoint
from ..allocator import tune_allocator
from .distributed import all_reduce_sum, broadcast_buffers, init_for_device, split_batch, wrap_ddp
from .engine import Device, device_for, epoch_generator, make_progress
from .loggers import Logger
from .optim import warmup_cosine

PathLike = Union[str, Path]


class BatchIndex(NamedTuple):
    """The clips of one optimisation step, as :func:`fit` hands them to a
    :data:`BatchLoss`.

    Attributes:
        idx: this process's clips, :math:`(b,)` (the whole batch in a single process).
        global_idx: the global batch of all processes, :math:`(G,)`, identical on every rank.
        part: this process's positions in the global batch (``global_idx[part] == idx``).

    Random draws from the shared generator must be made for ``global_idx`` and then cut with
    ``part`` (e.g. ``augment(data[b.global_idx], g)[b.part]``): the ranks then consume the
    generator exactly like one process, so ``W`` processes reproduce a single-process run.
    """

    idx: Tensor
    global_idx: Tensor
    part: slice


#: ``(net, batch, generator) -> (mean loss over batch.idx, {metric: float})``. ``net`` is the
#: module to call (the DDP wrapper under ``torchrun``, else the module itself): forward passes
#: must go through it so that gradients are synchronised. Metrics are means over ``batch.idx``.
BatchLoss = Callable[[nn.Module, BatchIndex, torch.Generator], Tuple[Tensor, Dict[str, float]]]


class Backward:
    """Back-propagation handed to a batch function by :func:`fit` with ``manual_backward=True``,
    for losses that are sums of parts with separate graphs (ASMa's per-encoder terms): each part
    runs forward *and* backward before the next starts, so only one part's activations are alive
    at a time, with the gradients of the joint backward and no recomputation.

    Use one :meth:`part` per term, the last one with ``last=True``::

        with backward.part(last=False):
            backward(net(x, only="a"))
        with backward.part(last=True):
            backward(net(x, only="b"))

    Under DDP every part but the last runs in ``no_sync()`` (forward and backward: gradients
    accumulate locally) and the last one all-reduces them once, as in gradient accumulation.
    Collectives inside the graph (the Barlow Twins all-gather) run in every part as usual.

    With an ``optimizer`` (one process only) each part's parameters are stepped as soon as its
    backward is done and their gradients freed, so the parts' gradients are never alive together
    (ASMa: one encoder + projectors, 312 MB in the paper configuration). The parts must then use
    disjoint parameters (a part that produces a gradient for a parameter an earlier part stepped
    raises): each parameter gets the same gradient and the same Adam update as in one step
    after all parts, because no part reads another's parameters.
    """

    def __init__(self, net: nn.Module, scale: float = 1.0, optimizer: Optional[torch.optim.Optimizer] = None):
        self._net, self._scale, self._optimizer = net, scale, optimizer
        self._deferred = False
        self._stepped: set = set()
        self.calls = 0
        self.synced = False  # a backward ran outside no_sync(): DDP all-reduced the gradients
        self.stepped = False  # the optimizer stepped every part (the engine does not step again)

    @contextmanager
    def part(self, last: bool) -> Iterator[None]:
        """The context of one part's forward and backward (``no_sync`` under DDP unless ``last``)."""
        no_sync = getattr(self._net, "no_sync", None) if not last else None
        self._deferred = no_sync is not None
        try:
            with no_sync() if no_sync is not None else nullcontext():
                yield
        finally:
            self._deferred = False
        if self._optimizer is not None:
            self._step_part()

    def _step_part(self) -> None:
        opt = self._optimizer
        params = {id(p) for g in opt.param_groups for p in g["params"] if p.grad is not None}
        if params & self._stepped:
            raise RuntimeError("Backward(optimizer=...): two parts produced gradients for the same parameter; "
                               "step once after all parts (no optimizer) when parts share parameters")
        self._stepped |= params
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.stepped = True

    def __call__(self, loss: Tensor) -> None:
        """Back-propagate one part (a scalar; scaled like the engine's own backward)."""
        (loss * self._scale if self._scale != 1.0 else loss).backward()
        self.calls += 1
        self.synced = self.synced or not self._deferred


#: ``(net, batch, generator, backward) -> (detached loss, {metric: float})``: a batch function of
#: :func:`fit` with ``manual_backward=True``, which back-propagates its loss itself, part by part,
#: through ``backward`` (a :class:`Backward`).
BatchStep = Callable[[nn.Module, BatchIndex, torch.Generator, Backward], Tuple[Tensor, Dict[str, float]]]


class _Plan(NamedTuple):
    batch_size: int
    steps: int  # optimisation steps per epoch
    dropped: int  # clips of a tail batch dropped (too few for the processes, or drop_last)
    world: int
    rank: int
    is_main: bool


def _plan(n: int, batch_size: int, epochs: int, stage: str, drop_last: bool, distributed: bool,
          device: torch.device) -> _Plan:
    if n < 1:
        raise ValueError(f"{stage}: no training samples")
    if epochs < 1:
        raise ValueError(f"{stage}: epochs must be >= 1, got {epochs}")
    dinfo = init_for_device(device) if distributed else None
    world, rank = (dinfo.world_size, dinfo.rank) if dinfo else (1, 0)
    bs = max(1, min(batch_size, n))
    if bs < world:
        raise ValueError(f"{stage}: a batch of {bs} clips cannot give each of the {world} processes a clip; "
                         f"use a batch size (and a training set) of at least {world}")
    steps = -(-n // bs)
    tail = n - (steps - 1) * bs
    dropped = tail if (tail < world or (drop_last and tail < bs)) else 0  # an empty or short tail batch
    return _Plan(bs, steps - (1 if dropped else 0), dropped, world, rank, dinfo.is_main if dinfo else True)


def _resume(module: nn.Module, optimizer: torch.optim.Optimizer, ckpt_dir: Optional[Path], stage: str) -> int:
    """Load the latest checkpoint of ``ckpt_dir``; the epoch to continue at."""
    last = latest_checkpoint(ckpt_dir) if ckpt_dir is not None else None
    if last is None:
        raise ValueError(f"--resume: no {stage} checkpoint in {ckpt_dir}")
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    state = load_checkpoint(last, module, optimizer)
    for g, lr in zip(optimizer.param_groups, base_lrs):  # the schedule restarts from the base lr ...
        g["lr"] = lr
    return int(state["epoch"]) + 1


def _schedule(optimizer: torch.optim.Optimizer, plan: _Plan, epochs: int, warmup_epochs: int, start: int):
    sched = warmup_cosine(optimizer, plan.steps * epochs, plan.steps * warmup_epochs)
    with warnings.catch_warnings():  # ... and is replayed to the resumed step (bit-exact)
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
        for _ in range(start * plan.steps):
            sched.step()
    return sched


def fit(module: nn.Module, optimizer: torch.optim.Optimizer, batch_loss: Union[BatchLoss, BatchStep], n: int,
        batch_size: int, epochs: int, *, manual_backward: bool = False, step_parts: bool = False,
        warmup_epochs: int = 0, drop_last: bool = False, distributed: bool = True,
        seed: int = 0, stage: str = "train", rng_stream: int = 0, ckpt_dir: Optional[PathLike] = None,
        config: Optional[Mapping[str, Any]] = None, resume: bool = False, logger: Optional[Logger] = None,
        console: Optional[Console] = None, progress: bool = False, max_epochs: Optional[int] = None,
        device: Device = None) -> List[Dict[str, Any]]:
    """The training engine of every stage (pretraining, probes, fine-tuning, aligned fine-tuning,
    distillation): shuffled mini-batches, ``optimizer`` driven per step by
    :func:`~asma.train.optim.warmup_cosine` (linear warm-up over ``warmup_epochs``, cosine decay to
    0; the base lr is the optimizer's), a checkpoint of ``module`` and ``optimizer`` after every
    epoch (``ckpt_dir/epoch-XXXX``, atomic), one record per epoch to ``logger`` and a rich progress
    bar. The last partial batch is kept unless ``drop_last``.

    Exact resumption: the batch order and every draw inside ``batch_loss`` come from
    ``epoch_generator(seed, epoch, rng_stream)``, the global torch RNG (dropout) is re-seeded
    from ``(seed, epoch)`` at the start of each epoch and the schedule is replayed to the resumed
    step, so ``resume=True`` continues from the latest checkpoint and reproduces the losses of an
    uninterrupted run; ``logger.resume`` drops what an interrupted epoch had logged.

    Under ``torchrun --nproc_per_node W`` (see :mod:`asma.train.distributed`; ``distributed=False``
    trains the same model in every process instead) ``batch_size`` is the **global** batch:
    every rank draws the same batch order, takes its part of each global batch
    (``torch.tensor_split``, uneven parts allowed), its mean loss is scaled by
    ``b_rank * W / b_global`` and DDP averages the gradients, which gives exactly the gradient of
    the global-batch mean loss (exact for models without train-mode BatchNorm or dropout). A
    last batch with fewer clips than processes is dropped; the records then have
    ``"dropped": <clips>``. Recorded metrics are global (summed over ranks before logging);
    only rank 0 writes checkpoints and logs; every rank resumes from the same checkpoint.

    Args:
        module: what is trained and checkpointed (put in train mode every epoch; moved to
            ``device``, where it stays).
        batch_loss: a :data:`BatchLoss`, ``(net, BatchIndex, generator) -> (scalar mean loss,
            {metric: float})``; it moves its batch to ``device``. With ``manual_backward`` a
            :data:`BatchStep` instead, which also receives a :class:`Backward` and
            back-propagates its loss itself, part by part (the engine then only steps the
            optimizer; under DDP the parts may use disjoint parameters).
        step_parts: with ``manual_backward``, step the optimizer after each part instead of
            once per batch (same updates, less gradient memory; the parts must use disjoint
            parameters, see :class:`Backward`). Ignored under DDP, where the gradients are
            all-reduced once after the last part.
        n: number of training samples.
        max_epochs: stop after this epoch count (tests of resumption) without changing the schedule.
        device: where ``module`` trains (default: where it is); see
            :func:`~asma.train.engine.resolve_device`.

    Returns:
        One record per epoch run: ``stage``, ``epoch``, ``lr`` (of the epoch's last step),
        ``loss``, the metrics (averaged over samples) and ``samples_per_s`` (and ``dropped``).

    Raises:
        FloatingPointError: when the loss is not finite (names the stage, epoch and step).
    """
    tune_allocator()
    device = device_for(module, device)
    plan = _plan(n, batch_size, epochs, stage, drop_last, distributed, device)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    logger = logger or Logger()
    module.to(device)  # before the optimizer state is loaded: it follows its parameters' device
    start = _resume(module, optimizer, ckpt_dir, stage) if resume else 0
    if resume:
        logger.resume(stage, start)
    sched = _schedule(optimizer, plan, epochs, warmup_epochs, start)
    end = epochs if max_epochs is None else min(epochs, max_epochs)
    # parts of a manual backward may leave some parameters unused (another part uses them)
    net = wrap_ddp(module, find_unused_parameters=manual_backward) if plan.world > 1 else module
    history: List[Dict[str, Any]] = []
    with make_progress(console, progress) as bar:
        task = bar.add_task(stage, total=max(0, end - start) * plan.steps, loss="loss -", rate="-")
        for epoch in range(start, end):
            record = _epoch(net, module, optimizer, sched, batch_loss, manual_backward, step_parts and plan.world == 1,
                            n, plan, epoch, seed, stage, rng_stream, lambda loss, rate: bar.update(task, advance=1, loss=f"loss {loss:.3f}", rate=f"{rate:.0f}"))
            history.append(record)
            logger.log(record)
            if ckpt_dir is not None and plan.is_main:
                save_checkpoint(ckpt_dir, f"epoch-{epoch:04d}", module, dict(config or {}), record, optimizer)
    del net  # drop the DDP wrapper (and its gradient hooks) once training is over
    if plan.world > 1:
        broadcast_buffers(module)  # every rank returns rank 0's model (BatchNorm statistics are per rank)
    return history


def _epoch(net: nn.Module, module: nn.Module, optimizer: torch.optim.Optimizer, sched, batch_loss,
           manual_backward: bool, step_parts: bool, n: int, plan: _Plan, epoch: int, seed: int, stage: str,
           rng_stream: int, tick: Callable[[float, float], None]) -> Dict[str, Any]:
    """One epoch of :func:`fit`; its record."""
    module.train()
    g = epoch_generator(seed, epoch, rng_stream)
    torch.manual_seed(seed * 100_003 + epoch)  # dropout draws
    order = torch.randperm(n, generator=g)
    bs, world = plan.batch_size, plan.world
    t0, seen, sums, lr = time.perf_counter(), 0, {}, optimizer.param_groups[0]["lr"]
    for s in range(plan.steps):
        lr = optimizer.param_groups[0]["lr"]
        gidx = order[s * bs:(s + 1) * bs]
        part = split_batch(gidx.shape[0], world)[plan.rank]
        b = part.stop - part.start
        # DDP averages gradients over ranks: this scaling makes the average the gradient of the
        # global-batch mean loss when the parts are uneven
        backward = Backward(net, b * world / gidx.shape[0] if world > 1 else 1.0,
                            optimizer if manual_backward and step_parts else None)
        optimizer.zero_grad(set_to_none=True)
        if manual_backward:
            loss, metrics = batch_loss(net, BatchIndex(gidx[part], gidx, part), g, backward)
            _check_manual(backward, world, stage)
        else:
            loss, metrics = batch_loss(net, BatchIndex(gidx[part], gidx, part), g)
        # per-rank sums -> global sums (one small all-reduce per step; identity in one process)
        step_sums = torch.tensor([b, loss.item() * b, *(float(v) * b for v in metrics.values())], dtype=torch.float64)
        step_sums = (all_reduce_sum(step_sums) if world > 1 else step_sums).tolist()
        if not math.isfinite(step_sums[1]):  # every rank sees the global value: all stop together
            raise FloatingPointError(f"{stage} loss became {step_sums[1] / step_sums[0]} at epoch {epoch}, "
                                     f"step {s}; lower the learning rate")
        if not manual_backward:
            backward(loss)
        if not backward.stepped:
            optimizer.step()
        sched.step()
        seen += int(step_sums[0])
        for k, v in zip(["loss", *metrics], step_sums[1:]):
            sums[k] = sums.get(k, 0.0) + v
        tick(step_sums[1] / step_sums[0], seen / (time.perf_counter() - t0))
    record = {"stage": stage, "epoch": epoch, "lr": lr, **{k: v / seen for k, v in sums.items()},
              "samples_per_s": round(seen / (time.perf_counter() - t0), 2)}
    if plan.dropped:
        record["dropped"] = plan.dropped
    return record


def _check_manual(backward: Backward, world: int, stage: str) -> None:
    if backward.calls == 0:
        raise RuntimeError(f"{stage}: the batch function (manual_backward=True) never called its backward")
    if world > 1 and not backward.synced:
        raise RuntimeError(f"{stage}: every backward ran inside Backward.part(last=False), so DDP never "
                           "all-reduced the gradients; run the last part with last=True")


def batch_clips(data: Tensor, batch: BatchIndex, augment: Optional[Callable[[Tensor, torch.Generator], Tensor]],
                g: torch.Generator, device: torch.device) -> Tensor:
    """This process's clips of a step on ``device``. Augmentations are drawn on the CPU for the
    **global** batch and then cut to this process's part, so ``W`` processes see exactly the
    clips of one process (see :class:`BatchIndex`).

    Shapes:
        - **data**: :math:`(N, C, T, V, M)` -> **output**: :math:`(b, C, T, V, M)`
    """
    x = data[batch.idx] if augment is None else augment(data[batch.global_idx], g)[batch.part]
    return x.to(device, non_blocking=True)


__all__ = ["BatchIndex", "BatchLoss", "Backward", "BatchStep", "fit", "batch_clips"]
