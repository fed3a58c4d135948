"""MediaPipe Pose (33 landmarks) -> :class:`PoseSequence`.

JSON (:func:`read_mediapipe_json`): a list of frames (also under ``{"frames": [...]}``), each

- a list of 33 landmarks, a landmark being ``{"x", "y"[, "z"][, "visibility"][, "presence"]}``
  or ``[x, y, z[, visibility[, presence]]]`` (``null`` for a missing landmark);
- or an object with ``landmarks`` (one person) or ``pose_landmarks`` (one person, or a list of
  people), optionally ``frame_index`` / ``frame``;
- ``null``, ``[]`` or an object whose landmarks are ``null``/``[]`` when nothing was detected.

Anything else (an object without landmarks, a landmark without ``x``/``y``, a visibility outside
[0, 1]) is an error, not an empty frame. Arrays ``(T, 33, 4)`` / ``(T, P, 33, 4)``:
:func:`mediapipe_to_sequence`. Errors and limits: see :mod:`asma.data.readers.pose_json`.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ..errors import DataFormatError
from .pose_json import (_F32_MAX, DEFAULT_LIMITS, Person, PoseLimits, PoseSequence, as_float, as_index,
                        as_list, build_sequence, check_people, load_json, short)

NUM_LANDMARKS = 33


def _confidence(v, path: str, where: str) -> float:
    if v is None:  # no confidence: the landmark counts as missing
        return float("nan")
    f = as_float(v, path, where)
    if not 0.0 <= f <= 1.0:  # NaN (null) fails too: a present landmark needs a confidence
        raise DataFormatError(f"{where}: visibility {short(v)} is not in [0, 1]", path)
    return f


def _landmark(lm, D: int, path: str, where: str):
    """``(coords (D,), confidence)`` of one landmark, or ``None`` when it is null."""
    if lm is None:
        return None
    if isinstance(lm, dict):
        if "x" not in lm or "y" not in lm:
            raise DataFormatError(f"{where}: a landmark object needs 'x' and 'y'", path)
        vals = [lm["x"], lm["y"], lm.get("z", 0.0)][:D]
        vis = lm.get("visibility", lm.get("presence", 1.0))
    elif isinstance(lm, list) and 3 <= len(lm) <= 5:
        vals = lm[:D]
        vis = lm[3] if len(lm) > 3 else 1.0
    else:
        raise DataFormatError(f"{where}: expected an object or [x, y, z, visibility], got {short(lm)}", path)
    return [as_float(v, path, where) for v in vals], _confidence(vis, path, where)


def _person(lms, path: str, where: str, with_z: bool) -> Person:
    if isinstance(lms, dict):
        lms = lms.get("landmarks", lms.get("landmark"))
    if not isinstance(lms, list) or len(lms) != NUM_LANDMARKS:
        n = len(lms) if isinstance(lms, list) else type(lms).__name__
        raise DataFormatError(f"{where}: expected {NUM_LANDMARKS} landmarks, got {n}", path)
    D = 3 if with_z else 2
    c = np.full((NUM_LANDMARKS, D), np.nan)
    s = np.full(NUM_LANDMARKS, np.nan)
    for j, lm in enumerate(lms):
        got = _landmark(lm, D, path, f"{where} landmark {j}")
        if got is not None:
            c[j], s[j] = got
    return c, s


def _frame_people(fr, k: int, path: str) -> tuple:
    """``(frame number, list of people's landmark lists)`` of one frame entry."""
    if fr is None or (isinstance(fr, list) and not fr):
        return k, []
    if isinstance(fr, list):
        return k, [fr]
    if not isinstance(fr, dict):
        raise DataFormatError(f"frame entry {k}: expected a list of landmarks, an object or null, got {short(fr)}",
                              path)
    fi = k
    for key in ("frame_index", "frame"):
        if key in fr:
            fi = as_index(fr[key], path, f"frame entry {k} {key}")
            break
    if "pose_landmarks" in fr:
        pl = as_list(fr["pose_landmarks"], path, f"frame {fi} pose_landmarks")
        first = pl[0] if pl else None
        one = (first is None or (isinstance(first, dict) and "x" in first)
               or (isinstance(first, list) and bool(first) and isinstance(first[0], (int, float))))
        return fi, ([pl] if pl else []) if one else pl
    if "landmarks" in fr:
        lms = as_list(fr["landmarks"], path, f"frame {fi} landmarks")
        return fi, [lms] if lms else []
    raise DataFormatError(f"frame entry {k}: an object needs 'landmarks' or 'pose_landmarks'", path)


def read_mediapipe_json(source, *, name: Optional[str] = None, with_z: bool = False,
                        limits: PoseLimits = DEFAULT_LIMITS) -> PoseSequence:
    """Read MediaPipe Pose landmarks saved as JSON (see the module docstring for the shapes).

    Args:
        source: a path, the file's bytes, or the parsed object.
        with_z: keep MediaPipe's relative depth ``z`` as a third coordinate.
        limits: :class:`PoseLimits` (file size, frames, people per frame, memory).

    Returns:
        PoseSequence (layout ``mediapipe33``, ``D = 2`` or 3); confidence = ``visibility``.

    Raises:
        DataFormatError: malformed frames or landmarks, non-finite numbers, a visibility outside
            [0, 1], a duplicate frame index, a limit exceeded (file, frame, person, landmark named).
    """
    obj, path = load_json(source, name, limits)
    if isinstance(obj, dict):
        obj = obj.get("frames", obj.get("landmarks"))
    if not isinstance(obj, list):
        raise DataFormatError("expected a list of frames", path)
    if len(obj) > limits.max_frames:
        raise DataFormatError(f"{len(obj)} frames, over the limit of {limits.max_frames} "
                              "(raise PoseLimits.max_frames)", path)
    frames = []
    for k, fr in enumerate(obj):
        fi, persons = _frame_people(fr, k, path)
        check_people(len(persons), path, f"frame {fi}", limits)
        people: List[Person] = [_person(p, path, f"frame {fi} person {i}", with_z) for i, p in enumerate(persons)]
        frames.append((fi, people))
    return build_sequence(frames, NUM_LANDMARKS, 3 if with_z else 2, "mediapipe33", path, limits)


def mediapipe_to_sequence(landmarks: np.ndarray, *, with_z: bool = False, name: str = "<array>") -> PoseSequence:
    """MediaPipe landmarks array -> PoseSequence.

    Shapes:
        ``landmarks``: ``(T, 33, 4|5)`` or ``(T, P, 33, 4|5)`` (x, y, z, visibility[, presence]);
        NaN rows mark missing landmarks; other non-finite or out-of-float32-range values raise.
    """
    a = np.asarray(landmarks, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[2] != NUM_LANDMARKS or a.shape[3] < 4:
        raise DataFormatError(f"expected (T, 33, 4) or (T, P, 33, 4) landmarks, got {a.shape}", name)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(a) | (np.abs(a) > _F32_MAX)
    if bad.any():
        t, p, j = np.argwhere(bad.any(axis=3))[0]
        raise DataFormatError(f"frame {t} person {p} landmark {j}: infinite value", name)
    D = 3 if with_z else 2
    c = a[..., :D]
    s = a[..., 3]
    miss = np.isnan(c).any(axis=3) | np.isnan(s)
    return PoseSequence(coords=np.where(miss[..., None], 0, c).astype(np.float32),
                        scores=np.where(miss, 0, s).astype(np.float32),
                        frame_index=np.arange(a.shape[0]), layout="mediapipe33", source=name)
