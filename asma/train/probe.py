"""Linear evaluation on frozen encoders: per-encoder probes, the averaging baseline and the
feature alignment module (the rows of the paper's Table 3)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..losses import accuracy_topk
from ..models.alignment import FeatureAlignment
from ..models.classifiers import FeatureStandardizer
from ..models.heads import LinearClassifier
from ..models.registry import Backbone
from .config import ProbeConfig
from .engine import Device, device_for, make_progress
from .loop import BatchIndex, fit
from .optim import adam


@torch.no_grad()
def extract_tokens(encoder: Backbone, arrays: SkeletonArrays, stream: str = "joint",
                   batch_size: int = 256, device: Device = None, *, console: Optional[Console] = None,
                   progress: bool = False, name: str = "features") -> Tensor:
    """Frozen per-frame tokens of every clip (eval mode, no augmentation), with a progress bar
    when ``progress``.

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
    with make_progress(console, progress) as bar:
        task = bar.add_task(name, total=len(arrays), loss="", rate="-")
        t0 = time.perf_counter()
        for i in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.array(arrays.data[i:i + batch_size], dtype=np.float32))  # memmaps are read-only
            x = to_stream(x, stream, skel, arrays.num_coords).to(device, non_blocking=True)
            out.append(encoder(x)[1].cpu())
            done = min(i + batch_size, len(arrays))
            bar.update(task, completed=done, rate=f"{done / (time.perf_counter() - t0):.0f}")
    encoder.train(was)
    return torch.cat(out)


def standardize_tokens(train: Tensor, test: Tensor, eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Standardise every feature dimension with the training set's mean and std
    (:func:`~asma.models.classifiers.feature_stats`; a non-affine BatchNorm before the probe, as
    MAE does): an affine change the linear head could represent anyway, but it makes the probe's
    optimisation independent of each encoder's feature scale.

    Shapes:
        - **train**: :math:`(N, T', D)`, **test**: :math:`(N', T', D)` -> same
    """
    norm = FeatureStandardizer(train.shape[-1]).fit(train, eps)
    with torch.no_grad():
        return norm(train), norm(test)


@dataclass
class ProbeResult:
    """One result row: test top-1/top-5 (percent) and the test logits :math:`(N', K)` (CPU;
    left out of the ``repr``)."""

    name: str
    top1: float
    top5: float
    logits: Optional[Tensor] = field(default=None, repr=False)

    def as_dict(self) -> Dict[str, float]:
        return {"name": self.name, "top1": round(self.top1, 2), "top5": round(self.top5, 2)}


def train_head(head: nn.Module, forward: Callable[[nn.Module, Tuple[Tensor, ...]], Tensor],
               train_inputs: Sequence[Tensor], train_labels: Tensor, test_inputs: Sequence[Tensor],
               test_labels: Tensor, cfg: ProbeConfig, seed: int = 0, name: str = "probe",
               device: Device = None, *, console: Optional[Console] = None, progress: bool = False) -> ProbeResult:
    """Train ``head`` on precomputed features with the training engine (:func:`~asma.train.loop.fit`:
    Adam, cosine schedule, every process training the same head) and report test top-1/top-5 of
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
    opt = adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    crit = nn.CrossEntropyLoss()

    def batch_loss(net: nn.Module, batch: BatchIndex, g: torch.Generator):
        x = tuple(t[batch.idx].to(device, non_blocking=True) for t in train_inputs)
        return crit(forward(net, x), train_labels[batch.idx].to(device, non_blocking=True)), {}

    fit(head, opt, batch_loss, train_labels.shape[0], cfg.batch_size, cfg.epochs, distributed=False, seed=seed,
        stage=name, rng_stream=17, console=console, progress=progress, device=device)
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
                      random_encoders: Sequence[Backbone] = (), console: Optional[Console] = None,
                      device: Device = None, progress: bool = False) -> List[ProbeResult]:
    """Probe frozen encoders. Rows: ``random-init probe`` (the first of ``random_encoders``, if
    given), ``random-init aligned`` (the two ``random_encoders`` under the same alignment head and
    probe: the baseline of ``aligned``; when two are given and two encoders are probed), one
    linear probe per encoder, ``average`` (mean of the two pooled features, no alignment) and
    ``aligned`` (Eqs. 10-12).

    Args:
        encoders: name -> pretrained encoder (e.g. ``{"theta": ..., "phi": ...}``).
        random_encoders: up to two untrained encoders of the same architecture.
        device: where the encoders and heads run (default: where the first encoder is); the
            encoders are moved there. Features and the rows' logits stay on the CPU.
        progress: progress bars (on ``console``) for every feature extraction and probe.

    Shapes:
        - clips :math:`(N, C, T, V, M)`; each row's ``logits``: :math:`(N_{test}, K)`
    """
    if len(random_encoders) > 2:
        raise ValueError(f"linear_evaluation takes at most 2 random encoders (a pair), got {len(random_encoders)}")
    baselines = dict(zip(("random-init", "random-init 2"), random_encoders))
    first = next(iter({**baselines, **encoders}.values()), None)
    device = device_for(first, device)
    k = train.num_classes
    show = dict(console=console, progress=progress)
    labels = (torch.as_tensor(train.labels), torch.as_tensor(test.labels))
    feats = {name: standardize_tokens(*(extract_tokens(enc, a, stream, device=device, name=f"{name}: {split} features",
                                                       **show) for a, split in ((train, "train"), (test, "test"))))
             for name, enc in {**baselines, **encoders}.items()}

    def probe(head: Callable[[], nn.Module], forward, names: Sequence[str], row: str) -> ProbeResult:
        torch.manual_seed(seed)  # the same head initialisation for every row
        return train_head(head(), forward, [feats[n][0] for n in names], labels[0], [feats[n][1] for n in names],
                          labels[1], cfg, seed, name=row, device=device, **show)

    def aligned(a: str, b: str, dim: int, row: str) -> ProbeResult:
        return probe(lambda: FeatureAlignment(dim, k, num_heads=cfg.heads), _align, [a, b], row)

    rows: List[ProbeResult] = []
    if baselines:
        dim = random_encoders[0].out_dim
        rows.append(probe(lambda: LinearClassifier(dim, k), _linear, ["random-init"], "random-init probe"))
        if len(baselines) == 2 and len(encoders) == 2:
            rows.append(aligned("random-init", "random-init 2", dim, "random-init aligned"))
    for name, enc in encoders.items():
        rows.append(probe(lambda: LinearClassifier(enc.out_dim, k), _linear, [name], f"{name} probe"))
    if len(encoders) == 2:
        a, b = list(encoders)
        dim = encoders[a].out_dim
        rows.append(probe(lambda: LinearClassifier(dim, k), _average, [a, b], f"{a}+{b} average"))
        rows.append(aligned(a, b, dim, f"{a}+{b} aligned"))
    return rows
