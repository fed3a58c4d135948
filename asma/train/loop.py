"""The shared epoch loop of the supervised and distillation stages (fine-tuning, aligned
fine-tuning, distillation): shuffled global batches split over DDP ranks, warm-up + cosine
schedule, per-epoch atomic checkpoints and metrics, exact resumption."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import torch
from rich.console import Console
from torch import Tensor, nn

from ..io import latest_checkpoint, load_checkpoint, save_checkpoint
from .distributed import all_reduce_sum, broadcast_buffers, init_for_device, split_batch, wrap_ddp
from .engine import Device, MetricsLog, device_for, epoch_generator, make_progress, set_lr, warmup_cosine

PathLike = Union[str, Path]


class BatchIndex(NamedTuple):
    """The clips of one optimisation step, as :func:`fit_epochs` hands them to a
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


def fit_epochs(module: nn.Module, optimizer: torch.optim.Optimizer, batch_loss: BatchLoss, n: int,
               batch_size: int, epochs: int, lr: float, *, seed: int = 0, warmup_epochs: int = 0,
               stage: str = "train", rng_stream: int = 0, ckpt_dir: Optional[PathLike] = None,
               config: Optional[Mapping[str, Any]] = None, resume: bool = False,
               log: Optional[MetricsLog] = None, console: Optional[Console] = None,
               progress: bool = False, max_epochs: Optional[int] = None,
               device: Device = None) -> List[Dict[str, Any]]:
    """The shared supervised/distillation loop: shuffled mini-batches (the last partial batch
    is kept), Adam-style ``optimizer``, per-step linear warm-up + cosine decay to 0, a checkpoint
    of ``module`` and ``optimizer`` after every epoch (``ckpt_dir/epoch-XXXX``, atomic) and one
    ``metrics.jsonl`` record per epoch.

    Exact resumption: the batch order and every draw inside ``batch_loss`` come from
    ``epoch_generator(seed, epoch, rng_stream)`` and the global torch RNG (dropout) is re-seeded
    from ``(seed, epoch)`` at the start of each epoch, so ``resume=True`` continues from the
    latest checkpoint and reproduces the losses of an uninterrupted run.

    Under ``torchrun --nproc_per_node W`` (see :mod:`asma.train.distributed`) ``batch_size`` is
    the **global** batch: every rank draws the same batch order, takes its part of each global
    batch (``torch.tensor_split``, uneven parts allowed), its mean loss is scaled by
    ``b_rank * W / b_global`` and DDP averages the gradients, which gives exactly the gradient of
    the global-batch mean loss (exact for models without train-mode BatchNorm or dropout). A
    last batch with fewer clips than processes is dropped; the records then have
    ``"dropped": <clips>``. Recorded metrics are global (summed over ranks before logging);
    only rank 0 writes checkpoints and ``metrics.jsonl``; every rank resumes from the same
    checkpoint.

    Args:
        module: what is trained and checkpointed (put in train mode every epoch; moved to
            ``device``, where it stays).
        batch_loss: a :data:`BatchLoss`, ``(net, BatchIndex, generator) -> (scalar mean loss,
            {metric: float})``; it moves its batch to ``device``.
        n: number of training samples.
        max_epochs: stop after this epoch count (tests of resumption) without changing the schedule.
        device: where ``module`` trains (default: where it is); see
            :func:`~asma.train.engine.resolve_device`.

    Returns:
        One record per epoch run: ``stage``, ``epoch``, ``lr``, ``loss``, the metrics (averaged
        over samples) and ``samples_per_s`` (and ``dropped`` when a tail batch was dropped).
    """
    if n < 1:
        raise ValueError(f"{stage}: no training samples")
    if epochs < 1:
        raise ValueError(f"{stage}: epochs must be >= 1, got {epochs}")
    device = device_for(module, device)
    dinfo = init_for_device(device)
    world, rank = dinfo.world_size, dinfo.rank
    bs = max(1, min(batch_size, n))
    if bs < world:
        raise ValueError(f"{stage}: a batch of {bs} clips cannot give each of the {world} processes a clip; "
                         f"use a batch size (and a training set) of at least {world}")
    steps = -(-n // bs)
    tail = n - (steps - 1) * bs
    dropped = tail if tail < world else 0  # a rank would get an empty batch: drop that tail batch
    steps -= 1 if dropped else 0
    total, warm = steps * epochs, steps * warmup_epochs
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    log = log or MetricsLog(None)
    module.to(device)  # before the optimizer state is loaded: it follows its parameters' device
    start = 0
    if resume:
        last = latest_checkpoint(ckpt_dir) if ckpt_dir is not None else None
        if last is None:
            raise ValueError(f"--resume: no {stage} checkpoint in {ckpt_dir}")
        state = load_checkpoint(last, module, optimizer)
        start = int(state["epoch"]) + 1
    end = epochs if max_epochs is None else min(epochs, max_epochs)
    net = wrap_ddp(module) if world > 1 else module
    history: List[Dict[str, Any]] = []
    with make_progress(console, progress) as bar:
        task = bar.add_task(stage, total=max(0, end - start) * steps, loss="-", rate="-")
        for epoch in range(start, end):
            module.train()
            g = epoch_generator(seed, epoch, rng_stream)
            torch.manual_seed(seed * 100_003 + epoch)  # dropout draws
            order = torch.randperm(n, generator=g)
            t0, seen, sums = time.perf_counter(), 0, {}
            for s in range(steps):
                set_lr(optimizer, warmup_cosine(epoch * steps + s, total, warm, lr))
                gidx = order[s * bs:(s + 1) * bs]
                part = split_batch(gidx.shape[0], world)[rank]
                loss, metrics = batch_loss(net, BatchIndex(gidx[part], gidx, part), g)
                b = part.stop - part.start
                # per-rank sums -> global sums (one small all-reduce per step; identity in one process)
                step_sums = all_reduce_sum(torch.tensor([b, loss.item() * b, *(float(v) * b for v in metrics.values())],
                                                        dtype=torch.float64)).tolist()
                if not math.isfinite(step_sums[1]):  # every rank sees the global value: all stop together
                    raise FloatingPointError(f"{stage} loss became {step_sums[1] / step_sums[0]} at epoch {epoch}, "
                                             f"step {s}; lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                # DDP averages gradients over ranks: this scaling makes the average the gradient of the
                # global-batch mean loss when the parts are uneven
                (loss * (b * world / gidx.shape[0]) if world > 1 else loss).backward()
                optimizer.step()
                seen += int(step_sums[0])
                for k, v in zip(["loss", *metrics], step_sums[1:]):
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(task, advance=1, loss=f"{step_sums[1] / step_sums[0]:.3f}",
                           rate=f"{seen / (time.perf_counter() - t0):.0f}")
            record = {"stage": stage, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                      **{k: v / seen for k, v in sums.items()},
                      "samples_per_s": round(seen / (time.perf_counter() - t0), 2)}
            if dropped:
                record["dropped"] = dropped
            history.append(record)
            log.write(record)
            if ckpt_dir is not None and dinfo.is_main:
                save_checkpoint(ckpt_dir, f"epoch-{epoch:04d}", module, dict(config or {}), record, optimizer)
    del net  # drop the DDP wrapper (and its gradient hooks) once training is over
    broadcast_buffers(module)  # every rank returns rank 0's model (BatchNorm statistics are per rank)
    return history


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


def _metrics_log(run_dir: Optional[PathLike]) -> MetricsLog:
    return MetricsLog(Path(run_dir) / "metrics.jsonl" if run_dir else None)


__all__ = ["BatchIndex", "BatchLoss", "fit_epochs", "batch_clips"]
