"""Fine-tuning (paper §4 "Downstream Evaluation"): each encoder end-to-end with a linear head,
then the feature alignment module on top of the two fine-tuned, frozen encoders. Also the
classifier modules shared with distillation and the linear-probed aligned teacher."""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..data.transforms import Augment, AugmentConfig
from ..io import latest_checkpoint, load_checkpoint, save_checkpoint
from ..models.heads import FeatureAlignment, LinearClassifier
from ..models.registry import Backbone
from .config import ProbeConfig
from .engine import MetricsLog, epoch_generator, make_progress, set_lr, warmup_cosine
from .evaluate import evaluate, evaluate_logits
from .probe import ProbeResult, extract_tokens, train_head

PathLike = Union[str, Path]


@dataclass
class FinetuneConfig:
    """Fine-tuning schedule (paper §4): Adam + per-step cosine decay to 0.

    Attributes:
        epochs, batch_size, lr, weight_decay: end-to-end stage (paper: 150 epochs, lr 5e-3, batch
            128; weight decay 1e-5 as in the paper's implementation details).
        warmup_epochs: linear warm-up epochs before the cosine (paper: none for fine-tuning).
        align_epochs, align_lr: the alignment module on the frozen fine-tuned encoders (paper: 50
            epochs, lr 1e-4); same batch size and weight decay.
        heads: attention heads of the alignment module (paper: 4).
        augment: apply the pretraining augmentations (:class:`~asma.data.transforms.AugmentConfig`
            defaults) to fine-tuning batches. The paper does not say; off by default (the
            AimCLR/PSTL fine-tuning configs feed un-augmented clips).
    """

    epochs: int = 150
    batch_size: int = 128
    lr: float = 5e-3
    weight_decay: float = 1e-5
    warmup_epochs: int = 0
    align_epochs: int = 50
    align_lr: float = 1e-4
    heads: int = 4
    augment: bool = False


# ----------------------------------------------------------------------------- classifier modules


class EncoderClassifier(nn.Module):
    """A backbone and a head on its pooled feature (fine-tuned encoders, distilled students).

    Shapes:
        - **input**: :math:`(B, C, T, V, M)` -> **output**: logits :math:`(B, K)`
    """

    def __init__(self, encoder: Backbone, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def features(self, x: Tensor) -> Tensor:
        """Pooled encoder feature, :math:`(B, C, T, V, M) \\to (B, D)`."""
        return self.encoder(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class AlignedClassifier(nn.Module):
    r"""The full ASMa classifier: two frozen encoders, their per-frame tokens standardised with
    the training set's statistics (as :func:`~asma.train.probe.standardize_tokens`), and the
    :class:`~asma.models.heads.FeatureAlignment` module (Eqs. 10-12). Used as the distillation
    teacher (§3.5). The encoders stay in eval mode and have ``requires_grad=False``.

    Shapes:
        - **input**: :math:`(B, C, T, V, M)` -> **output**: logits :math:`(B, K)`;
          :meth:`features`: :math:`(B, D)`
    """

    def __init__(self, enc_theta: Backbone, enc_phi: Backbone, align: FeatureAlignment,
                 stats: Optional[Mapping[str, Tensor]] = None):
        super().__init__()
        self.enc_theta = enc_theta.requires_grad_(False)
        self.enc_phi = enc_phi.requires_grad_(False)
        self.align = align
        d = enc_theta.out_dim
        stats = dict(stats or {})
        for k in ("theta", "phi"):
            self.register_buffer(f"mean_{k}", stats.get(f"mean_{k}", torch.zeros(d)).clone().float())
            self.register_buffer(f"std_{k}", stats.get(f"std_{k}", torch.ones(d)).clone().float())
        self.train(False)

    def train(self, mode: bool = True) -> "AlignedClassifier":
        super().train(mode)
        self.enc_theta.eval()
        self.enc_phi.eval()
        return self

    @property
    def head(self) -> nn.Module:
        """The final linear classifier, :math:`(B, D) \\to (B, K)`."""
        return self.align.head

    def tokens(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Standardised tokens of both encoders, each :math:`(B, T', D)`."""
        with torch.no_grad():
            h_t = (self.enc_theta(x)[1] - self.mean_theta) / self.std_theta
            h_p = (self.enc_phi(x)[1] - self.mean_phi) / self.std_phi
        return h_t, h_p

    def features(self, x: Tensor) -> Tensor:
        """Pooled aligned feature, :math:`(B, D)`."""
        return self.align.features(*self.tokens(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.align(*self.tokens(x))


def token_stats(train_tokens: Tensor, eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Per-dimension mean and std (+eps) of training tokens, as
    :func:`~asma.train.probe.standardize_tokens` computes them.

    Shapes:
        - **train_tokens**: :math:`(N, T', D)` -> two :math:`(D,)`
    """
    flat = train_tokens.reshape(-1, train_tokens.shape[-1])
    return flat.mean(0), flat.std(0, unbiased=False) + eps


def _unwrap(encoder: nn.Module) -> Backbone:
    return encoder.encoder if isinstance(encoder, EncoderClassifier) else encoder


def stream_tensor(arrays: SkeletonArrays, stream: str) -> Tensor:
    """All clips of ``arrays`` as one float32 tensor of the given stream.

    Shapes:
        - **output**: :math:`(N, C, T, V, M)`
    """
    data = torch.from_numpy(np.ascontiguousarray(arrays.data, dtype=np.float32))
    return to_stream(data, stream, arrays.skeleton, arrays.num_coords)


# ----------------------------------------------------------------------------- the epoch loop


BatchLoss = Callable[[Tensor, torch.Generator], Tuple[Tensor, Dict[str, float]]]


def fit_epochs(module: nn.Module, optimizer: torch.optim.Optimizer, batch_loss: BatchLoss, n: int,
               batch_size: int, epochs: int, lr: float, *, seed: int = 0, warmup_epochs: int = 0,
               stage: str = "train", rng_stream: int = 0, ckpt_dir: Optional[PathLike] = None,
               config: Optional[Mapping[str, Any]] = None, resume: bool = False,
               log: Optional[MetricsLog] = None, console: Optional[Console] = None,
               progress: bool = False, max_epochs: Optional[int] = None) -> List[Dict[str, Any]]:
    """The shared supervised/distillation loop: shuffled mini-batches (the last partial batch
    is kept), Adam-style ``optimizer``, per-step linear warm-up + cosine decay to 0, a checkpoint
    of ``module`` and ``optimizer`` after every epoch (``ckpt_dir/epoch-XXXX``, atomic) and one
    ``metrics.jsonl`` record per epoch.

    Exact resumption: the batch order and every draw inside ``batch_loss`` come from
    ``epoch_generator(seed, epoch, rng_stream)`` and the global torch RNG (dropout) is re-seeded
    from ``(seed, epoch)`` at the start of each epoch, so ``resume=True`` continues from the
    latest checkpoint and reproduces the losses of an uninterrupted run.

    Args:
        module: what is trained and checkpointed (put in train mode every epoch).
        batch_loss: ``(indices (b,), generator) -> (scalar loss, {metric: float})``.
        n: number of training samples.
        max_epochs: stop after this epoch count (tests of resumption) without changing the schedule.

    Returns:
        One record per epoch run: ``stage``, ``epoch``, ``lr``, ``loss``, the metrics (averaged
        over samples) and ``samples_per_s``.
    """
    if n < 1:
        raise ValueError(f"{stage}: no training samples")
    if epochs < 1:
        raise ValueError(f"{stage}: epochs must be >= 1, got {epochs}")
    bs = max(1, min(batch_size, n))
    steps = -(-n // bs)
    total, warm = steps * epochs, steps * warmup_epochs
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    log = log or MetricsLog(None)
    start = 0
    if resume:
        last = latest_checkpoint(ckpt_dir) if ckpt_dir is not None else None
        if last is None:
            raise ValueError(f"--resume: no {stage} checkpoint in {ckpt_dir}")
        state = load_checkpoint(last, module, optimizer)
        start = int(state["epoch"]) + 1
    end = epochs if max_epochs is None else min(epochs, max_epochs)
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
                idx = order[s * bs:(s + 1) * bs]
                loss, metrics = batch_loss(idx, g)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{stage} loss became {loss.item()} at epoch {epoch}, step {s}; "
                                             "lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                b = idx.shape[0]
                seen += b
                sums["loss"] = sums.get("loss", 0.0) + loss.item() * b
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * b
                bar.update(task, advance=1, loss=f"{loss.item():.3f}",
                           rate=f"{seen / (time.perf_counter() - t0):.0f}")
            record = {"stage": stage, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                      **{k: v / seen for k, v in sums.items()},
                      "samples_per_s": round(seen / (time.perf_counter() - t0), 2)}
            history.append(record)
            log.write(record)
            if ckpt_dir is not None:
                save_checkpoint(ckpt_dir, f"epoch-{epoch:04d}", module, dict(config or {}), record, optimizer)
    return history


def _metrics_log(run_dir: Optional[PathLike]) -> MetricsLog:
    return MetricsLog(Path(run_dir) / "metrics.jsonl" if run_dir else None)


# ----------------------------------------------------------------------------- fine-tuning


def finetune(encoder: nn.Module, train: SkeletonArrays, test: SkeletonArrays, cfg: FinetuneConfig,
             stream: str = "joint", seed: int = 0, run_dir: Optional[PathLike] = None,
             resume: bool = False, *, name: str = "finetune", augment_cfg: Optional[AugmentConfig] = None,
             console: Optional[Console] = None, progress: bool = False,
             max_epochs: Optional[int] = None) -> Tuple[EncoderClassifier, ProbeResult]:
    """Fine-tune a (pretrained) encoder end-to-end with a linear head on the labelled ``train``
    set (cross-entropy, Adam, cosine; paper: 150 epochs, lr 5e-3) and report the last epoch's
    test top-1/top-5 (no best-on-test selection).

    The encoder is copied (the caller's module is untouched) and trained in train mode (its
    dropout and BatchNorm active). Checkpoints go to ``run_dir/<name>/epoch-XXXX`` after every
    epoch and records to ``run_dir/metrics.jsonl`` (``stage=name``); ``resume=True`` continues
    from the latest checkpoint with the same losses as an uninterrupted run.

    Args:
        encoder: a backbone (or an :class:`EncoderClassifier`, whose encoder is used).
        train, test: labelled clips (joint coordinates; converted to ``stream``).
        cfg: :class:`FinetuneConfig` (``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ...).
        name: stage name, checkpoint sub-folder and result name (e.g. ``"finetune-theta"``).
        augment_cfg: augmentations when ``cfg.augment`` (default :class:`AugmentConfig` ()).

    Shapes:
        - clips :math:`(N, C, T, V, M)`; the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`

    Returns:
        ``(model, result)``: the fine-tuned :class:`EncoderClassifier` (eval mode, with
        ``model.history`` the per-epoch records) and the test :class:`ProbeResult`.
    """
    enc = copy.deepcopy(_unwrap(encoder)).requires_grad_(True)
    k = train.num_classes
    torch.manual_seed(seed)
    model = EncoderClassifier(enc, LinearClassifier(enc.out_dim, k))
    data = stream_tensor(train, stream)
    labels = torch.as_tensor(train.labels, dtype=torch.long)
    augment = Augment(augment_cfg or AugmentConfig(), train.skeleton.flip_perm, train.num_coords) \
        if cfg.augment else None
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def batch_loss(idx: Tensor, g: torch.Generator):
        x = data[idx]
        if augment is not None:
            x = augment(x, g)
        logits = model(x)
        y = labels[idx]
        loss = crit(logits, y)
        return loss, {"train_acc": 100.0 * (logits.argmax(1) == y).float().mean().item()}

    history = fit_epochs(model, opt, batch_loss, len(train), cfg.batch_size, cfg.epochs, cfg.lr, seed=seed,
                         warmup_epochs=cfg.warmup_epochs, stage=name, rng_stream=23,
                         ckpt_dir=Path(run_dir) / name if run_dir else None,
                         config={"stage": name, "stream": stream, "seed": seed, "finetune": asdict(cfg),
                                 "backbone": enc.config},
                         resume=resume, log=_metrics_log(run_dir), console=console, progress=progress,
                         max_epochs=max_epochs)
    model.eval()
    model.history = history
    result = evaluate(model, test, stream, name=name).to_probe_result(name)
    return model, result


def _align_forward(head: nn.Module, inputs: Tuple[Tensor, ...]) -> Tensor:
    return head(inputs[0], inputs[1])


def _aligned_tokens(enc_theta: Backbone, enc_phi: Backbone, train: SkeletonArrays, test: SkeletonArrays,
                    stream: str):
    tr_t, te_t = extract_tokens(enc_theta, train, stream), extract_tokens(enc_theta, test, stream)
    tr_p, te_p = extract_tokens(enc_phi, train, stream), extract_tokens(enc_phi, test, stream)
    (m_t, s_t), (m_p, s_p) = token_stats(tr_t), token_stats(tr_p)
    stats = {"mean_theta": m_t, "std_theta": s_t, "mean_phi": m_p, "std_phi": s_p}
    return ((tr_t - m_t) / s_t, (tr_p - m_p) / s_p), ((te_t - m_t) / s_t, (te_p - m_p) / s_p), stats


def fit_aligned_probe(enc_theta: nn.Module, enc_phi: nn.Module, train: SkeletonArrays, test: SkeletonArrays,
                      cfg: ProbeConfig, stream: str = "joint", seed: int = 0, name: str = "aligned"
                      ) -> Tuple[AlignedClassifier, ProbeResult]:
    """The linear-probed ASMa classifier (Table 3's ``aligned`` row) as a module: frozen
    encoders, standardised tokens, :class:`FeatureAlignment` trained with
    :func:`~asma.train.probe.train_head` (same seeds, so the same numbers as the ``aligned`` row
    of :func:`~asma.train.probe.linear_evaluation`). This is the "linear-probed teacher" of §5.4.

    Shapes:
        - the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`
    """
    enc_t = copy.deepcopy(_unwrap(enc_theta)).eval()
    enc_p = copy.deepcopy(_unwrap(enc_phi)).eval()
    (tr_t, tr_p), (te_t, te_p), stats = _aligned_tokens(enc_t, enc_p, train, test, stream)
    torch.manual_seed(seed)
    align = FeatureAlignment(enc_t.out_dim, train.num_classes, num_heads=cfg.heads)
    result = train_head(align, _align_forward, [tr_t, tr_p], torch.as_tensor(train.labels),
                        [te_t, te_p], torch.as_tensor(test.labels), cfg, seed, name=name)
    return AlignedClassifier(enc_t, enc_p, align.eval(), stats), result


def finetune_aligned(enc_theta: nn.Module, enc_phi: nn.Module, train: SkeletonArrays, test: SkeletonArrays,
                     cfg: FinetuneConfig, stream: str = "joint", seed: int = 0,
                     run_dir: Optional[PathLike] = None, resume: bool = False, *,
                     name: str = "finetune-aligned", console: Optional[Console] = None,
                     progress: bool = False, max_epochs: Optional[int] = None
                     ) -> Tuple[AlignedClassifier, ProbeResult]:
    """Combined fine-tuning (paper §4): the :class:`FeatureAlignment` module trained on top of
    the two **fine-tuned, frozen** encoders (paper: 50 epochs, lr 1e-4; ``cfg.align_epochs``,
    ``cfg.align_lr``), cross-entropy, Adam, cosine. Tokens are extracted once in eval mode and
    standardised with the training set's statistics, as in linear evaluation. Checkpoints of the
    alignment module go to ``run_dir/<name>/``; ``resume=True`` reproduces the losses.

    Args:
        enc_theta, enc_phi: fine-tuned encoders, or the :class:`EncoderClassifier` models
            returned by :func:`finetune` (their encoders are used; the heads are dropped).

    Shapes:
        - the returned model maps :math:`(B, C, T, V, M) \\to (B, K)`

    Returns:
        ``(model, result)``: the :class:`AlignedClassifier` (``model.history`` the per-epoch
        records) and the test :class:`ProbeResult` of the final epoch.
    """
    enc_t = copy.deepcopy(_unwrap(enc_theta)).eval()
    enc_p = copy.deepcopy(_unwrap(enc_phi)).eval()
    if enc_t.out_dim != enc_p.out_dim:
        raise ValueError(f"the two encoders have different widths ({enc_t.out_dim} vs {enc_p.out_dim}); "
                         "the alignment module needs equal token widths")
    (tr_t, tr_p), (te_t, te_p), stats = _aligned_tokens(enc_t, enc_p, train, test, stream)
    torch.manual_seed(seed)
    align = FeatureAlignment(enc_t.out_dim, train.num_classes, num_heads=cfg.heads)
    labels = torch.as_tensor(train.labels, dtype=torch.long)
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(align.parameters(), lr=cfg.align_lr, weight_decay=cfg.weight_decay)

    def batch_loss(idx: Tensor, g: torch.Generator):
        logits = align(tr_t[idx], tr_p[idx])
        y = labels[idx]
        return crit(logits, y), {"train_acc": 100.0 * (logits.argmax(1) == y).float().mean().item()}

    history = fit_epochs(align, opt, batch_loss, len(train), cfg.batch_size, cfg.align_epochs, cfg.align_lr,
                         seed=seed, stage=name, rng_stream=29,
                         ckpt_dir=Path(run_dir) / name if run_dir else None,
                         config={"stage": name, "stream": stream, "seed": seed, "finetune": asdict(cfg)},
                         resume=resume, log=_metrics_log(run_dir), console=console, progress=progress,
                         max_epochs=max_epochs)
    align.eval()
    with torch.no_grad():
        logits = torch.cat([align(te_t[i:i + 512], te_p[i:i + 512]) for i in range(0, te_t.shape[0], 512)])
    result = evaluate_logits(logits, test.labels, test.class_names, name).to_probe_result(name)
    model = AlignedClassifier(enc_t, enc_p, align, stats)
    model.history = history
    return model, result


__all__ = ["FinetuneConfig", "EncoderClassifier", "AlignedClassifier", "token_stats", "stream_tensor",
           "fit_epochs", "finetune", "fit_aligned_probe", "finetune_aligned"]
