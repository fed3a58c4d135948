"""ASMa-Distill (§3.5, §5.3, Appendix C): a compact ``stgcn-student`` learns from a frozen
teacher's temperature-softened logits, with no ground-truth labels (Eqs. 13-14); or, as the
Appendix C alternative, from the teacher's features with a cosine loss."""
from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from rich.console import Console
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.transforms import Augment, AugmentConfig
from ..losses import CosineFeatureLoss, DistillationKL
from ..models.classifiers import EncoderClassifier
from ..models.heads import LinearClassifier, ProjectedHead
from ..models.registry import count_parameters, create_backbone
from .config import DistillConfig
from .optim import adam
from .engine import Device, device_for
from .evaluate import evaluate
from .finetune import stream_tensor
from .loggers import Logger, default_logger
from .loop import BatchIndex, BatchLoss, batch_clips, fit
from .probe import ProbeResult

PathLike = Union[str, Path]

#: Temperatures of :func:`tau_sweep` by default (Fig. 4 left discusses tau = 6, 8, 9 as optima).
DEFAULT_TAUS: Tuple[float, ...] = (1.0, 2.0, 4.0, 6.0, 8.0, 9.0, 10.0)
#: Student depths of :func:`depth_sweep` by default (Fig. 4 right; the paper's student has 5).
DEFAULT_DEPTHS: Tuple[int, ...] = (2, 3, 4, 5, 6, 7)


@torch.no_grad()
def _teacher_outputs(teacher: Callable, x: Tensor, mode: str, device: torch.device,
                     batch_size: int = 256) -> Tuple[Tensor, Optional[Tensor]]:
    """(teacher logits, teacher features or None) for a batch of clips, in chunks moved to
    ``device``; the outputs stay on ``device``."""
    logits, feats = [], []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True)
        if mode == "features":
            f = teacher.features(xb)
            feats.append(f.float())
            logits.append(teacher.head(f).float())
        else:
            z = teacher(xb)
            if isinstance(z, tuple):
                raise ValueError("the teacher returned a tuple; it must map clips to logits (B, K) "
                                 "(wrap a bare backbone with a head)")
            logits.append(z.float())
    return torch.cat(logits), (torch.cat(feats) if feats else None)


def _check_teacher(teacher: Callable, mode: str) -> None:
    if mode not in ("logits", "features"):
        raise ValueError(f"unknown distillation mode {mode!r}; use 'logits' or 'features'")
    if mode == "features" and not (callable(getattr(teacher, "features", None)) and
                                   callable(getattr(teacher, "head", None))):
        raise ValueError("feature distillation needs a teacher with .features(x) -> (B, D) and "
                         ".head(features) -> logits (e.g. AlignedClassifier or EncoderClassifier)")


def distill(teacher: Callable[[Tensor], Tensor], train: SkeletonArrays, test: SkeletonArrays,
            cfg: DistillConfig, stream: str = "joint", seed: int = 0, run_dir: Optional[PathLike] = None,
            resume: bool = False, *, name: str = "distill", augment_cfg: Optional[AugmentConfig] = None,
            console: Optional[Console] = None, progress: bool = False,
            max_epochs: Optional[int] = None, device: Device = None,
             logger: Optional[Logger] = None) -> Tuple[EncoderClassifier, ProbeResult]:
    r"""Distil a frozen teacher into ``stgcn-student`` + a linear head, without labels.

    ``mode="logits"`` (the paper, Eqs. 13-14): the student's logits :math:`z_s` follow the
    teacher's :math:`z_k` through :class:`~asma.losses.DistillationKL`
    :math:`\tau^2\,\mathrm{KL}(\mathrm{softmax}(z_k/\tau)\,\|\,\mathrm{softmax}(z_s/\tau))`
    (paper: 150 epochs, lr 1e-2, Adam, cosine).

    ``mode="features"`` (Appendix C): a linear projection maps the student's pooled feature to
    the teacher's width and :class:`~asma.losses.CosineFeatureLoss` pulls it to the teacher's
    feature (``teacher.features(x)``). The paper puts the projection on the teacher's side (256 ->
    the student's 128); here it is on the student's side because a trainable projection of the
    target can partially collapse (e.g. to rank 1) and lower the loss without transfer, while a
    fixed target cannot. The student then classifies with ``teacher.head`` after its projection
    (:class:`ProjectedHead`), still label-free; the paper instead fine-tuned the student with labels
    afterwards, which :func:`~asma.train.finetune.finetune` on ``student.encoder`` reproduces.

    The labels of ``train`` are never read (shuffling them gives identical training); ``test``
    labels are only used for the reported accuracy. The teacher runs in eval mode under
    ``torch.no_grad`` on the same clips (same stream) as the student; without ``cfg.augment`` its
    outputs are computed once for the whole training set. Checkpoints go to ``run_dir/<name>/``
    every epoch; ``resume=True`` reproduces the losses of an uninterrupted run.

    Under ``torchrun`` the student trains data-parallel (:func:`~asma.train.loop.fit`:
    ``cfg.batch_size`` is the global batch). Every process runs the whole frozen teacher (once on
    the training set, or with ``cfg.augment`` on its own part of each batch, augmented for the
    global batch on the CPU and then cut, so the processes see the clips of one process).

    Args:
        teacher: any callable clips -> logits, e.g. an :class:`~asma.train.finetune.AlignedClassifier`
            (two encoders + alignment trained by ``fit_aligned_probe`` or ``finetune_aligned``) or
            an :class:`~asma.train.finetune.EncoderClassifier`. Feature mode also needs
            ``teacher.features`` and ``teacher.head``.
        train, test: clips (joint coordinates; converted to ``stream`` for both models).
        cfg: :class:`DistillConfig`.
        name: stage name (checkpoint sub-folder, metrics ``stage``, result name).
        device: where the teacher and the student run (default: where the teacher is, CPU for a
            plain callable). An ``nn.Module`` teacher is moved there and stays; clips stay on the
            CPU and are moved batch by batch.

    Shapes:
        - **teacher**: :math:`(B, C, T, V, M) \to (B, K)`; the student maps the same input to
          :math:`(B, K)`

    Returns:
        ``(student, result)``: the :class:`~asma.train.finetune.EncoderClassifier` student (eval
        mode, on ``device``; ``student.history`` has per-epoch ``loss`` and ``agreement``, the percentage of
        training clips on which the student's argmax equals the teacher's, measured on the
        training batches) and its :class:`ProbeResult` on ``test``.
    """
    _check_teacher(teacher, cfg.mode)
    device = device_for(teacher, device)
    was_training = teacher.training if isinstance(teacher, nn.Module) else None
    if was_training is not None:
        teacher.to(device).eval()
    try:
        data = stream_tensor(train, stream)
        augment = Augment(augment_cfg or AugmentConfig(), train.skeleton.flip_perm, train.num_coords) \
            if cfg.augment else None
        torch.manual_seed(seed)
        model, crit = _student(teacher, train.skeleton, data, cfg, device)
        opt = adam([p for p in model.parameters() if p.requires_grad], lr=cfg.resolved_lr(),
                   weight_decay=cfg.weight_decay)
        batch_loss = _distill_loss(teacher, model.head, crit, data, augment, cfg.mode, device)
        history = fit(model, opt, batch_loss, len(train), cfg.batch_size, cfg.epochs, seed=seed, stage=name,
                      rng_stream=31, ckpt_dir=Path(run_dir) / name if run_dir else None,
                      config={"stage": name, "stream": stream, "seed": seed, "distill": asdict(cfg),
                              "student": model.encoder.config},
                      resume=resume, logger=default_logger(run_dir, logger), console=console, progress=progress,
                      max_epochs=max_epochs, device=device)
    finally:
        if was_training is not None:
            teacher.train(was_training)
    model.eval().history = history
    return model, evaluate(model, test, stream, name=name, device=device).to_probe_result(name)


def _student(teacher: Callable, skeleton, data: Tensor, cfg: DistillConfig,
             device: torch.device) -> Tuple[EncoderClassifier, nn.Module]:
    """The student classifier (its head sized from the teacher's outputs on two clips) and the
    distillation criterion of ``cfg.mode``."""
    probe_logits, probe_feats = _teacher_outputs(teacher, data[:2], cfg.mode, device)
    student = create_backbone("stgcn-student", skeleton, data.shape[1], **cfg.student_cfg)
    if cfg.mode == "logits":
        head: nn.Module = LinearClassifier(student.out_dim, probe_logits.shape[1])
        crit: nn.Module = DistillationKL(cfg.tau)
    else:
        head = ProjectedHead(nn.Linear(student.out_dim, probe_feats.shape[1]), copy.deepcopy(teacher.head))
        crit = CosineFeatureLoss()
    return EncoderClassifier(student, head).to(device), crit


def _distill_loss(teacher: Callable, head: nn.Module, crit: nn.Module, data: Tensor, augment: Optional[Augment],
                  mode: str, device: torch.device) -> BatchLoss:
    """The engine's batch loss: the student against the teacher's outputs, computed once for the
    whole training set without augmentation, else per (augmented) batch."""
    cached_logits, cached_feats = (None, None) if augment is not None else _teacher_outputs(teacher, data, mode, device)

    def batch_loss(net: nn.Module, batch: BatchIndex, g: torch.Generator):
        x = batch_clips(data, batch, augment, g, device)
        if augment is not None:
            t_logits, t_feats = _teacher_outputs(teacher, x, mode, device)
        else:
            i = batch.idx.to(cached_logits.device)
            t_logits = cached_logits[i]
            t_feats = cached_feats[i] if cached_feats is not None else None
        if mode == "logits":
            s_logits = net(x)
            loss = crit(s_logits, t_logits)
        else:
            # the student's features go through ``net`` (DDP); the projection is used outside its
            # forward, which DDP allows because it receives a gradient in every step
            z = head.proj(net(x, features=True))
            loss = crit(z, t_feats)
            with torch.no_grad():
                s_logits = head.teacher_head(z)
        agree = (s_logits.argmax(1) == t_logits.argmax(1)).float().mean().item()
        return loss, {"agreement": 100.0 * agree}
    return batch_loss


def _sweep_row(student: EncoderClassifier, result: ProbeResult, **keys) -> Dict[str, Any]:
    h = student.history[-1] if student.history else {}
    return {**keys, "top1": round(result.top1, 4), "top5": round(result.top5, 4),
            "params": count_parameters(student.encoder), "final_loss": h.get("loss"),
            "final_agreement": h.get("agreement")}


def tau_sweep(teacher: Callable[[Tensor], Tensor], train: SkeletonArrays, test: SkeletonArrays,
              cfg: DistillConfig, taus: Sequence[float] = DEFAULT_TAUS, stream: str = "joint", seed: int = 0,
              run_dir: Optional[PathLike] = None, device: Device = None,
              logger: Optional[Logger] = None) -> List[Dict[str, Any]]:
    """Temperature sensitivity (Fig. 4, left): one logit distillation per :math:`\\tau`, same
    student (``cfg.student_cfg``, the paper keeps 5 layers) and seed.

    Returns:
        One row per temperature: ``tau``, ``top1``, ``top5`` (test, percent), ``params`` (student
        encoder), ``final_loss``, ``final_agreement``. Checkpoints in ``run_dir/tau-<tau>/``.
    """
    rows = []
    for tau in taus:
        c = copy.deepcopy(cfg)
        c.tau = float(tau)
        student, res = distill(teacher, train, test, c, stream, seed, run_dir, name=f"tau-{tau:g}", device=device,
                               logger=logger)
        rows.append(_sweep_row(student, res, tau=float(tau)))
    return rows


def depth_sweep(teacher: Callable[[Tensor], Tensor], train: SkeletonArrays, test: SkeletonArrays,
                cfg: DistillConfig, depths: Sequence[int] = DEFAULT_DEPTHS, stream: str = "joint",
                seed: int = 0, run_dir: Optional[PathLike] = None, device: Device = None,
                logger: Optional[Logger] = None) -> List[Dict[str, Any]]:
    """Compression sensitivity (Fig. 4, right): one distillation per student depth
    (``num_layers``; widths and strides from :func:`asma.models.student.student_plan`), fixed
    :math:`\\tau`.

    Returns:
        One row per depth: ``layers``, ``top1``, ``top5``, ``params``, ``final_loss``,
        ``final_agreement``. Checkpoints in ``run_dir/layers-<L>/``.
    """
    if "channels" in cfg.student_cfg or "strides" in cfg.student_cfg:
        raise ValueError("depth_sweep sets num_layers; remove 'channels'/'strides' from student_cfg")
    rows = []
    for depth in depths:
        c = copy.deepcopy(cfg)
        c.student_cfg = {**cfg.student_cfg, "num_layers": int(depth)}
        student, res = distill(teacher, train, test, c, stream, seed, run_dir, name=f"layers-{int(depth)}",
                               device=device, logger=logger)
        rows.append(_sweep_row(student, res, layers=int(depth)))
    return rows


__all__ = ["distill", "tau_sweep", "depth_sweep", "DEFAULT_TAUS",
           "DEFAULT_DEPTHS"]
