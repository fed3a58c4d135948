"""What every figure shares: matplotlib without a display, atomic PNG/CSV/JSON output, the
result record, and drawing a skeleton."""
from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np

from ..io import atomic_write_json, atomic_write_text



def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises:
        ImportError: with the install command when matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("asma plot needs matplotlib and scikit-learn: pip install 'asma[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


@dataclass
class PlotResult:
    """A written figure: the PNG, the files with the data behind it, and that data.

    Attributes:
        png: the image.
        files: kind -> path of every data file (``"csv"``, ``"json"``).
        data: the JSON-able numbers the figure shows.
    """

    png: Path
    files: Dict[str, Path] = field(default_factory=dict)
    data: Dict[str, Any] = field(default_factory=dict)


def save_png(fig, path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file + ``os.replace``) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        pyplot().close(fig)
    return path


def write_csv(path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table atomically; floats keep 6 significant digits."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    for row in rows:
        w.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def png_path(out) -> Path:
    """``out`` as a Path, refused (before any work) unless it names a ``.png`` file."""
    png = Path(out)
    if png.suffix.lower() != ".png":
        raise ValueError(f"the output must be a .png file, got {png}")
    return png


def finish(fig, png, data: Dict[str, Any], csv_table: Optional[tuple] = None) -> PlotResult:
    """Write the PNG, ``<stem>.json`` (``data``) and, given ``(header, rows)``, ``<stem>.csv``."""
    png = png_path(png)
    files = {"json": png.with_suffix(".json")}
    atomic_write_json(files["json"], data)
    if csv_table is not None:
        files["csv"] = write_csv(png.with_suffix(".csv"), *csv_table)
    return PlotResult(save_png(fig, png), files, data)


def undirected_edges(skeleton) -> np.ndarray:
    """Bones of a :class:`~asma.graph.Skeleton` once each, :math:`(E, 2)` joint indices."""
    ei = skeleton.edge_index.numpy()
    return ei[:, ei[0] < ei[1]].T


def draw_skeleton(ax, xy: np.ndarray, skeleton, colors=None, size: float = 40.0, bone_color: str = "0.6",
                  highlight: Optional[np.ndarray] = None, labels: bool = False, image_y: bool = False) -> None:
    """Draw one pose: bones as lines, joints as dots (``colors`` per joint), joints in
    ``highlight`` (bool ``(V,)``) as large red crosses, optionally 1-based joint numbers;
    ``image_y`` for 2D image coordinates (y pointing down).

    Shapes:
        - **xy**: :math:`(V, 2)` image-plane coordinates (x right, y up)
    """
    for a, b in undirected_edges(skeleton):
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=bone_color, lw=1.5, zorder=1)
    ax.scatter(xy[:, 0], xy[:, 1], c="0.3" if colors is None else colors, s=size, zorder=2,
               edgecolors="k", linewidths=0.4)
    if highlight is not None and highlight.any():
        ax.scatter(xy[highlight, 0], xy[highlight, 1], marker="X", c="red", s=size * 2.5, zorder=3,
                   edgecolors="k", linewidths=0.6)
    if labels:
        for v, (x, y) in enumerate(xy):
            ax.annotate(str(v + 1), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if image_y:
        ax.invert_yaxis()


def front_direction(clip: np.ndarray, num_coords: int = 3) -> np.ndarray:
    """The horizontal direction in which a clip's skeleton is widest: the principal axis of its
    joints' (x, z) positions around each frame's mean (the shoulder/hip line of a person seen
    from any side), so that :func:`pose_xy` draws a front view. ``(1, 0)`` for 2D clips
    (``num_coords=2``: a third channel is a confidence, not z).

    Shapes:
        - **clip**: :math:`(C, T, V, M)` -> **output**: :math:`(2,)` unit vector over (x, z)
    """
    if num_coords < 3 or clip.shape[0] < 3:
        return np.array([1.0, 0.0])
    xz = np.asarray(clip[[0, 2], :, :, 0], dtype=np.float64)          # (2, T, V)
    present = np.abs(clip[:3, :, :, 0]).sum(axis=(0, 2)) > 0
    if not present.any():
        return np.array([1.0, 0.0])
    pts = xz[:, present] - xz[:, present].mean(axis=2, keepdims=True)  # (2, T', V)
    _, vecs = np.linalg.eigh(pts.reshape(2, -1) @ pts.reshape(2, -1).T)
    u = vecs[:, -1]
    return u if u[0] >= 0 else -u  # keep +x to the right when the clip already faces the camera


def pose_xy(clip: np.ndarray, frame: int, person: int = 0, direction: Optional[np.ndarray] = None) -> np.ndarray:
    """One frame of a clip in the image plane: horizontal = the (x, z) position along
    ``direction`` (default: x, the front view of a Kinect/NTU recording), vertical = y.

    Shapes:
        - **clip**: :math:`(C, T, V, M)` -> **output**: :math:`(V, 2)`
    """
    y = np.asarray(clip[1, frame, :, person], dtype=np.float64)
    if direction is None or clip.shape[0] < 3:
        h = np.asarray(clip[0, frame, :, person], dtype=np.float64)
    else:
        h = direction[0] * clip[0, frame, :, person] + direction[1] * clip[2, frame, :, person]
    return np.stack([h, y], axis=1)


def join_splits(train, test):
    """Every clip of a dataset: the train then the test clips of two
    :class:`~asma.data.arrays.SkeletonArrays` of one dataset (loaded into memory)."""
    from ..data.arrays import SkeletonArrays
    if train.shape[1:] != test.shape[1:] or list(train.class_names) != list(test.class_names):
        raise ValueError(f"{train.source} and {test.source}: the splits differ in clip shape or classes")
    names = (list(train.names) + list(test.names)) if train.names is not None and test.names is not None else None
    return SkeletonArrays(data=np.concatenate([np.asarray(train.data), np.asarray(test.data)]),
                          labels=np.concatenate([train.labels, test.labels]), layout=train.layout,
                          class_names=list(train.class_names), names=names, source=train.source,
                          coord_channels=train.coord_channels)
