"""Pose-estimator outputs -> clip arrays with a confidence channel.

Supported inputs:

- **Kinetics-skeleton** (ST-GCN release, OpenPose-18, 2D): one JSON per clip,
  ``{"data": [{"frame_index": i, "skeleton": [{"pose": [x0, y0, ...], "score": [s0, ...]}]}],
  "label": ..., "label_index": ...}`` -> :func:`read_kinetics_json`.
- **OpenPose** per-frame JSON (``*_keypoints.json``, ``people[].pose_keypoints_2d``; COCO-18 or
  BODY_25, BODY_25 is mapped to OpenPose-18) -> :func:`read_openpose_frames`.
- **COCO-17 keypoints** as written by common 2D estimators: a list of COCO-result detections
  (``image_id``, ``keypoints`` ``[x, y, v] * 17``, ``score``; also ``{"annotations": [...]}``)
  or a list of frames with ``instances``/``people``/``predictions`` holding ``keypoints`` and
  ``keypoint_scores`` (MMPose style) -> :func:`read_coco_keypoints_json`.
- **MediaPipe Pose (33 landmarks)**: a JSON list of frames, each a list of 33
  ``{"x", "y", "z", "visibility"}`` dicts (or ``{"landmarks": [...]}``, several people as
  ``{"pose_landmarks": [[...], ...]}``, ``null``/``[]`` when nothing was detected), or an
  array ``(T, 33, 4)`` / ``(T, P, 33, 4)`` -> :func:`read_mediapipe_json`, :func:`mediapipe_to_sequence`.

All of them produce a :class:`PoseSequence` (every detected person, per frame) and
:func:`pose_to_clip` turns it into ``(C, T, V, M)``: channels are the coordinates followed by the
confidence, and the ``M`` people with the highest summed confidence are kept **per frame**
(the ST-GCN Kinetics rule; estimators give no identities). Missing joints (``null``, score 0,
or (0, 0) with score 0) have all channels 0; frames without anybody are all-zero. NaN or
infinite values raise :class:`~asma.data.errors.DataFormatError` naming the file, frame,
person and joint.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError

PathLike = Union[str, "os.PathLike[str]"]

#: BODY_25 index for each OpenPose-18 (COCO-18) joint.
BODY25_TO_OPENPOSE18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@dataclass
class PoseSequence:
    """Detected people over time.

    Attributes:
        coords: ``(T, P, V, D)`` float32 coordinates (D = 2, or 3 with depth), 0 where missing.
        scores: ``(T, P, V)`` float32 confidences, 0 for missing joints and empty person slots.
        frame_index: ``(T,)`` int64 original frame numbers.
        layout: layout name (``openpose18``, ``coco17``, ``mediapipe33``).
        source: file name, for errors.
        label: optional class name; label_index: optional class index.
    """

    coords: np.ndarray
    scores: np.ndarray
    frame_index: np.ndarray
    layout: str
    source: str = "<pose>"
    label: Optional[str] = None
    label_index: Optional[int] = None

    @property
    def num_frames(self) -> int:
        """``T``, the number of listed frames."""
        return int(self.coords.shape[0])

    @property
    def max_people(self) -> int:
        """``P``, the most people detected in one frame."""
        return int(self.coords.shape[1])


def _load_json(source, name: Optional[str] = None) -> Tuple[Any, str]:
    """``(parsed JSON, display path)`` from a path, bytes, or an already parsed list/dict."""
    if isinstance(source, (dict, list)):
        return source, name or "<json>"
    if isinstance(source, (bytes, bytearray)):
        raw, path = bytes(source), name or "<bytes>"
    else:
        path = os.fspath(source)
        with open(path, "rb") as fh:
            raw = fh.read()
        path = name or path
    try:
        return json.loads(raw.decode("utf-8")), path
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text (byte {exc.start})", path) from None
    except RecursionError:
        raise DataFormatError("JSON nested too deeply", path) from None
    except ValueError as exc:
        raise DataFormatError(f"invalid JSON ({getattr(exc, 'msg', exc)})", path,
                              getattr(exc, "lineno", None)) from None


def _as_float(v, path: str, where: str) -> float:
    if v is None:
        return math.nan  # missing, handled by the caller
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataFormatError(f"{where}: expected a number, got {type(v).__name__} {str(v)[:20]!r}", path)
    f = float(v)
    if not math.isfinite(f) or abs(f) > 3.4e38:
        raise DataFormatError(f"{where}: non-finite value {v!r} (use null for a missing keypoint)", path)
    return f


def _points(values, V: int, per_point: int, path: str, where: str) -> np.ndarray:
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
                raise DataFormatError(f"{where}: keypoint {j} must have {per_point} values, got {p!r:.40}", path)
            out[j] = [_as_float(v, path, f"{where} keypoint {j}") for v in p[:per_point]]
        return out
    if len(values) != V * per_point:
        raise DataFormatError(f"{where}: expected {V} x {per_point} = {V * per_point} values, got {len(values)}", path)
    return np.array([_as_float(v, path, where) for v in values], dtype=np.float64).reshape(V, per_point)


def _check_finite(arr: np.ndarray, missing: np.ndarray, path: str, where: str) -> None:
    """``arr`` may be NaN only where ``missing`` (JSON null); anything else non-finite is an error."""
    bad = ~np.isfinite(arr) & ~missing[..., None]
    if bad.any():
        j = int(np.argwhere(bad)[0][0])
        raise DataFormatError(f"{where} joint {j}: non-finite value", path)


def _build(frames: List[Tuple[int, List[Tuple[np.ndarray, np.ndarray]]]], V: int, D: int, layout: str,
           path: str) -> PoseSequence:
    """frames: list of (frame_index, [(coords (V, D), scores (V,)), ...]) -> PoseSequence."""
    if not frames:
        raise EmptySequenceError("no frames", path)
    frames = sorted(frames, key=lambda f: f[0])
    P = max((len(p) for _, p in frames), default=0)
    T = len(frames)
    coords = np.zeros((T, max(P, 1), V, D), np.float32)
    scores = np.zeros((T, max(P, 1), V), np.float32)
    for t, (_, people) in enumerate(frames):
        for p, (c, s) in enumerate(people):
            miss = ~np.isfinite(s) | ~np.isfinite(c).all(axis=1) | (s <= 0)
            c = np.where(miss[:, None], 0.0, c)
            s = np.where(miss, 0.0, s)
            coords[t, p] = c
            scores[t, p] = s
    return PoseSequence(coords=coords, scores=scores,
                        frame_index=np.array([f for f, _ in frames], dtype=np.int64), layout=layout, source=path)


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
    """
    coords, scores = seq.coords, seq.scores
    if candidates is not None:
        coords, scores = coords[:, :candidates], scores[:, :candidates]
    T, P, V, D = coords.shape
    order = np.argsort(-scores.sum(axis=2), axis=1, kind="stable")[:, :max_persons]  # (T, M')
    sel_c = np.take_along_axis(coords, order[:, :, None, None], axis=1)  # (T, M', V, D)
    sel_s = np.take_along_axis(scores, order[:, :, None], axis=1)  # (T, M', V)
    if center:
        present = (sel_s > 0)[..., None]
        sel_c = np.where(present, sel_c - 0.5, 0.0)
    x = np.concatenate([sel_c, sel_s[..., None]], axis=-1)  # (T, M', V, D+1)
    if fill_frames and T:
        f0 = int(seq.frame_index.min())
        T_out = int(seq.frame_index.max()) - f0 + 1
        rows = seq.frame_index - f0
    else:
        T_out, rows = T, np.arange(T)
    out = np.zeros((D + 1, T_out, V, max_persons), np.float32)
    m = x.shape[1]
    out[:, rows, :, :m] = x.transpose(3, 0, 2, 1)
    return out


# -------------------------------------------------------------------------------------------
# Kinetics-skeleton / OpenPose

def read_kinetics_json(source, *, name: Optional[str] = None) -> PoseSequence:
    """Read one Kinetics-skeleton clip JSON (OpenPose-18, x/y in [0, 1]).

    Returns:
        PoseSequence (layout ``openpose18``, ``D = 2``) with ``label``/``label_index`` when present.
        Use ``pose_to_clip(seq, 2, center=True)`` for ST-GCN's ``(3, T, 18, 2)`` input.

    Raises:
        DataFormatError: invalid JSON, missing ``data``, wrong pose/score lengths, non-numbers,
            NaN/inf (file, frame and person named); EmptySequenceError for zero frames.
    """
    obj, path = _load_json(source, name)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataFormatError("expected an object with a 'data' list of frames", path)
    V = 18
    frames = []
    for k, fr in enumerate(obj["data"]):
        if not isinstance(fr, dict):
            raise DataFormatError(f"frame entry {k}: expected an object", path)
        fi = fr.get("frame_index", k + 1)
        if isinstance(fi, bool) or not isinstance(fi, (int, float)) or fi != int(fi):
            raise DataFormatError(f"frame entry {k}: bad frame_index {fi!r:.20}", path)
        people = []
        for p, sk in enumerate(fr.get("skeleton") or []):
            where = f"frame {int(fi)} person {p}"
            if not isinstance(sk, dict):
                raise DataFormatError(f"{where}: expected an object with 'pose' and 'score'", path)
            c = _points(sk.get("pose"), V, 2, path, where + " pose")
            s = _points(sk.get("score"), V, 1, path, where + " score")[:, 0]
            missing = np.isnan(s) | np.isnan(c).any(axis=1)
            _check_finite(c, missing, path, where)
            _check_finite(s[:, None], missing, path, where)
            people.append((c, s))
        frames.append((int(fi), people))
    seq = _build(frames, V, 2, "openpose18", path)
    seq.label = obj.get("label")
    li = obj.get("label_index")
    seq.label_index = int(li) if isinstance(li, (int, float)) and not isinstance(li, bool) else None
    return seq


def read_openpose_frames(files: Union[PathLike, Sequence[PathLike]]) -> PoseSequence:
    """Read OpenPose's per-frame ``*_keypoints.json`` files (a directory or a list of files).

    The frame number is the last integer in each file name (``video_000000000012_keypoints.json``
    -> 12), else the position in the sorted list. ``pose_keypoints_2d`` with 18 (COCO) or 25
    (BODY_25, mapped to OpenPose-18) keypoints.

    Returns:
        PoseSequence (layout ``openpose18``, ``D = 2``, pixel coordinates).
    """
    if isinstance(files, (str, os.PathLike)) and os.path.isdir(files):
        d = os.fspath(files)
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))
    files = [os.fspath(f) for f in files]
    if not files:
        raise EmptySequenceError("no OpenPose JSON files", None)
    frames = []
    for k, f in enumerate(files):
        obj, path = _load_json(f)
        nums = re.findall(r"\d+", os.path.basename(f))
        fi = int(nums[-1]) if nums else k
        if not isinstance(obj, dict) or not isinstance(obj.get("people", []), list):
            raise DataFormatError("expected an object with a 'people' list", path)
        people = []
        for p, person in enumerate(obj.get("people", [])):
            vals = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
            where = f"person {p}"
            if not isinstance(vals, list) or len(vals) not in (54, 75):
                n = len(vals) if isinstance(vals, list) else type(vals).__name__
                raise DataFormatError(f"{where}: pose_keypoints_2d must hold 18 or 25 x (x, y, c) values, got {n}", path)
            kp = _points(vals, len(vals) // 3, 3, path, where)
            if kp.shape[0] == 25:
                kp = kp[BODY25_TO_OPENPOSE18]
            missing = np.isnan(kp).any(axis=1)
            _check_finite(kp, missing, path, where)
            people.append((kp[:, :2], kp[:, 2]))
        frames.append((fi, people))
    return _build(frames, 18, 2, "openpose18", files[0])


# -------------------------------------------------------------------------------------------
# COCO-17

def _frame_number(v, k: int) -> int:
    if isinstance(v, bool):
        return k
    if isinstance(v, (int, float)) and v == int(v):
        return int(v)
    if isinstance(v, str):
        nums = re.findall(r"\d+", os.path.basename(v))
        if nums:
            return int(nums[-1])
    return k


def _coco_person(det: dict, V: int, path: str, where: str) -> Tuple[np.ndarray, np.ndarray]:
    kp = det.get("keypoints")
    if kp is None:
        raise DataFormatError(f"{where}: no 'keypoints'", path)
    scores = det.get("keypoint_scores")
    if isinstance(kp, list) and kp and isinstance(kp[0], (list, tuple)):
        per = len(kp[0]) if kp[0] is not None else 2
        pts = _points(kp, V, 3 if (per >= 3 and scores is None) else 2, path, where)
    else:
        if not isinstance(kp, list) or len(kp) not in (2 * V, 3 * V):
            n = len(kp) if isinstance(kp, list) else type(kp).__name__
            raise DataFormatError(f"{where}: expected {V} x 3 (or x 2) keypoint values, got {n}", path)
        pts = _points(kp, V, len(kp) // V, path, where)
    if scores is not None:
        s = _points(scores, V, 1, path, where + " keypoint_scores")[:, 0]
    elif pts.shape[1] == 3:
        s = pts[:, 2].copy()
        # COCO ground truth uses visibility flags 0/1/2 rather than scores
        if np.isin(s[np.isfinite(s)], (0.0, 1.0, 2.0)).all() and (s == 2).any():
            s = np.where(s > 0, 1.0, 0.0)
    else:
        s = np.ones(V)
    c = pts[:, :2]
    missing = np.isnan(s) | np.isnan(c).any(axis=1)
    _check_finite(c, missing, path, where)
    _check_finite(s[:, None], missing, path, where)
    return c, s


def read_coco_keypoints_json(source, *, name: Optional[str] = None, num_joints: int = 17) -> PoseSequence:
    """Read COCO-17 keypoints from a 2D pose estimator's JSON output (see module docstring).

    Returns:
        PoseSequence (layout ``coco17``, ``D = 2``; frames ordered by ``image_id`` /
        ``frame_id``, whose last integer is the frame number).
    """
    obj, path = _load_json(source, name)
    if isinstance(obj, dict):
        for key in ("annotations", "frames", "instance_info", "predictions", "results"):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
        else:
            raise DataFormatError("expected a list of detections or frames (or 'annotations'/'frames')", path)
    if not isinstance(obj, list):
        raise DataFormatError("expected a JSON list", path)
    by_frame: Dict[int, List[Tuple[np.ndarray, np.ndarray]]] = {}
    for k, item in enumerate(obj):
        if isinstance(item, list):  # mmpose: predictions = [[instances of frame 0], ...]
            item = {"frame_id": k, "instances": item}
        if not isinstance(item, dict):
            raise DataFormatError(f"entry {k}: expected an object", path)
        people_key = next((key for key in ("instances", "people", "predictions", "keypoints_list")
                           if isinstance(item.get(key), list)), None)
        if people_key is not None and "keypoints" not in item:
            fi = _frame_number(item.get("frame_id", item.get("frame_index", item.get("frame", item.get("image_id", k)))), k)
            dets = item[people_key]
        else:  # one detection per entry (COCO results)
            fi = _frame_number(item.get("image_id", item.get("frame_id", k)), k)
            dets = [item]
        people = by_frame.setdefault(fi, [])
        for p, det in enumerate(dets):
            if not isinstance(det, dict):
                raise DataFormatError(f"frame {fi} person {p}: expected an object", path)
            people.append(_coco_person(det, num_joints, path, f"frame {fi} person {len(people)}"))
    return _build(sorted(by_frame.items()), num_joints, 2, "coco17", path)


# -------------------------------------------------------------------------------------------
# MediaPipe-33

def _mp_landmarks(lms, path: str, where: str, with_z: bool) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(lms, dict):
        lms = lms.get("landmarks", lms.get("landmark"))
    if not isinstance(lms, list) or len(lms) != 33:
        n = len(lms) if isinstance(lms, list) else type(lms).__name__
        raise DataFormatError(f"{where}: expected 33 landmarks, got {n}", path)
    D = 3 if with_z else 2
    c = np.full((33, D), np.nan)
    s = np.full(33, np.nan)
    for j, lm in enumerate(lms):
        if lm is None:
            continue
        if isinstance(lm, dict):
            vals = [lm.get("x"), lm.get("y")] + ([lm.get("z", 0.0)] if with_z else [])
            vis = lm.get("visibility", lm.get("presence", 1.0))
        elif isinstance(lm, (list, tuple)) and len(lm) >= 3:
            vals = list(lm[:2]) + ([lm[2]] if with_z else [])
            vis = lm[3] if len(lm) > 3 else 1.0
        else:
            raise DataFormatError(f"{where} landmark {j}: expected an object or [x, y, z, visibility]", path)
        c[j] = [_as_float(v, path, f"{where} landmark {j}") for v in vals]
        s[j] = _as_float(vis, path, f"{where} landmark {j}")
    missing = np.isnan(s) | np.isnan(c).any(axis=1)
    _check_finite(c, missing, path, where)
    _check_finite(s[:, None], missing, path, where)
    return c, s


def read_mediapipe_json(source, *, name: Optional[str] = None, with_z: bool = False) -> PoseSequence:
    """Read MediaPipe Pose landmarks saved as JSON (see the module docstring for the shapes).

    Args:
        with_z: keep MediaPipe's relative depth ``z`` as a third coordinate.

    Returns:
        PoseSequence (layout ``mediapipe33``, ``D = 2`` or 3); confidence = ``visibility``.
    """
    obj, path = _load_json(source, name)
    if isinstance(obj, dict):
        obj = obj.get("frames", obj.get("landmarks"))
    if not isinstance(obj, list):
        raise DataFormatError("expected a list of frames", path)
    frames = []
    for k, fr in enumerate(obj):
        fi = k
        if isinstance(fr, dict) and ("frame_index" in fr or "frame" in fr):
            fi = _frame_number(fr.get("frame_index", fr.get("frame")), k)
        if fr is None or fr == [] or (isinstance(fr, dict) and not (fr.get("pose_landmarks") or fr.get("landmarks"))):
            frames.append((fi, []))
            continue
        if isinstance(fr, dict) and isinstance(fr.get("pose_landmarks"), list):
            pl = fr["pose_landmarks"]
            persons = pl if pl and isinstance(pl[0], (list, dict)) and not (isinstance(pl[0], dict) and "x" in pl[0]) else [pl]
        else:
            persons = [fr]
        people = [_mp_landmarks(p, path, f"frame {fi} person {i}", with_z) for i, p in enumerate(persons)]
        frames.append((fi, people))
    return _build(frames, 33, 3 if with_z else 2, "mediapipe33", path)


def mediapipe_to_sequence(landmarks: np.ndarray, *, with_z: bool = False, name: str = "<array>") -> PoseSequence:
    """MediaPipe landmarks array ``(T, 33, 4|5)`` or ``(T, P, 33, 4|5)`` (x, y, z, visibility[,
    presence]) -> PoseSequence. NaN rows mark missing landmarks; other non-finite values raise."""
    a = np.asarray(landmarks, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[2] != 33 or a.shape[3] < 4:
        raise DataFormatError(f"expected (T, 33, 4) or (T, P, 33, 4) landmarks, got {a.shape}", name)
    if np.isinf(a).any():
        t, p, j = np.argwhere(np.isinf(a).any(axis=3))[0]
        raise DataFormatError(f"frame {t} person {p} landmark {j}: infinite value", name)
    D = 3 if with_z else 2
    c = a[..., :D]
    s = a[..., 3]
    miss = np.isnan(c).any(axis=3) | np.isnan(s)
    return PoseSequence(coords=np.where(miss[..., None], 0, c).astype(np.float32),
                        scores=np.where(miss, 0, s).astype(np.float32),
                        frame_index=np.arange(a.shape[0]), layout="mediapipe33", source=name)


def load_kinetics_skeleton(data_dir: PathLike, label_file: PathLike, *, max_frames: int = 300,
                           max_persons: int = 2, label_names: Optional[Sequence[str]] = None):
    """A folder of Kinetics-skeleton JSON clips as :class:`~asma.data.arrays.SkeletonArrays`
    (``(N, 3, max_frames, 18, M)``: x - 0.5, y - 0.5, score; ST-GCN's layout of the data).

    Args:
        label_file: ``{"<id>": {"has_skeleton": bool, "label": name, "label_index": i}}``.
        label_names: class names in index order (e.g. the 400 lines of ``label_name.txt``); the
            label of a clip is looked up **by name** when given (the label_index of some copies
            is remapped), else ``label_index`` is used.

    Clips without a skeleton (``has_skeleton`` false) are skipped; longer clips are truncated to
    ``max_frames`` (the ST-GCN release has at most 300 frames).
    """
    from ..arrays import SkeletonArrays

    with open(label_file, "rb") as fh:
        labels = json.loads(fh.read().decode("utf-8"))
    names, data, y = [], [], []
    index = {n: i for i, n in enumerate(label_names)} if label_names else None
    for vid in sorted(labels):
        info = labels[vid]
        if not info.get("has_skeleton", True):
            continue
        p = os.path.join(os.fspath(data_dir), f"{vid}.json")
        if not os.path.isfile(p):
            continue
        seq = read_kinetics_json(p)
        clip = pose_to_clip(seq, max_persons, center=True)[:, :max_frames]
        pad = np.zeros((3, max_frames, 18, max_persons), np.float32)
        pad[:, :clip.shape[1]] = clip
        data.append(pad)
        if index is not None:
            if info["label"] not in index:
                raise DataFormatError(f"label {info['label']!r} of {vid} is not in the class names", label_file)
            y.append(index[info["label"]])
        else:
            y.append(int(info["label_index"]))
        names.append(vid)
    class_names = list(label_names) if label_names else [f"class_{i}" for i in range(max(y) + 1 if y else 0)]
    return SkeletonArrays(data=np.stack(data) if data else np.zeros((0, 3, max_frames, 18, max_persons), np.float32),
                          labels=np.array(y, dtype=np.int64), layout="openpose18", class_names=class_names,
                          names=names, source=f"Kinetics-skeleton at {os.fspath(data_dir)}")
