"""Self-supervised ASMa pretraining (Algorithm 1, lines 5-17)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..data.transforms import Augment
from ..models.asma import ASMa
from ..models.memory import set_memory
from .config import TrainConfig, pretrain_epochs
from .distributed import init_for_device
from .engine import Device, resolve_device, torch_threads
from .loggers import Logger, default_logger
from .loop import Backward, BatchIndex, fit
from .optim import adam


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


def asma_step(net: torch.nn.Module, views: Sequence[torch.Tensor], generator: torch.Generator, backward: Backward,
              groups: Sequence[Sequence[str]], bf16: bool = False) -> Tuple[torch.Tensor, Dict[str, float]]:
    r"""Forward and backward of the ASMa loss one group of encoders at a time (``groups``, e.g.
    ``[("theta",), ("phi",)]``; ``[("theta", "phi")]`` is the joint backward): each group's graph is
    freed before the next group's views are encoded (see :class:`~asma.models.asma.ASMa`).

    Shapes:
        - **views**: anchor, :math:`x'`, :math:`\hat{x}`, each :math:`(B, C, T, V, M)`
        - **output**: the detached total loss (scalar) and the per-term losses
    """
    total, metrics = views[0].new_zeros(()), {}
    for i, names in enumerate(groups):
        with backward.part(last=i == len(groups) - 1):
            with torch.autocast(views[0].device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, parts = net(*views, generator=generator, names=names)
            backward(loss)  # outside autocast, as torch recommends
        total = total + loss.detach()
        metrics.update({k: v.item() for k, v in parts.items()})
    return total, metrics


def pretrain(cfg: TrainConfig, train: SkeletonArrays, run_dir: Optional[Path] = None, *,
             resume: bool = False, console: Optional[Console] = None, progress: bool = True,
             max_epochs: Optional[int] = None, device: Device = None, logger: Optional[Logger] = None) -> ASMa:
    """Pretrain both encoders on ``train`` with the training engine (:func:`~asma.train.loop.fit`)
    and return the model.

    Writes ``run_dir/pretrain/<epoch-XXXX>/`` checkpoints (safetensors + JSON, atomic) after every
    epoch and gives per-epoch records to ``logger`` (default: ``run_dir/metrics.jsonl``). With
    ``resume=True`` it continues from the latest checkpoint and produces the same losses as an
    uninterrupted run. ``max_epochs`` stops early (for tests of resumption) without changing the
    schedule. Every epoch has ``N // pretrain.batch_size`` steps (the short tail batch is dropped:
    Barlow Twins standardises over the batch).

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
    skel, num_coords, oc = train.skeleton, train.num_coords, cfg.pretrain
    device = resolve_device(cfg.device if device is None else device)
    world = init_for_device(device).world_size
    if oc.batch_size % world:
        raise ValueError(f"pretrain.batch_size={oc.batch_size} must be a multiple of the number of "
                         f"processes ({world})")
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        model = set_memory(build_model(cfg, skel, train.shape[1], num_coords), oc.memory).to(device)
        opt = adam(model.parameters(), lr=oc.lr, weight_decay=oc.weight_decay)
        augment = Augment(cfg.augment, skel.flip_perm, num_coords)
        data = torch.from_numpy(np.array(train.data, dtype=np.float32))  # a writable in-memory copy
        data = to_stream(data, cfg.data.stream, skel, num_coords)
        raw_anchor = cfg.model.anchor == "raw"
        groups = [(name,) for name in model.encoders]  # one encoder's forward + backward at a time

        def batch_step(net: torch.nn.Module, batch: BatchIndex, g: torch.Generator, backward: Backward):
            views = batch_views(data[batch.global_idx], augment, g, raw_anchor)  # global batch, then cut
            anchor, xj, xm = (v[batch.part].to(device, non_blocking=True) for v in views)
            return asma_step(net, (anchor, xj, xm), g, backward, groups, cfg.bf16)

        # each encoder's parameters are stepped after its own backward unless it shares a projector
        model.history = fit(model, opt, batch_step, data.shape[0], oc.batch_size, pretrain_epochs(oc, data.shape[0]),
                            manual_backward=True, step_parts=not model.shared_projector,
                            warmup_epochs=oc.warmup_epochs, drop_last=True, seed=cfg.seed, stage="pretrain",
                            ckpt_dir=Path(run_dir) / "pretrain" if run_dir else None, config=asdict(cfg),
                            resume=resume, logger=default_logger(run_dir, logger), console=console, progress=progress,
                            max_epochs=max_epochs, device=device)
    return model
