"""Reading clips for inference: any skeleton file asma reads, or ``.npy`` clips, checked against
a model's config (numpy only; torch is not imported).

:func:`read_clips` picks the reader from the file (extension, then content for ``.txt`` and
``.json``) and returns raw :class:`Clip` s; :func:`fit_clip` refuses a clip whose layout, joints
or channels differ from what the model was built for (naming both sides) and pads or cuts the
person slots to the model's.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Optional, Union

import numpy as np

from asma.data.errors import DataFormatError

PathLike = Union[str, "os.PathLike[str]"]
#: ``--format`` values; ``None`` = from the file.
FORMATS = ("ntu", "kinect", "utd-mhad", "kinetics", "openpose", "coco", "mediapipe", "npy")


@dataclass
class Clip:
    """One raw clip as read from a file.

    Attributes:
        data: ``(C, F, V, M)`` float32, not normalised (frames as recorded).
        layout: the reader's layout name (``ntu25``, ``kinect20``, ``openpose18``, ``coco17``,
            ``mediapipe33``), ``None`` for ``.npy`` clips.
        num_coords: leading coordinate channels (the rest is confidence), ``None`` when unknown.
        source: file name (with ``[i]`` for the i-th clip of a ``.npy`` batch).
    """

    data: np.ndarray
    layout: Optional[str]
    num_coords: Optional[int]
    source: str

    def describe(self) -> str:
        """E.g. ``"layout 'coco17' (17 joints), 3 channels (2 coordinates + confidence)"``."""
        c, _, v, _ = self.data.shape
        what = f"layout {self.layout!r} ({v} joints)" if self.layout else f"{v} joints"
        if self.num_coords is not None and self.num_coords < c:
            return f"{what}, {c} channels ({self.num_coords} coordinates + confidence)"
        return f"{what}, {c} channels"


def _persons(x: np.ndarray, m: int) -> np.ndarray:
    """Pad with empty person slots or keep the first ``m``: ``(C, F, V, M') -> (C, F, V, m)``."""
    if x.shape[3] >= m:
        return np.ascontiguousarray(x[..., :m])
    return np.concatenate([x, np.zeros(x.shape[:3] + (m - x.shape[3],), np.float32)], axis=3)


def _one_person(joints: np.ndarray) -> np.ndarray:
    """``(F, V, C)`` joints of one person -> ``(C, F, V, 1)`` float32."""
    return np.asarray(joints, np.float32).transpose(2, 0, 1)[..., None].copy()


def _sniff(path: str) -> str:
    if os.path.isdir(path):
        return "openpose"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".skeleton":
        return "ntu"
    if ext == ".npy":
        return "npy"
    if ext == ".mat" or path.lower().endswith("_skeleton.csv"):
        return "utd-mhad"
    if ext == ".txt":
        return "kinect"
    if ext == ".json":
        from asma.data.readers.pose_json import guess_pose_format
        return guess_pose_format(path)
    raise DataFormatError(f"unknown skeleton file type {ext or '(none)'!r}: expected .skeleton (NTU), .txt "
                          "(Kinect v1: UTKinect / MSR), .mat (UTD-MHAD), .json (Kinetics, OpenPose, COCO, "
                          "MediaPipe), an OpenPose folder or a .npy clip", path)


def _kinect_text(path: str) -> np.ndarray:
    """UTKinect ``joints_*.txt`` (frame number + 60 values per line) or MSR Action3D / Daily text."""
    from asma.data.readers import read_msr_skeleton, read_utkinect_joints
    with open(path, "rb") as f:
        first = next((line for line in f if line.strip()), b"")
    if len(first.split()) == 61:
        return _one_person(read_utkinect_joints(path)[1])
    return _one_person(read_msr_skeleton(path)[..., :3])  # x, y, z (the 4th column is a confidence)


def _npy(path: str) -> List[Clip]:
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise DataFormatError(f"not a plain numeric .npy array ({e})", path) from None
    if a.dtype.kind not in "fiu" or a.ndim not in (4, 5):
        raise DataFormatError(f"expected a clip (C, T, V, M) or a batch (N, C, T, V, M) of numbers, got "
                              f"{a.dtype} array of shape {a.shape}", path)
    if not np.isfinite(a).all():
        raise DataFormatError("the clip holds NaN or infinite values", path)
    a = a.astype(np.float32)
    if a.ndim == 4:
        return [Clip(a, None, None, path)]
    return [Clip(x, None, None, f"{path}[{i}]") for i, x in enumerate(a)]


def read_clips(path: PathLike, *, fmt: Optional[str] = None, num_persons: int = 2,
               with_z: bool = False) -> List[Clip]:
    """Read the raw clip(s) of one input.

    Args:
        path: an NTU ``.skeleton``, Kinect v1 text (UTKinect ``joints_*.txt``, MSR Action3D /
            DailyActivity3D), UTD-MHAD ``.mat``, Kinetics-skeleton / OpenPose / COCO keypoint /
            MediaPipe landmark JSON, a folder of OpenPose ``*_keypoints.json`` frames, or a
            ``.npy`` clip ``(C, T, V, M)`` / batch ``(N, C, T, V, M)`` (never unpickled).
        fmt: one of :data:`FORMATS` to skip the detection.
        num_persons: person slots kept from multi-person files (NTU bodies, detected people).
        with_z: MediaPipe: keep the relative depth ``z`` as a third coordinate.

    Returns:
        one :class:`Clip` per clip (several only for a ``.npy`` batch).

    Raises:
        DataFormatError: unknown or malformed file (named, with the line when known).
        FileNotFoundError: no such file.
    """
    from asma.data import readers as r
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such input: {path}")
    fmt = fmt or _sniff(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "npy":
        return _npy(path)
    if fmt == "ntu":
        return [Clip(r.read_ntu_clip(path, max_bodies=num_persons), "ntu25", 3, path)]
    if fmt == "kinect":
        return [Clip(_kinect_text(path), "kinect20", 3, path)]
    if fmt == "utd-mhad":
        return [Clip(_one_person(r.read_utd_mhad(path)), "kinect20", 3, path)]
    if fmt == "openpose":
        seq = r.read_openpose_frames(path)
    elif fmt == "kinetics":
        seq = r.read_kinetics_json(path)
    elif fmt == "coco":
        seq = r.read_coco_keypoints_json(path)
    else:
        seq = r.read_mediapipe_json(path, with_z=with_z)
    return [Clip(r.pose_to_clip(seq, num_persons), seq.layout, seq.coords.shape[-1], path)]


def fit_clip(clip: Clip, config) -> np.ndarray:
    """Check ``clip`` against a model's :class:`~asma.pretrained.config.PretrainedConfig` and give it the
    model's person slots.

    Shapes:
        - **output**: :math:`(C, F, V, M)` float32 with :math:`M` = ``config.num_persons`` (when set)

    Raises:
        ValueError: the layout, number of joints, channels or coordinates differ (both named).
    """
    c, _, v, m = clip.data.shape
    same_layout = clip.layout is None or config.layout_name in ("custom", clip.layout)
    coords_differ = (clip.num_coords is not None and config.num_coords is not None
                     and clip.num_coords != config.num_coords)
    if not same_layout or v != config.num_joints or c != config.in_channels or coords_differ:
        want = (f"layout {config.layout_name!r} ({config.num_joints} joints), {config.in_channels} channels"
                + (f" ({config.num_coords} coordinates)" if config.num_coords is not None else ""))
        raise ValueError(f"{os.path.basename(clip.source)}: the clip has {clip.describe()} but the model "
                         f"expects {want}")
    return _persons(clip.data, config.num_persons or m)


def parse_frame(line: str, source: str = "<stdin>", lineno: Optional[int] = None) -> np.ndarray:
    """One streamed frame: a JSON array ``V x C`` (one person) or ``M x V x C``, or an object
    with it under ``"joints"``.

    Shapes:
        - **output**: :math:`(M, V, C)` float32

    Raises:
        DataFormatError: not JSON, not a rectangular array of numbers, or non-finite values.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"not JSON ({e.msg} at column {e.colno})", source, lineno) from None
    if isinstance(obj, dict):
        obj = obj.get("joints")
    try:
        a = np.asarray(obj, dtype=np.float32)
    except (ValueError, TypeError):
        raise DataFormatError("expected a rectangular array of numbers (V x C or M x V x C)", source, lineno) from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.size == 0:
        raise DataFormatError(f"expected V x C or M x V x C joints, got shape {a.shape}", source, lineno)
    if not np.isfinite(a).all():
        raise DataFormatError("NaN or infinite coordinate", source, lineno)
    return a
