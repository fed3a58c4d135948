"""Pose-estimator outputs -> clip arrays with a confidence channel: the shared core.

Supported inputs (one module each):

- **Kinetics-skeleton** (ST-GCN release, OpenPose-18, 2D) and OpenPose per-frame JSON
  (``*_keypoints.json``, BODY_25 mapped to OpenPose-18): :mod:`asma.data.readers.kinetics`.
- **COCO-17 keypoints** as written by common 2D estimators (COCO results lists, MMPose-style
  frames): :mod:`asma.data.readers.coco`.
- **MediaPipe Pose (33 landmarks)** JSON or arrays: :mod:`asma.data.readers.mediapipe`.

All of them produce a :class:`PoseSequence` (every detected person, per frame) and
:func:`pose_to_clip` turns it into ``(C, T, V, M)``: channels are the coordinates followed by the
confidence, and the ``M`` people with the highest summed confidence are kept **per frame**
(the ST-GCN Kinetics rule; estimators give no identities). Missing joints (``null``, score 0,
or (0, 0) with score 0) have all channels 0; frames without anybody are all-zero.

Hostile or broken files raise :class:`~asma.data.errors.DataFormatError` naming the file and the
frame / person / joint / field, never another exception: NaN, infinite or out-of-float32-range
numbers, frame indices that are not integers, a frame index listed twice, and inputs over the
:class:`PoseLimits` (file size, frames, people per frame, array memory), which are checked
**before** anything is allocated. Pass ``limits=PoseLimits(...)`` to a reader to raise them.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataFormatError, EmptySequenceError

_F32_MAX = float(np.finfo(np.float32).max)
_INT_LIMIT = 2 ** 62  # frame indices and label indices must fit int64 with room for spans


@dataclass(frozen=True)
class PoseLimits:
    """Upper bounds a pose-estimator file must respect (checked before allocating).

    Attributes:
        max_file_bytes: size of the JSON file (default 64 MiB; a Kinetics clip is < 1 MiB).
        max_frames: listed frames, and the span ``max(frame_index) - min(frame_index) + 1``
            that :func:`pose_to_clip` fills (default 100,000, about an hour at 30 fps).
        max_people: people in one frame (default 64).
        max_array_bytes: the dense ``(T, P, V, D)`` arrays of a :class:`PoseSequence` and the
            clip of :func:`pose_to_clip`, each (default 1 GiB).
    """

    max_file_bytes: int = 64 << 20
    max_frames: int = 100_000
    max_people: int = 64
    max_array_bytes: int = 1 << 30

    def __post_init__(self):
        for k in ("max_file_bytes", "max_frames", "max_people", "max_array_bytes"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PoseLimits.{k} must be a positive integer, got {v!r}")


DEFAULT_LIMITS = PoseLimits()


@dataclass
class PoseSequence:
    """Detected people over time.

    Attributes:
        coords: ``(T, P, V, D)`` float32 coordinates (D = 2, or 3 with depth), 0 where missing.
        scores: ``(T, P, V)`` float32 confidences, 0 for missing joints and empty person slots.
        frame_index: ``(T,)`` int64 original frame numbers (strictly increasing).
        layout: layout name (``openpose18``, ``coco17``, ``mediapipe33``).
        source: file name, for errors.
        label: optional class name; label_index: optional class index.
        limits: the :class:`PoseLimits` it was read with (bound :func:`pose_to_clip`).
    """

    coords: np.ndarray
    scores: np.ndarray
    frame_index: np.ndarray
    layout: str
    source: str = "<pose>"
    label: Optional[str] = None
    label_index: Optional[int] = None
    limits: PoseLimits = field(default=DEFAULT_LIMITS)

    @property
    def num_frames(self) -> int:
        """``T``, the number of listed frames."""
        return int(self.coords.shape[0])

    @property
    def max_people(self) -> int:
        """``P``, the most people detected in one frame."""
        return int(self.coords.shape[1])


def short(v: Any) -> str:
    """A short description of a JSON value for error messages (never the repr of a container,
    which may be huge or too deeply nested to print)."""
    if v is None or isinstance(v, (bool, int, float)):
        s = repr(v)
        return s if len(s) <= 24 else s[:21] + "..."
    if isinstance(v, str):
        return repr(v[:20] + ("..." if len(v) > 20 else ""))
    return type(v).__name__


def load_json(source, name: Optional[str] = None, limits: PoseLimits = DEFAULT_LIMITS) -> Tuple[Any, str]:
    """``(parsed JSON, display path)`` from a path, bytes, or an already parsed list/dict.

    Raises:
        DataFormatError: file over ``limits.max_file_bytes``, not UTF-8, invalid or too deeply
            nested JSON.
    """
    if isinstance(source, (dict, list)):
        return source, name or "<json>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, path = bytes(source), name or "<bytes>"
        if len(raw) > limits.max_file_bytes:
            raise DataFormatError(f"{len(raw)} bytes is over the limit of {limits.max_file_bytes} "
                                  "(raise PoseLimits.max_file_bytes)", path)
    else:
        path = os.fspath(source)
        size = os.path.getsize(path)
        if size > limits.max_file_bytes:
            raise DataFormatError(f"{size} bytes is over the limit of {limits.max_file_bytes} "
                                  "(raise PoseLimits.max_file_bytes)", name or path)
        with open(path, "rb") as fh:
            raw = fh.read()
        path = name or path
    try:
        return json.loads(raw.decode("utf-8")), path
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text (byte {exc.start})", path) from None
    except RecursionError:
        raise DataFormatError("JSON nested too deeply", path) from None
    except ValueError as exc:  # JSONDecodeError, and int() of a number with more than 4300 digits
        raise DataFormatError(f"invalid JSON ({getattr(exc, 'msg', exc)})", path,
                              getattr(exc, "lineno", None)) from None


def as_float(v, path: str, where: str) -> float:
    """A JSON number as float (``None`` -> NaN, i.e. missing); anything that is not a finite,
    float32-representable number raises :class:`DataFormatError`."""
    if v is None:
        return math.nan  # missing, handled by the caller
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataFormatError(f"{where}: expected a number, got {type(v).__name__} {short(v)}", path)
    if isinstance(v, int):  # compare before float(): float(10**400) raises OverflowError
        if abs(v) > _F32_MAX:
            raise DataFormatError(f"{where}: value {short(v)} is out of the float32 range", path)
        return float(v)
    if not math.isfinite(v) or abs(v) > _F32_MAX:
        raise DataFormatError(f"{where}: non-finite value {short(v)} (use null for a missing keypoint)", path)
    return v


def as_index(v, path: str, where: str) -> int:
    """A JSON frame / label index: an integer (or an integral float) with ``|v| < 2**62``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataFormatError(f"{where}: expected an integer, got {type(v).__name__} {short(v)}", path)
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise DataFormatError(f"{where}: {short(v)} is not an integer", path)
    if abs(v) >= _INT_LIMIT:
        raise DataFormatError(f"{where}: {short(v)} is out of range", path)
    return int(v)


def as_list(v, path: str, where: str, allow_none: bool = True) -> list:
    """A JSON list (``None`` -> ``[]`` when allowed), else :class:`DataFormatError`."""
    if v is None and allow_none:
        return []
    if not isinstance(v, list):
        raise DataFormatError(f"{where}: expected a list, got {type(v).__name__} {short(v)}", path)
    return v


def points(values, V: int, per_point: int, path: str, where: str) -> np.ndarray:
    """Flat ``[a0, b0, (c0,) a1, ...]`` or nested ``[[a0, b0], ...]`` -> ``(V, per_point)`` float64;
    ``None`` entries become NaN (treated as missing)."""
    if not isinstance(values, (list, tuple)):
        raise DataFormatError(f"{where}: expected a list of keypoint values, got {type(values).__name__}", path)
    if values and isinstance(values[0], (list, tuple)):
        if len(values) != V:
            raise DataFormatError(f"{where}: expected {V} keypoints, got {len(values)}", path)
        out = np.full((V, per_point), np.nan)
        for j, p in enumerate(values):
            if p is None:
                continue
            if not isinstance(p, (list, tuple)) or len(p) < per_point:
                n = len(p) if isinstance(p, (list, tuple)) else short(p)
                raise DataFormatError(f"{where}: keypoint {j} must have {per_point} values, got {n}", path)
            out[j] = [as_float(v, path, f"{where} keypoint {j}") for v in p[:per_point]]
        return out
    if len(values) != V * per_point:
        raise DataFormatError(f"{where}: expected {V} x {per_point} = {V * per_point} values, got {len(values)}", path)
    return np.array([as_float(v, path, where) for v in values], dtype=np.float64).reshape(V, per_point)


Person = Tuple[np.ndarray, np.ndarray]  # coords (V, D) float64 (NaN = missing), scores (V,)


def check_people(n: int, path: str, where: str, limits: PoseLimits) -> None:
    """Refuse a frame with more than ``limits.max_people`` people (before reading them)."""
    if n > limits.max_people:
        raise DataFormatError(f"{where}: {n} people, over the limit of {limits.max_people} "
                              "(raise PoseLimits.max_people)", path)


def _check_size(T: int, P: int, V: int, D: int, path: str, limits: PoseLimits, what: str) -> None:
    nbytes = T * max(P, 1) * V * (D + 1) * 4
    if nbytes > limits.max_array_bytes:
        raise DataFormatError(f"{what} of {T} frames x {P} people x {V} joints needs {nbytes / 2**20:.0f} MiB, over "
                              f"the limit of {limits.max_array_bytes / 2**20:.0f} MiB (raise "
                              "PoseLimits.max_array_bytes)", path)


def build_sequence(frames: List[Tuple[int, List[Person]]], V: int, D: int, layout: str, path: str,
                   limits: PoseLimits = DEFAULT_LIMITS) -> PoseSequence:
    """``frames``: ``(frame_index, [(coords (V, D), scores (V,)), ...])`` in any order ->
    :class:`PoseSequence` sorted by frame index.

    Raises:
        DataFormatError: a frame index listed twice, more frames (or a wider frame span) than
            ``limits.max_frames``, or arrays over ``limits.max_array_bytes``.
        EmptySequenceError: no frame, or nobody in any frame.
    """
    if not frames:
        raise EmptySequenceError("no frames", path)
    if len(frames) > limits.max_frames:
        raise DataFormatError(f"{len(frames)} frames, over the limit of {limits.max_frames} "
                              "(raise PoseLimits.max_frames)", path)
    frames = sorted(frames, key=lambda f: f[0])
    idx = np.array([f for f, _ in frames], dtype=np.int64)
    dup = np.flatnonzero(idx[1:] == idx[:-1])
    if dup.size:
        raise DataFormatError(f"frame index {int(idx[dup[0]])} is listed twice", path)
    span = int(idx[-1]) - int(idx[0]) + 1
    if span > limits.max_frames:
        raise DataFormatError(f"frame indices {int(idx[0])}..{int(idx[-1])} span {span} frames, over the limit of "
                              f"{limits.max_frames} (raise PoseLimits.max_frames)", path)
    P = max(len(p) for _, p in frames)
    if P == 0:
        raise EmptySequenceError(f"nobody detected in any of the {len(frames)} frames", path)
    T = len(frames)
    _check_size(T, P, V, D, path, limits, "the pose arrays")
    coords = np.zeros((T, P, V, D), np.float32)
    scores = np.zeros((T, P, V), np.float32)
    for t, (_, people) in enumerate(frames):
        for p, (c, s) in enumerate(people):
            miss = ~np.isfinite(s) | ~np.isfinite(c).all(axis=1) | (s <= 0)
            coords[t, p] = np.where(miss[:, None], 0.0, c)
            scores[t, p] = np.where(miss, 0.0, s)
    return PoseSequence(coords=coords, scores=scores, frame_index=idx, layout=layout, source=path, limits=limits)


def pose_to_clip(seq: PoseSequence, max_persons: int = 2, *, center: bool = False,
                 fill_frames: bool = True, candidates: Optional[int] = None) -> np.ndarray:
    """Select people and stack channels.

    Args:
        seq: the detections.
        max_persons: ``M``; per frame the ``M`` people with the highest summed joint confidence
            are kept, in that order (ST-GCN's Kinetics rule).
        center: subtract 0.5 from x and y of present joints (ST-GCN's Kinetics normalisation for
            coordinates in [0, 1]); missing joints stay 0.
        fill_frames: place frame ``f`` at row ``f - min(frame_index)`` so gaps in the frame
            numbering become empty frames (otherwise the frames are stacked as listed).
        candidates: only the first ``candidates`` people of each frame are considered (ST-GCN
            uses 5); ``None``: all.

    Returns:
        ``(D + 1, T, V, M)`` float32: coordinates then confidence.

    Raises:
        DataFormatError: the filled clip would exceed ``seq.limits`` (frames or bytes).
    """
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    coords, scores = seq.coords, seq.scores
    if candidates is not None:
        coords, scores = coords[:, :candidates], scores[:, :candidates]
    T, P, V, D = coords.shape
    if fill_frames and T:
        f0 = int(seq.frame_index.min())
        T_out = int(seq.frame_index.max()) - f0 + 1
        rows = seq.frame_index - f0
        if T_out > seq.limits.max_frames:
            raise DataFormatError(f"frame indices span {T_out} frames, over the limit of {seq.limits.max_frames} "
                                  "(raise PoseLimits.max_frames)", seq.source)
    else:
        T_out, rows = T, np.arange(T)
    _check_size(T_out, max_persons, V, D, seq.source, seq.limits, "the clip")
    order = np.argsort(-scores.sum(axis=2), axis=1, kind="stable")[:, :max_persons]  # (T, M')
    sel_c = np.take_along_axis(coords, order[:, :, None, None], axis=1)  # (T, M', V, D)
    sel_s = np.take_along_axis(scores, order[:, :, None], axis=1)  # (T, M', V)
    if center:
        present = (sel_s > 0)[..., None]
        sel_c = np.where(present, sel_c - 0.5, 0.0)
    x = np.concatenate([sel_c, sel_s[..., None]], axis=-1)  # (T, M', V, D+1)
    out = np.zeros((D + 1, T_out, V, max_persons), np.float32)
    m = x.shape[1]
    out[:, rows, :, :m] = x.transpose(3, 0, 2, 1)
    return out


def _is_landmark(v) -> bool:
    return (isinstance(v, dict) and "x" in v) or (isinstance(v, list) and 3 <= len(v) <= 5
                                                   and all(isinstance(a, (int, float)) for a in v))


def _list_format(items: list) -> Optional[str]:
    """Format of a top-level JSON list from its first non-empty entry."""
    first = next((e for e in items if e not in (None, [], {})), None)
    if isinstance(first, list):  # a frame of 33 landmarks, or MMPose's instances of one frame
        if len(first) == 33 and all(e is None or _is_landmark(e) for e in first):
            return "mediapipe"
        return "coco" if all(isinstance(e, dict) and "keypoints" in e for e in first) else None
    if not isinstance(first, dict):
        return None
    if "pose_landmarks" in first or "landmarks" in first:
        return "mediapipe"
    if "keypoints" in first or any(isinstance(first.get(k), list) for k in ("instances", "people", "predictions")):
        return "coco"
    return None


def guess_pose_format(source, name: Optional[str] = None, limits: PoseLimits = DEFAULT_LIMITS) -> str:
    """Which pose-estimator JSON ``source`` holds, from its content (not its file name).

    Returns:
        ``"kinetics"`` (``{"data": [...]}``), ``"openpose"`` (``{"people": [...]}``), ``"coco"``
        (COCO results or annotations, MMPose frames) or ``"mediapipe"`` (frames of 33 landmarks).

    Raises:
        DataFormatError: invalid JSON, or JSON of none of these shapes.
    """
    obj, path = load_json(source, name, limits)
    fmt = None
    if isinstance(obj, dict):
        if isinstance(obj.get("data"), list):
            fmt = "kinetics"
        elif isinstance(obj.get("people"), list):
            fmt = "openpose"
        elif any(isinstance(obj.get(k), list) for k in ("annotations", "instance_info", "predictions", "results")):
            fmt = "coco"
        elif isinstance(obj.get("frames"), list):
            fmt = _list_format(obj["frames"])
        elif isinstance(obj.get("landmarks"), list):
            fmt = "mediapipe"
    elif isinstance(obj, list):
        fmt = _list_format(obj)
    if fmt is None:
        raise DataFormatError("JSON of no known pose format (Kinetics-skeleton, OpenPose, COCO keypoints, "
                              "MediaPipe); pass the format explicitly", path)
    return fmt


__all__: Sequence[str] = ["PoseLimits", "DEFAULT_LIMITS", "PoseSequence", "pose_to_clip", "build_sequence",
                          "load_json", "guess_pose_format", "as_float", "as_index", "as_list", "points", "check_people", "short"]
