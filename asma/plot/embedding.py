"""Figs. 5 and 7: t-SNE of a model's clip embeddings, coloured by class."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..data.arrays import SkeletonArrays
from .common import PlotResult, finish, png_path, pyplot

#: What a run directory can embed besides its pretrained encoders: a distilled student (its
#: folder) or the aligned feature of a teacher.
STUDENTS = {"student": "distill", "student-ft": "distill-ft"}
TEACHERS = ("teacher", "teacher-ft")


@torch.no_grad()
def embed(encoder: Callable[[Tensor], object], arrays: SkeletonArrays, stream: str = "joint",
          batch_size: int = 256) -> np.ndarray:
    """Pooled embedding of every clip (eval mode, no augmentation): the first output of a
    backbone (``(pooled, tokens)``) or the output of any clips -> features callable.

    Shapes:
        - **encoder**: :math:`(B, C, T, V, M) \\to (B, D)` or ``((B, D), (B, T', D))``
        - **output**: :math:`(N, D)` float32
    """
    from ..data.streams import to_stream
    was = getattr(encoder, "training", None)
    if isinstance(encoder, torch.nn.Module):
        encoder.eval()
    out = []
    try:
        for i in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.array(arrays.data[i:i + batch_size], dtype=np.float32))  # memmaps are read-only
            y = encoder(to_stream(x, stream, arrays.skeleton, arrays.num_coords))
            out.append((y[0] if isinstance(y, tuple) else y).float().cpu())
    finally:
        if was is not None:
            encoder.train(was)
    if not out:
        raise ValueError(f"{arrays.source}: no clips to embed")
    return torch.cat(out).numpy()


def run_encoder(run_dir, model: str = "theta"):
    """What to embed a run's test clips with, the test split and the stream: a pretrained encoder
    by name (``theta``, ``phi``), the distilled ``student`` / ``student-ft``, or the aligned
    feature of the ``teacher`` (linear-probed, re-fitted as for distillation) / ``teacher-ft``
    (fine-tuned) before its classifier (Fig. 5's four panels).

    Returns:
        ``(encoder, test arrays, stream)``; ``encoder`` maps clips to :math:`(B, D)` (or to a
        backbone's ``(pooled, tokens)``).

    Raises:
        ValueError: for a name the run does not have (names the ones it has).
    """
    from ..train.downstream import finetuned_teacher, load_student, make_teacher
    from ..train.rundir import open_run
    ctx = open_run(run_dir)
    if model in STUDENTS:
        return load_student(run_dir, STUDENTS[model]).encoder, ctx.test, ctx.stream
    if model in TEACHERS:
        teacher = make_teacher(ctx, "linear")[0] if model == "teacher" else finetuned_teacher(ctx)
        return teacher.cpu().eval().features, ctx.test, ctx.stream
    if model not in ctx.encoders:
        raise ValueError(f"{run_dir} has no model {model!r}; choose one of "
                         f"{', '.join(list(ctx.encoders) + list(STUDENTS) + list(TEACHERS))}")
    return ctx.encoders[model], ctx.test, ctx.stream


def pick_classes(labels: np.ndarray, num_classes: Optional[int], seed: int = 0) -> List[int]:
    """``num_classes`` classes drawn at random (sorted; all present classes when ``None`` or
    when there are not more), as the paper's figures show 9 or 10 random classes."""
    present = sorted(set(np.asarray(labels).tolist()))
    if num_classes is None or num_classes >= len(present):
        return present
    if num_classes < 1:
        raise ValueError(f"--classes must be at least 1, got {num_classes}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(present, size=num_classes, replace=False).tolist())


def tsne_points(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-d t-SNE (scikit-learn, PCA initialisation) of standardised features; the perplexity
    is capped below the number of points as scikit-learn requires.

    Shapes:
        - **features**: :math:`(N, D)`, :math:`N \\geq 3` -> **output**: :math:`(N, 2)`
    """
    from sklearn.manifold import TSNE
    n = features.shape[0]
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 clips, got {n}")
    f = (features - features.mean(0)) / (features.std(0) + 1e-6)
    return TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca",
                random_state=seed).fit_transform(f)


def tsne_data(encoder, arrays: SkeletonArrays, stream: str = "joint", num_classes: Optional[int] = None,
              seed: int = 0, perplexity: float = 30.0) -> Tuple[Dict, np.ndarray]:
    """The clips of the chosen classes, their embeddings' t-SNE points and labels.

    Returns:
        ``(data, features)``: ``data`` has ``clips`` (indices into ``arrays``), ``labels``,
        ``class_names``, ``classes`` (the chosen ones), ``points`` :math:`(n, 2)`, ``seed``,
        ``perplexity``; ``features`` is :math:`(n, D)`.
    """
    classes = pick_classes(arrays.labels, num_classes, seed)
    idx = np.flatnonzero(np.isin(arrays.labels, classes))
    sub = arrays.subset(idx)
    feats = embed(encoder, sub, stream)
    pts = tsne_points(feats, seed, perplexity)
    return {"clips": idx.tolist(), "labels": sub.labels.tolist(), "class_names": list(arrays.class_names),
            "classes": classes, "points": pts.tolist(), "seed": seed,
            "perplexity": min(perplexity, (len(idx) - 1) / 3)}, feats


def plot_tsne(encoder, arrays: SkeletonArrays, out, stream: str = "joint", num_classes: Optional[int] = None,
              seed: int = 0, perplexity: float = 30.0, title: Optional[str] = None) -> PlotResult:
    """Scatter of :func:`tsne_data` coloured by class (``title`` gets the clip and class counts
    appended). Writes ``out``, ``<stem>.csv`` (clip, label, class, x, y) and ``<stem>.json``."""
    png_path(out)
    plt = pyplot()
    d, _ = tsne_data(encoder, arrays, stream, num_classes, seed, perplexity)
    pts, labels = np.array(d["points"]), np.array(d["labels"])
    cmap = plt.get_cmap("tab10" if len(d["classes"]) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    for i, k in enumerate(d["classes"]):
        sel = labels == k
        ax.scatter(pts[sel, 0], pts[sel, 1], s=14, color=cmap(i % cmap.N), label=d["class_names"][k],
                   edgecolors="none", alpha=0.85)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False, markerscale=1.5)
    what = f"{len(labels)} clips, {len(d['classes'])} classes"
    ax.set_title(f"{title}\n({what})" if title else f"t-SNE of {what}", fontsize=10)
    table = [[c, arrays.names[c] if arrays.names else str(c), int(lab), d["class_names"][lab], float(x), float(y)]
             for c, lab, (x, y) in zip(d["clips"], labels, pts)]
    return finish(fig, out, d, (["clip", "name", "label", "class", "x", "y"], table))
