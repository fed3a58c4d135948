"""Penn Action annotations (``labels/0001.mat`` .. ``2326.mat``): 2D, 13 joints, 15 classes.

Each MAT-file holds ``x``, ``y`` ``(nframes, 13)`` pixel coordinates, ``visibility``
``(nframes, 13)`` 0/1, ``action`` (class name), ``pose`` (view: front/back/left/right),
``train`` (1 train, -1 test: the official split), ``dimensions`` ``[H, W, nframes]`` and
``nframes`` (``bbox`` is not used: two official files have one row too few). Joint order
(the ``penn13`` layout): head, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle.

Clips are ``(3, T, 13, M)``: x and y normalised by the larger image side and centred on the
image, ``(x - W/2) / max(H, W)`` (image y still points down), then the visibility as a
confidence channel. Occluded joints keep their annotated (estimated) position with confidence 0.
W. Zhang, M. Zhu, K. Derpanis, "From Actemes to Action", ICCV 2013.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source
from .clips import ClipSource, Item, RawClip, find_named_files, one_person
from .matlab import mat_array, mat_scalar, mat_string, read_mat_v5

PENN_CLASS_NAMES = ("baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing",
                    "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar",
                    "tennis_forehand", "tennis_serve")
PENN_VIEWS = ("front", "back", "left", "right")
PENN_META_KEYS = ("train", "view", "height", "width", "length")
_NAME = re.compile(r"^(\d{4})$")


def read_penn_action(source: Source, *, name: Optional[str] = None) -> Dict[str, Any]:
    """Read one Penn Action annotation file.

    Returns:
        ``{"joints": (T, 13, 3) float64 (normalised x, y, visibility), "label": 0-based class,
        "train": bool, "view": index into PENN_VIEWS, "height": H, "width": W}``.

    Raises:
        DataFormatError: a missing or malformed variable, an unknown action or view, frame counts
            that disagree between ``x``, ``y``, ``visibility`` and ``nframes``, visibility not 0/1.
    """
    mats = read_mat_v5(source, name=name)
    path = name or str(source)
    x = mat_array(mats, "x", path, ndim=2, shape=(None, 13))
    y = mat_array(mats, "y", path, ndim=2, shape=x.shape)
    vis = mat_array(mats, "visibility", path, ndim=2, shape=x.shape)
    nframes = int(mat_scalar(mats, "nframes", path))
    if nframes != x.shape[0]:
        raise DataFormatError(f"nframes is {nframes} but x has {x.shape[0]} rows", path)
    if x.shape[0] == 0:
        raise EmptySequenceError("no frames", path)
    if not np.isin(vis, (0, 1)).all():
        raise DataFormatError("visibility must be 0 or 1", path)
    action = mat_string(mats, "action", path)
    if action not in PENN_CLASS_NAMES:
        raise DataFormatError(f"action {action!r} is not one of the 15 Penn Action classes", path)
    view = mat_string(mats, "pose", path)
    if view not in PENN_VIEWS:
        raise DataFormatError(f"pose {view!r} is not one of {', '.join(PENN_VIEWS)}", path)
    train = int(mat_scalar(mats, "train", path))
    if train not in (1, -1):
        raise DataFormatError(f"train must be 1 or -1, got {train}", path)
    dims = mat_array(mats, "dimensions", path).reshape(-1)
    if dims.size != 3 or dims[0] < 1 or dims[1] < 1:
        raise DataFormatError(f"dimensions must be [H W nframes], got {dims.tolist()}", path)
    H, W = int(dims[0]), int(dims[1])
    s = float(max(H, W))
    joints = np.stack([(x - W / 2) / s, (y - H / 2) / s, vis], axis=-1)
    return {"joints": joints, "label": PENN_CLASS_NAMES.index(action), "train": train == 1,
            "view": PENN_VIEWS.index(view), "height": H, "width": W}


def _list_items(raw: Path, skipped: List[Dict[str, str]]) -> List[Item]:
    return [(p, stem) for p, stem, m in find_named_files(raw, ".mat", _NAME, skipped)]


def _read_item(item: Item, max_persons: int) -> Tuple[List[RawClip], List[Dict[str, Any]]]:
    path, stem = item[0], item[1]
    r = read_penn_action(path)
    meta = {"train": int(r["train"]), "view": r["view"], "height": r["height"], "width": r["width"],
            "length": r["joints"].shape[0]}
    return [RawClip(one_person(r["joints"], max_persons), r["label"], meta, stem, path)], []


def penn_train_mask(benchmark: str, meta: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``"official"``: the files' own ``train`` flag (1,258 train / 1,068 test)."""
    if benchmark != "official":
        raise ValueError(f"Penn Action has no benchmark {benchmark!r}; known: official")
    return np.asarray(meta["train"]) == 1, {"rule": "the train flag of each annotation file (1 train, -1 test)"}


SOURCE = ClipSource(PENN_CLASS_NAMES, PENN_META_KEYS, _list_items, _read_item, penn_train_mask, ("official",))
