"""Evaluation of a trained classifier: top-1/top-5, per-class accuracy, confusion matrix, result
files, and the weighted multi-stream ("3s") ensemble."""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..data.arrays import SkeletonArrays
from ..data.streams import to_stream
from ..io import atomic_write_json, atomic_write_text, load_tensors, save_tensors
from ..losses import accuracy_topk
from .engine import Device, device_for
from .probe import ProbeResult

#: AimCLR's ensemble weights on the per-stream logits (``ensemble.py`` of AimCLR/CrossCLR).
AIMCLR_WEIGHTS: Dict[str, float] = {"joint": 0.6, "bone": 0.6, "motion": 0.4}


@dataclass
class EvalResult:
    """Scores of one model on one labelled set.

    Attributes:
        top1, top5: accuracies in percent (top-5 counts all classes when there are fewer than 5).
        mean_class: mean of the per-class accuracies over the classes present in the set.
        per_class: :math:`(K,)` list, accuracy in percent of each class, ``None`` for a class with
            no clip in the set.
        confusion: :math:`(K, K)` int64, ``confusion[i, j]`` = clips of true class ``i``
            predicted as ``j`` (rows sum to the class counts, the whole matrix to :math:`N`).
        logits: :math:`(N, K)` float, labels: :math:`(N,)` int64.
        class_names: :math:`K` names.
    """

    top1: float
    top5: float
    mean_class: float
    per_class: List[Optional[float]]
    confusion: Tensor
    logits: Tensor
    labels: Tensor
    class_names: List[str] = field(default_factory=list)
    name: str = "eval"

    @property
    def num_clips(self) -> int:
        return int(self.labels.shape[0])

    def as_dict(self) -> Dict[str, object]:
        """JSON-able summary (everything but the logits)."""
        return {"name": self.name, "top1": round(self.top1, 4), "top5": round(self.top5, 4),
                "mean_class": round(self.mean_class, 4), "num_clips": self.num_clips,
                "num_classes": len(self.class_names),
                "per_class": {n: (None if a is None else round(a, 4))
                              for n, a in zip(self.class_names, self.per_class)},
                "class_counts": {n: int(c) for n, c in zip(self.class_names, self.confusion.sum(1).tolist())},
                "confusion": self.confusion.tolist()}

    def to_probe_result(self, name: Optional[str] = None) -> ProbeResult:
        """The :class:`~asma.train.probe.ProbeResult` row (name, top-1, top-5, logits)."""
        return ProbeResult(name or self.name, self.top1, self.top5, self.logits)


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Counts of (true, predicted) pairs.

    Shapes:
        - **pred**, **target**: :math:`(N,)` int -> **output**: :math:`(K, K)` int64, rows = true class
    """
    pred, target = pred.long().reshape(-1), target.long().reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"{pred.shape[0]} predictions for {target.shape[0]} labels")
    if len(target) and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                         f"[{int(target.min())}, {int(target.max())}]")
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: Tensor) -> List[Optional[float]]:
    """Recall of each class in percent (diagonal / row sum), ``None`` for empty rows.

    Shapes:
        - **confusion**: :math:`(K, K)` -> list of :math:`K`
    """
    rows = confusion.sum(1)
    diag = torch.diagonal(confusion)
    return [None if int(r) == 0 else 100.0 * float(d) / float(r) for d, r in zip(diag.tolist(), rows.tolist())]


def evaluate_logits(logits: Tensor, labels: Union[Tensor, np.ndarray], class_names: Optional[List[str]] = None,
                    name: str = "eval") -> EvalResult:
    """Score precomputed logits (e.g. fused by :func:`fuse_streams`).

    Shapes:
        - **logits**: :math:`(N, K)`, **labels**: :math:`(N,)`
    """
    logits = logits.detach().float().cpu()
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits {tuple(logits.shape)} do not match {labels.shape[0]} labels "
                         "(expected (N, K))")
    k = logits.shape[1]
    names = list(class_names) if class_names is not None and len(class_names) == k else [f"class_{i}" for i in range(k)]
    conf = confusion_matrix(logits.argmax(1), labels, k)
    per = per_class_accuracy(conf)
    present = [a for a in per if a is not None]
    top1, top5 = accuracy_topk(logits, labels)
    return EvalResult(top1, top5, float(np.mean(present)) if present else 0.0, per, conf, logits, labels,
                      names, name)


@torch.no_grad()
def predict_logits(model_fn: Callable[[Tensor], Tensor], arrays: SkeletonArrays, stream: str = "joint",
                   batch_size: int = 256, device: Device = None) -> Tensor:
    """Logits of every clip, in order, without augmentation. ``nn.Module`` models are run in eval
    mode (and put back in their previous mode afterwards).

    Args:
        model_fn: maps a clip batch of the given stream to logits.
        device: where the batches go (default: where ``model_fn``'s parameters are, CPU for a
            plain callable); an ``nn.Module`` is moved there and stays. The logits are returned
            on the CPU.

    Shapes:
        - **model_fn**: :math:`(B, C, T, V, M) \\to (B, K)`
        - **output**: :math:`(N, K)`
    """
    device = device_for(model_fn, device)
    was = model_fn.training if isinstance(model_fn, nn.Module) else None
    if isinstance(model_fn, nn.Module):
        model_fn.to(device).eval()
    skel, out = arrays.skeleton, []
    try:
        for i in range(0, len(arrays), batch_size):
            # np.array copies: a memmapped store is read-only
            x = torch.from_numpy(np.array(arrays.data[i:i + batch_size], dtype=np.float32))
            y = model_fn(to_stream(x, stream, skel, arrays.num_coords).to(device, non_blocking=True))
            if isinstance(y, tuple):
                raise ValueError("model_fn returned a tuple; pass a classifier (clips -> logits), "
                                 "not a bare backbone")
            out.append(y.float().cpu())
    finally:
        if was is not None:
            model_fn.train(was)
    if not out:
        raise ValueError(f"{arrays.source}: no clips to evaluate")
    return torch.cat(out)


def evaluate(model_fn: Callable[[Tensor], Tensor], arrays: SkeletonArrays, stream: str = "joint",
             batch_size: int = 256, name: str = "eval", device: Device = None) -> EvalResult:
    """Top-1, top-5, per-class accuracy and confusion matrix of a classifier on ``arrays``.

    Args:
        model_fn: clips of ``stream`` -> logits (a module is evaluated in eval mode).
        arrays: labelled clips (joint coordinates; converted to ``stream`` here).
        device: as :func:`predict_logits` (default: where the model is); results are on the CPU.

    Shapes:
        - **model_fn**: :math:`(B, C, T, V, M) \\to (B, K)`
        - result: ``confusion`` :math:`(K, K)`, ``logits`` :math:`(N, K)`
    """
    logits = predict_logits(model_fn, arrays, stream, batch_size, device)
    return evaluate_logits(logits, arrays.labels, arrays.class_names, name)


def _stem(path: Path) -> Path:
    return path.with_suffix("") if path.suffix == ".json" else path


def write_eval(result: EvalResult, path: Union[str, Path], save_logits: bool = True) -> Dict[str, Path]:
    """Write ``path`` (JSON summary, ``.json`` appended if missing), ``<stem>_confusion.csv``
    (header ``true\\pred`` then the class names; one row per true class) and, with
    ``save_logits``, ``<stem>_logits.safetensors`` (``logits`` :math:`(N, K)`, ``labels``
    :math:`(N,)`, for later ensembles with :func:`read_logits` / :func:`fuse_streams`).
    Every file is written atomically. Returns the written paths by kind."""
    stem = _stem(Path(path))
    json_path = stem.with_name(stem.name + ".json")
    csv_path = stem.with_name(stem.name + "_confusion.csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true\\pred", *result.class_names])
    for name, row in zip(result.class_names, result.confusion.tolist()):
        w.writerow([name, *row])
    atomic_write_text(csv_path, buf.getvalue())
    out = {"json": json_path, "confusion": csv_path}
    if save_logits:
        lp = stem.with_name(stem.name + "_logits.safetensors")
        save_tensors(lp, {"logits": result.logits.float(), "labels": result.labels.long()})
        out["logits"] = lp
    atomic_write_json(json_path, result.as_dict())
    return out


def read_logits(path: Union[str, Path]) -> Tuple[Tensor, Tensor]:
    """Read ``(logits (N, K), labels (N,))`` written by :func:`write_eval` (give the
    ``_logits.safetensors`` file or the JSON path / stem it was written with)."""
    p = Path(path)
    if not p.name.endswith("_logits.safetensors"):
        stem = _stem(p)
        p = stem.with_name(stem.name + "_logits.safetensors")
    t = load_tensors(p)
    return t["logits"], t["labels"]


def fuse_streams(logits_by_stream: Mapping[str, Tensor], weights: Optional[Mapping[str, float]] = None,
                 mode: str = "logits") -> Tensor:
    r"""Weighted multi-stream ensemble (the "3s" rows):

    .. math::
        z = \sum_s w_s\, z_s \quad (\text{mode}=\text{"logits"}), \qquad
        p = \sum_s w_s\, \mathrm{softmax}(z_s) \quad (\text{mode}=\text{"softmax"})

    The default is AimCLR's convention: a weighted sum of the **raw logits** with
    :data:`AIMCLR_WEIGHTS` (joint 0.6, bone 0.6, motion 0.4). ``mode="softmax"`` sums
    probabilities instead (insensitive to each stream's logit scale). The argmax, hence top-1, is
    what matters; the output is not renormalised.

    Args:
        logits_by_stream: stream name -> logits, all of the same shape and clip order.
        weights: stream name -> weight; default :data:`AIMCLR_WEIGHTS`. Every stream needs one.

    Shapes:
        - each value: :math:`(N, K)` -> **output**: :math:`(N, K)`
    """
    if not logits_by_stream:
        raise ValueError("fuse_streams needs at least one stream")
    if mode not in ("logits", "softmax"):
        raise ValueError(f"unknown fusion mode {mode!r}; use 'logits' or 'softmax'")
    weights = dict(AIMCLR_WEIGHTS if weights is None else weights)
    missing = [s for s in logits_by_stream if s not in weights]
    if missing:
        raise ValueError(f"no fusion weight for stream(s) {missing}; weights given for {sorted(weights)}")
    shapes = {s: tuple(z.shape) for s, z in logits_by_stream.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"per-stream logits must have the same (N, K) shape, got {shapes}")
    out = None
    for s, z in logits_by_stream.items():
        w = float(weights[s])
        if not math.isfinite(w):
            raise ValueError(f"fusion weight of {s!r} is {w}")
        z = z.float()
        term = w * (torch.softmax(z, dim=1) if mode == "softmax" else z)
        out = term if out is None else out + term
    return out


__all__ = ["EvalResult", "AIMCLR_WEIGHTS", "confusion_matrix", "per_class_accuracy", "evaluate_logits",
           "predict_logits", "evaluate", "write_eval", "read_logits", "fuse_streams"]
