"""Self-supervised ASMa pretraining (Algorithm 1, lines 5-17)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..data.transforms import Augment
from ..io import latest_checkpoint, load_checkpoint, save_checkpoint
from ..models.asma import ASMa
from .config import TrainConfig
from .distributed import broadcast_buffers, init_for_device, shard_indices, unwrap, wrap_ddp
from .allocator import tune_allocator
from .optim import adam
from .engine import (Device, MetricsLog, epoch_generator, make_progress, resolve_device, set_lr, torch_threads,
                     warmup_cosine)


def build_model(cfg: TrainConfig, layout, in_channels: int, num_coords: Optional[int] = None) -> ASMa:
    """Instantiate the two-encoder ASMa model described by ``cfg.model``."""
    m = cfg.model
    return ASMa(layout, in_channels, backbone=m.backbone, backbone_cfg=m.backbone_cfg,
                projector=m.projector, lambda_=m.lambda_bt, encoders=m.encoders,
                n_joints=m.n_joints, n_frames=m.n_frames, frame_mode=m.frame_mode, num_coords=num_coords,
                shared_projector=m.shared_projector)


def check_pretrain_inputs(cfg: TrainConfig, train: SkeletonArrays) -> None:
    """Fail early, with the reason, on options that cannot work for this data."""
    n, c, t, v, _ = train.shape
    bs = cfg.pretrain.batch_size
    if bs < 2:
        raise ValueError(f"pretrain.batch_size={bs}: Barlow Twins and BatchNorm need at least 2 "
                         "samples per batch (the paper uses 128)")
    if n < bs:
        raise ValueError(f"the training set has {n} clips, fewer than pretrain.batch_size={bs}; "
                         "lower the batch size")
    if cfg.model.n_frames >= t:
        raise ValueError(f"model.n_frames={cfg.model.n_frames} must be smaller than the clip length T={t}")
    if cfg.model.n_joints >= v:
        raise ValueError(f"model.n_joints={cfg.model.n_joints} must be smaller than the number of joints V={v}")
    if cfg.model.anchor not in ("augmented", "raw"):
        raise ValueError(f"model.anchor must be 'augmented' or 'raw', got {cfg.model.anchor!r}")


def batch_views(x: torch.Tensor, augment: Augment, g: torch.Generator, raw_anchor: bool = False):
    """Anchor x, x' (for joint masks) and x-hat (for frame masks): three independent augmentations,
    or with ``raw_anchor`` the un-augmented x as the anchor (Algorithm 1 line 11 read literally)."""
    if raw_anchor:
        return x, augment(x, g), augment(x, g)
    return augment(x, g), augment(x, g), augment(x, g)


def pretrain(cfg: TrainConfig, train: SkeletonArrays, run_dir: Optional[Path] = None, *,
             resume: bool = False, console: Optional[Console] = None, progress: bool = True,
             max_epochs: Optional[int] = None, device: Device = None) -> ASMa:
    """Pretrain both encoders on ``train`` and return the model.

    Writes ``run_dir/pretrain/<epoch-XXXX>/`` checkpoints (safetensors + JSON, atomic) after every
    epoch and appends per-epoch records to ``run_dir/metrics.jsonl``. With ``resume=True`` it
    continues from the latest checkpoint and produces the same losses as an uninterrupted run.
    ``max_epochs`` stops early (for tests of resumption) without changing the schedule.

    Under ``torchrun --nproc_per_node W`` (gloo on CPU, nccl on GPU) every process takes its
    slice of each global batch of ``pretrain.batch_size`` clips (which must divide by ``W``), the
    Barlow Twins correlation is computed over the global batch (all-gather with gradients) and
    DDP averages the gradients; only rank 0 writes checkpoints and metrics. Augmentations are
    drawn for the global batch and sliced, so every rank sees exactly the views of a single
    process; masks are drawn per rank (BatchNorm statistics are per rank on CPU).

    ``device`` (default ``cfg.device``; see :func:`~asma.train.engine.resolve_device`) is where
    the model trains: the data stays on the CPU, each batch is augmented there with the epoch's
    CPU generator and then moved. Checkpoints are device-independent (CPU tensors); the returned
    model stays on ``device``.

    Shapes:
        - **train** clips :math:`(N, C, T, V, M)`; the returned model's encoders map
          :math:`(B, C, T, V, M)` to ``(pooled (B, D), tokens (B, T', D))``
    """
    check_pretrain_inputs(cfg, train)
    skel = train.skeleton
    num_coords = train.num_coords
    in_channels = train.shape[1]
    oc = cfg.pretrain
    device = resolve_device(cfg.device if device is None else device)
    dinfo = init_for_device(device)
    if oc.batch_size % dinfo.world_size:
        raise ValueError(f"pretrain.batch_size={oc.batch_size} must be a multiple of the number of "
                         f"processes ({dinfo.world_size})")
    tune_allocator()
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, skel, in_channels, num_coords).to(device)
        opt = adam(model.parameters(), lr=oc.lr, weight_decay=oc.weight_decay)
        augment = Augment(cfg.augment, skel.flip_perm, num_coords)
        data = torch.from_numpy(np.array(train.data, dtype=np.float32))  # a writable in-memory copy
        data = to_stream(data, cfg.data.stream, skel, num_coords)
        n = data.shape[0]
        steps_per_epoch = n // oc.batch_size
        total = steps_per_epoch * oc.epochs
        warm = steps_per_epoch * oc.warmup_epochs
        ckpt_dir = Path(run_dir) / "pretrain" if run_dir else None
        log = MetricsLog(Path(run_dir) / "metrics.jsonl" if run_dir else None)
        start_epoch = 0
        if resume:
            last = latest_checkpoint(ckpt_dir) if ckpt_dir else None
            if last is None:
                raise ValueError(f"--resume: no pretraining checkpoint in {ckpt_dir}")
            state = load_checkpoint(last, model, opt)
            start_epoch = int(state["epoch"]) + 1
        end_epoch = oc.epochs if max_epochs is None else min(oc.epochs, max_epochs)
        history: List[Dict[str, Any]] = []
        model.train()
        ddp_model = wrap_ddp(model) if dinfo.world_size > 1 else model
        is_main = dinfo.rank == 0
        with make_progress(console, progress) as bar:
            task = bar.add_task("pretrain", total=(end_epoch - start_epoch) * steps_per_epoch,
                                loss="-", rate="-")
            for epoch in range(start_epoch, end_epoch):
                g = epoch_generator(cfg.seed, epoch)
                torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout draws
                order = torch.randperm(n, generator=g)
                t0, seen, sums = time.perf_counter(), 0, {}
                for s in range(steps_per_epoch):
                    step = epoch * steps_per_epoch + s
                    set_lr(opt, warmup_cosine(step, total, warm, oc.lr))
                    x = data[order[s * oc.batch_size:(s + 1) * oc.batch_size]]
                    anchor, xj, xm = batch_views(x, augment, g, cfg.model.anchor == "raw")
                    if dinfo.world_size > 1:
                        mine = shard_indices(torch.arange(x.shape[0]), dinfo.rank, dinfo.world_size)
                        anchor, xj, xm = anchor[mine], xj[mine], xm[mine]
                    anchor, xj, xm = (v.to(device, non_blocking=True) for v in (anchor, xj, xm))
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                        loss, parts = ddp_model(anchor, xj, xm, generator=g)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"pretraining loss became {loss.item()} at epoch {epoch}, "
                                                 f"step {s}; lower pretrain.lr")
                    opt.zero_grad(set_to_none=False)
                    loss.backward()
                    opt.step()
                    seen += x.shape[0]
                    sums["loss"] = sums.get("loss", 0.0) + loss.item()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v.item()
                    rate = seen / (time.perf_counter() - t0)
                    bar.update(task, advance=1, loss=f"{loss.item():.2f}", rate=f"{rate:.0f}")
                record = {"stage": "pretrain", "epoch": epoch, "lr": opt.param_groups[0]["lr"],
                          "samples_per_s": round(seen / (time.perf_counter() - t0), 2),
                          **{k: v / steps_per_epoch for k, v in sums.items()}}
                history.append(record)
                log.write(record)
                if ckpt_dir is not None and is_main:
                    save_checkpoint(ckpt_dir, f"epoch-{epoch:04d}", unwrap(model), asdict(cfg), record, opt)
    broadcast_buffers(model)  # every rank returns rank 0's model (BatchNorm statistics are per rank)
    model.history = history
    return model
