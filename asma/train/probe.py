"""Linear evaluation on frozen encoders: per-encoder probes, the averaging baseline and the
feature alignment module (the rows of the paper's Table 3)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..losses import accuracy_topk
from ..models.alignment import FeatureAlignment
from ..models.heads import LinearClassifier
from ..models.registry import Backbone
from .config import ProbeConfig
from .engine import Device, device_for, epoch_generator, set_lr, warmup_cosine


@torch.no_grad()
def extract_tokens(encoder: Backbone, arrays: SkeletonArrays, stream: str = "joint",
                   batch_size: int = 256, device: Device = None) -> Tensor:
    """Frozen per-frame tokens of every clip (eval mode, no augmentation).

    The encoder runs on ``device`` (default: where it is; given, the encoder is moved there and
    stays), batch by batch; the tokens are returned on the CPU.

    Shapes:
        - **output**: :math:`(N, T', D)`
    """
    device = device_for(encoder, device)
    encoder.to(device)
    was = encoder.training
    encoder.eval()
    skel = arrays.skeleton
    out = []
    for i in range(0, len(arrays), batch_size):
        x = torch.from_numpy(np.array(arrays.data[i:i + batch_size], dtype=np.float32))  # copy: memmaps are read-only
        x = to_stream(x, stream, skel, arrays.num_coords).to(device, non_blocking=True)
        out.append(encoder(x)[1].cpu())
    encoder.train(was)
    return torch.cat(out)


def standardize_tokens(train: Tensor, test: Tensor, eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Standardise every feature dimension with the training set's mean and std (a non-affine
    BatchNorm before the probe, as MAE does): an affine change the linear head could represent
    anyway, but it makes the probe's optimisation independent of each encoder's feature scale.

    Shapes:
        - **train**: :math:`(N, T', D)`, **test**: :math:`(N', T', D)` -> same
    """
    flat = train.reshape(-1, train.shape[-1])
    mean, std = flat.mean(0), flat.std(0, unbiased=False) + eps
    return (train - mean) / std, (test - mean) / std


@dataclass
class ProbeResult:
    name: str
    top1: float
    top5: float
    logits: Optional[Tensor] = None

    def as_dict(self) -> Dict[str, float]:
        return {"name": self.name, "top1": round(self.top1, 2), "top5": round(self.top5, 2)}


def train_head(head: nn.Module, forward: Callable[[nn.Module, Tuple[Tensor, ...]], Tensor],
               train_inputs: Sequence[Tensor], train_labels: Tensor, test_inputs: Sequence[Tensor],
               test_labels: Tensor, cfg: ProbeConfig, seed: int = 0, name: str = "probe",
               device: Device = None) -> ProbeResult:
    """Train ``head`` with Adam + cosine on precomputed features and report test top-1/top-5 of
    the final epoch (no best-on-test selection).

    The inputs stay where they are (CPU) and each batch is moved to ``device`` (default: where
    ``head`` is; the head is moved there and stays). The result's logits are on the CPU.

    Shapes:
        - **train_inputs**: tensors of :math:`(N, \\ldots)`, **train_labels**: :math:`(N,)`;
          **test_inputs**: :math:`(N', \\ldots)`, **test_labels**: :math:`(N',)`
        - result ``logits``: :math:`(N', K)`
    """
    device = device_for(head, device)
    head.to(device)
    train_labels = torch.as_tensor(train_labels)
    n = train_labels.shape[0]
    bs = min(cfg.batch_size, n)
    steps = -(-n // bs)  # keep the last partial batch: the probe sees every clip each epoch
    total = steps * cfg.epochs
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    crit = nn.CrossEntropyLoss()
    head.train()
    for epoch in range(cfg.epochs):
        g = epoch_generator(seed, epoch, stream=17)
        order = torch.randperm(n, generator=g)
        for s in range(steps):
            set_lr(opt, warmup_cosine(epoch * steps + s, total, 0, cfg.lr))
            idx = order[s * bs:(s + 1) * bs]
            loss = crit(forward(head, tuple(t[idx].to(device, non_blocking=True) for t in train_inputs)),
                        train_labels[idx].to(device, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    head.eval()
    with torch.no_grad():
        logits = torch.cat([forward(head, tuple(t[i:i + 512].to(device, non_blocking=True)
                                                for t in test_inputs)).cpu()
                            for i in range(0, test_labels.shape[0], 512)])
    top1, top5 = accuracy_topk(logits, test_labels)
    return ProbeResult(name, top1, top5, logits)


def _linear(head, inputs):
    return head(inputs[0].mean(dim=1))


def _average(head, inputs):
    return head(0.5 * (inputs[0].mean(dim=1) + inputs[1].mean(dim=1)))


def _align(head, inputs):
    return head(inputs[0], inputs[1])


def linear_evaluation(encoders: Dict[str, Backbone], train: SkeletonArrays, test: SkeletonArrays,
                      cfg: ProbeConfig, stream: str = "joint", seed: int = 0,
                      random_encoder: Optional[Backbone] = None,
                      console: Optional[Console] = None, device: Device = None) -> List[ProbeResult]:
    """Probe frozen encoders. Rows: ``random-init`` (if given), one linear probe per encoder,
    ``average`` (mean of the two pooled features, no alignment) and ``aligned`` (Eqs. 10-12).

    Args:
        encoders: name -> pretrained encoder (e.g. ``{"theta": ..., "phi": ...}``).
        device: where the encoders and heads run (default: where the first encoder is); the
            encoders are moved there. Features and the rows' logits stay on the CPU.

    Shapes:
        - clips :math:`(N, C, T, V, M)`; each row's ``logits``: :math:`(N_{test}, K)`
    """
    first = random_encoder if random_encoder is not None else next(iter(encoders.values()), None)
    device = device_for(first, device)
    k = train.num_classes
    ytr = torch.as_tensor(train.labels)
    yte = torch.as_tensor(test.labels)
    rows: List[ProbeResult] = []
    feats = {}
    named = ([("random-init", random_encoder)] if random_encoder is not None else []) + list(encoders.items())
    for name, enc in named:
        if console is not None:
            console.log(f"extracting features: {name}")
        feats[name] = standardize_tokens(extract_tokens(enc, train, stream, device=device),
                                         extract_tokens(enc, test, stream, device=device))
        torch.manual_seed(seed)
        head = LinearClassifier(enc.out_dim, k)
        rows.append(train_head(head, _linear, [feats[name][0]], ytr, [feats[name][1]], yte, cfg, seed,
                               name=f"{name} probe" if name != "random-init" else "random-init probe",
                               device=device))
    names = list(encoders)
    if len(names) == 2:
        a, b = names
        dim = encoders[a].out_dim
        torch.manual_seed(seed)
        rows.append(train_head(LinearClassifier(dim, k), _average, [feats[a][0], feats[b][0]], ytr,
                               [feats[a][1], feats[b][1]], yte, cfg, seed, name=f"{a}+{b} average",
                               device=device))
        torch.manual_seed(seed)
        align = FeatureAlignment(dim, k, num_heads=cfg.heads)
        rows.append(train_head(align, _align, [feats[a][0], feats[b][0]], ytr,
                               [feats[a][1], feats[b][1]], yte, cfg, seed, name=f"{a}+{b} aligned",
                               device=device))
    return rows
