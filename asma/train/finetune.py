"""Fine-tuning (paper §4 "Downstream Evaluation"): each encoder end-to-end with a linear head,
then the feature alignment module on top of the two fine-tuned, frozen encoders, and the
linear-probed aligned teacher (the modules are :mod:`asma.models.classifiers` /
:mod:`asma.models.alignment`)."""
from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..data.transforms import Augment, AugmentConfig
from ..models.alignment import AlignedClassifier, FeatureAlignment
from ..models.classifiers import EncoderClassifier, FeatureStandardizer
from ..models.heads import LinearClassifier
from ..models.registry import Backbone
from .config import FinetuneConfig, ProbeConfig
from .optim import adam
from .engine import Device, device_for
from .evaluate import evaluate, evaluate_logits
from .loggers import Logger, default_logger
from .loop import BatchIndex, batch_clips, fit
from .probe import ProbeResult, extract_tokens, train_head

PathLike = Union[str, Path]


def _unwrap(encoder: nn.Module) -> Backbone:
    return encoder.encoder if isinstance(encoder, EncoderClassifier) else encoder


def stream_tensor(arrays: SkeletonArrays, stream: str) -> Tensor:
    """All clips of ``arrays`` as one float32 tensor of the given stream.

    Shapes:
        - **output**: :math:`(N, C, T, V, M)`
    """
    data = torch.from_numpy(np.array(arrays.data, dtype=np.float32))  # copy: memmaps are read-only
    return to_stream(data, stream, arrays.skeleton, arrays.num_coords)


# ----------------------------------------------------------------------------- fine-tuning


def finetune(encoder: nn.Module, train: SkeletonArrays, test: SkeletonArrays, cfg: FinetuneConfig,
             stream: str = "joint", seed: int = 0, run_dir: Optional[PathLike] = None,
             resume: bool = False, *, name: str = "finetune", augment_cfg: Optional[AugmentConfig] = None,
             console: Optional[Console] = None, progress: bool = False,
             max_epochs: Optional[int] = None, device: Device = None,
             logger: Optional[Logger] = None) -> Tuple[EncoderClassifier, ProbeResult]:
    """Fine-tune a (pretrained) encoder end-to-end with a linear head on the labelled ``train``
    set (cross-entropy, Adam, cosine; paper: 150 epochs, lr 5e-3) and report the last epoch's
    test top-1/top-5 (no best-on-test selection).

    The encoder is copied (the caller's module is untouched) and trained in train mode (its
    dropout and BatchNorm active). Checkpoints go to ``run_dir/<name>/epoch-XXXX`` after every
    epoch and records to ``run_dir/metrics.jsonl`` (``stage=name``); ``resume=True`` continues
    from the latest checkpoint with the same losses as an uninterrupted run. Under ``torchrun``
    the processes share each global batch of ``cfg.batch_size`` clips (:func:`~asma.train.loop.fit`).

    Args:
        encoder: a backbone (or an :class:`EncoderClassifier`, whose encoder is used).
        train, test: labelled clips (joint coordinates; converted to ``stream``).
        cfg: :class:`FinetuneConfig` (``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ...).
        name: stage name, checkpoint sub-folder and result name (e.g. ``"finetune-theta"``).
        augment_cfg: augmentations when ``cfg.augment`` (default :class:`AugmentConfig` ()).
        device: where to train (default: where ``encoder`` is; see
            :func:`~asma.train.engine.resolve_device`). Clips stay on the CPU (augmented there)
            and each batch is moved.

    Shapes:
        - clips :math:`(N, C, T, V, M)`; the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`

    Returns:
        ``(model, result)``: the fine-tuned :class:`EncoderClassifier` (eval mode, on ``device``,
        with ``model.history`` the per-epoch records) and the test :class:`ProbeResult` (CPU).
    """
    device = device_for(encoder, device)
    enc = copy.deepcopy(_unwrap(encoder)).requires_grad_(True)
    k = train.num_classes
    torch.manual_seed(seed)
    model = EncoderClassifier(enc, LinearClassifier(enc.out_dim, k)).to(device)
    data = stream_tensor(train, stream)
    labels = torch.as_tensor(train.labels, dtype=torch.long)
    augment = Augment(augment_cfg or AugmentConfig(), train.skeleton.flip_perm, train.num_coords) \
        if cfg.augment else None
    crit = nn.CrossEntropyLoss()
    opt = adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def batch_loss(net: nn.Module, batch: BatchIndex, g: torch.Generator):
        logits = net(batch_clips(data, batch, augment, g, device))
        y = labels[batch.idx].to(device, non_blocking=True)
        loss = crit(logits, y)
        return loss, {"train_acc": 100.0 * (logits.argmax(1) == y).float().mean().item()}

    history = fit(model, opt, batch_loss, len(train), cfg.batch_size, cfg.epochs, seed=seed,
                  warmup_epochs=cfg.warmup_epochs, stage=name, rng_stream=23,
                  ckpt_dir=Path(run_dir) / name if run_dir else None,
                  config={"stage": name, "stream": stream, "seed": seed, "finetune": asdict(cfg),
                          "backbone": enc.config},
                  resume=resume, logger=default_logger(run_dir, logger), console=console, progress=progress,
                  max_epochs=max_epochs, device=device)
    model.eval()
    model.history = history
    result = evaluate(model, test, stream, name=name, device=device).to_probe_result(name)
    return model, result


def _align_forward(head: nn.Module, inputs: Tuple[Tensor, ...]) -> Tensor:
    return head(inputs[0], inputs[1])


def _aligned_tokens(enc_theta: Backbone, enc_phi: Backbone, train: SkeletonArrays, test: SkeletonArrays,
                    stream: str, device: torch.device):
    # the encoders run on ``device``; tokens and statistics come back on the CPU
    tr_t, te_t = (extract_tokens(enc_theta, a, stream, device=device) for a in (train, test))
    tr_p, te_p = (extract_tokens(enc_phi, a, stream, device=device) for a in (train, test))
    n_t, n_p = (FeatureStandardizer(x.shape[-1]).fit(x) for x in (tr_t, tr_p))
    stats = {"mean_theta": n_t.mean, "std_theta": n_t.std, "mean_phi": n_p.mean, "std_phi": n_p.std}
    with torch.no_grad():
        return (n_t(tr_t), n_p(tr_p)), (n_t(te_t), n_p(te_p)), stats


def fit_aligned_probe(enc_theta: nn.Module, enc_phi: nn.Module, train: SkeletonArrays, test: SkeletonArrays,
                      cfg: ProbeConfig, stream: str = "joint", seed: int = 0, name: str = "aligned",
                      device: Device = None) -> Tuple[AlignedClassifier, ProbeResult]:
    """The linear-probed ASMa classifier (Table 3's ``aligned`` row) as a module: frozen
    encoders, standardised tokens, :class:`FeatureAlignment` trained with
    :func:`~asma.train.probe.train_head` (same seeds, so the same numbers as the ``aligned`` row
    of :func:`~asma.train.probe.linear_evaluation`). This is the "linear-probed teacher" of §5.4.

    Every process trains the same probe (no data parallelism: the probe is small).
    ``device``: where the encoders (copies) and the probe run (default: where ``enc_theta`` is);
    the returned model stays there, the result's logits are on the CPU.

    Shapes:
        - the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`
    """
    device = device_for(enc_theta, device)
    enc_t = copy.deepcopy(_unwrap(enc_theta)).eval()
    enc_p = copy.deepcopy(_unwrap(enc_phi)).eval()
    (tr_t, tr_p), (te_t, te_p), stats = _aligned_tokens(enc_t, enc_p, train, test, stream, device)
    torch.manual_seed(seed)
    align = FeatureAlignment(enc_t.out_dim, train.num_classes, num_heads=cfg.heads)
    result = train_head(align, _align_forward, [tr_t, tr_p], torch.as_tensor(train.labels),
                        [te_t, te_p], torch.as_tensor(test.labels), cfg, seed, name=name, device=device)
    return AlignedClassifier(enc_t, enc_p, align.eval(), stats).to(device), result


def finetune_aligned(enc_theta: nn.Module, enc_phi: nn.Module, train: SkeletonArrays, test: SkeletonArrays,
                     cfg: FinetuneConfig, stream: str = "joint", seed: int = 0,
                     run_dir: Optional[PathLike] = None, resume: bool = False, *,
                     name: str = "finetune-aligned", console: Optional[Console] = None,
                     progress: bool = False, max_epochs: Optional[int] = None, device: Device = None,
                     logger: Optional[Logger] = None
                     ) -> Tuple[AlignedClassifier, ProbeResult]:
    """Combined fine-tuning (paper §4): the :class:`FeatureAlignment` module trained on top of
    the two **fine-tuned, frozen** encoders (paper: 50 epochs, lr 1e-4; ``cfg.align_epochs``,
    ``cfg.align_lr``), cross-entropy, Adam, cosine. Tokens are extracted once in eval mode and
    standardised with the training set's statistics, as in linear evaluation. Checkpoints of the
    alignment module go to ``run_dir/<name>/``; ``resume=True`` reproduces the losses. Under
    ``torchrun`` the processes share each global batch (:func:`~asma.train.loop.fit`); with no BatchNorm or
    dropout in the alignment module, ``W`` processes train the single-process weights (up to
    float32 round-off).

    Args:
        enc_theta, enc_phi: fine-tuned encoders, or the :class:`EncoderClassifier` models
            returned by :func:`finetune` (their encoders are used; the heads are dropped).
        device: where the encoders (copies) and the alignment module run (default: where
            ``enc_theta`` is). Tokens are kept on the CPU and moved batch by batch.

    Shapes:
        - the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`

    Returns:
        ``(model, result)``: the :class:`AlignedClassifier` (on ``device``, ``model.history`` the
        per-epoch records) and the test :class:`ProbeResult` of the final epoch (CPU).
    """
    device = device_for(enc_theta, device)
    enc_t = copy.deepcopy(_unwrap(enc_theta)).eval()
    enc_p = copy.deepcopy(_unwrap(enc_phi)).eval()
    if enc_t.out_dim != enc_p.out_dim:
        raise ValueError(f"the two encoders have different widths ({enc_t.out_dim} vs {enc_p.out_dim}); "
                         "the alignment module needs equal token widths")
    (tr_t, tr_p), (te_t, te_p), stats = _aligned_tokens(enc_t, enc_p, train, test, stream, device)
    torch.manual_seed(seed)
    align = FeatureAlignment(enc_t.out_dim, train.num_classes, num_heads=cfg.heads).to(device)
    labels = torch.as_tensor(train.labels, dtype=torch.long)
    crit = nn.CrossEntropyLoss()
    opt = adam(align.parameters(), lr=cfg.align_lr, weight_decay=cfg.weight_decay)

    def batch_loss(net: nn.Module, batch: BatchIndex, g: torch.Generator):
        i = batch.idx
        logits = net(tr_t[i].to(device, non_blocking=True), tr_p[i].to(device, non_blocking=True))
        y = labels[i].to(device, non_blocking=True)
        return crit(logits, y), {"train_acc": 100.0 * (logits.argmax(1) == y).float().mean().item()}

    history = fit(align, opt, batch_loss, len(train), cfg.batch_size, cfg.align_epochs,
                  seed=seed, stage=name, rng_stream=29,
                  ckpt_dir=Path(run_dir) / name if run_dir else None,
                  config={"stage": name, "stream": stream, "seed": seed, "finetune": asdict(cfg)},
                  resume=resume, logger=default_logger(run_dir, logger), console=console, progress=progress,
                  max_epochs=max_epochs, device=device)
    align.eval()
    with torch.no_grad():
        logits = torch.cat([align(te_t[i:i + 512].to(device), te_p[i:i + 512].to(device)).cpu()
                            for i in range(0, te_t.shape[0], 512)])
    result = evaluate_logits(logits, test.labels, test.class_names, name).to_probe_result(name)
    model = AlignedClassifier(enc_t, enc_p, align, stats).to(device)
    model.history = history
    return model, result


__all__ = ["stream_tensor", "finetune", "fit_aligned_probe", "finetune_aligned"]
