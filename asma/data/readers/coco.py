"""COCO-17 keypoints from 2D pose estimators -> :class:`PoseSequence`.

Accepted layouts of the JSON:

- a list of COCO-result detections (``image_id``, ``keypoints`` ``[x, y, v] * 17``, ``score``),
  also under ``{"annotations": [...]}`` (COCO ground truth: visibility flags 0/1/2 become
  confidences 0/1);
- a list of frames with ``instances`` / ``people`` / ``predictions`` holding ``keypoints``
  (``[[x, y], ...]``) and ``keypoint_scores`` (MMPose style), also under ``frames``,
  ``instance_info``, ``predictions`` or ``results``; MMPose's ``predictions = [[...], ...]``
  (one list of instances per frame) too.

The frame number is ``image_id`` / ``frame_id`` (an integer, or the last integer of a file name
such as ``frame_000012.jpg``). Entries with the same frame number are **merged**: their people
are that frame's detections (the COCO results format lists one detection per entry). Errors and
limits: see :mod:`asma.data.readers.pose_json`.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataFormatError
from .pose_json import (DEFAULT_LIMITS, Person, PoseLimits, PoseSequence, as_index, build_sequence, check_people,
                        load_json, points, short)

_PEOPLE_KEYS = ("instances", "people", "predictions", "keypoints_list")
_TOP_KEYS = ("annotations", "frames", "instance_info", "predictions", "results")


def _frame_number(v, path: str, where: str) -> int:
    if isinstance(v, str):
        nums = re.findall(r"\d+", os.path.basename(v))
        if not nums:
            raise DataFormatError(f"{where}: {short(v)} holds no frame number", path)
        return as_index(int(nums[-1]), path, where)
    return as_index(v, path, where)


def _coco_person(det: dict, V: int, path: str, where: str) -> Person:
    kp = det.get("keypoints")
    if kp is None:
        raise DataFormatError(f"{where}: no 'keypoints'", path)
    scores = det.get("keypoint_scores")
    if isinstance(kp, list) and kp and isinstance(kp[0], (list, tuple)):
        per = len(kp[0])
        pts = points(kp, V, 3 if (per >= 3 and scores is None) else 2, path, where)
    else:
        if not isinstance(kp, list) or len(kp) not in (2 * V, 3 * V):
            n = len(kp) if isinstance(kp, list) else type(kp).__name__
            raise DataFormatError(f"{where}: expected {V} x 3 (or x 2) keypoint values, got {n}", path)
        pts = points(kp, V, len(kp) // V, path, where)
    if scores is not None:
        s = points(scores, V, 1, path, where + " keypoint_scores")[:, 0]
    elif pts.shape[1] == 3:
        s = pts[:, 2].copy()
        # COCO ground truth uses visibility flags 0/1/2 rather than scores
        if np.isin(s[np.isfinite(s)], (0.0, 1.0, 2.0)).all() and (s == 2).any():
            s = np.where(s > 0, 1.0, 0.0)
    else:
        s = np.ones(V)
    return pts[:, :2], s


def _entries(obj, path: str) -> list:
    if isinstance(obj, dict):
        for key in _TOP_KEYS:
            if isinstance(obj.get(key), list):
                return obj[key]
        raise DataFormatError("expected a list of detections or frames (or 'annotations'/'frames')", path)
    if not isinstance(obj, list):
        raise DataFormatError("expected a JSON list", path)
    return obj


def _entry_people(item, k: int, path: str) -> Tuple[int, list]:
    """``(frame number, detections)`` of one list entry."""
    if isinstance(item, list):  # mmpose: predictions = [[instances of frame 0], ...]
        item = {"frame_id": k, "instances": item}
    if not isinstance(item, dict):
        raise DataFormatError(f"entry {k}: expected an object, got {short(item)}", path)
    people_key = next((key for key in _PEOPLE_KEYS if isinstance(item.get(key), list)), None)
    if people_key is not None and "keypoints" not in item:
        raw = next((item[key] for key in ("frame_id", "frame_index", "frame", "image_id") if key in item), k)
        return _frame_number(raw, path, f"entry {k} frame number"), item[people_key]
    raw = item["image_id"] if "image_id" in item else item.get("frame_id", k)
    return _frame_number(raw, path, f"entry {k} image_id"), [item]  # one detection per entry (COCO results)


def read_coco_keypoints_json(source, *, name: Optional[str] = None, num_joints: int = 17,
                             limits: PoseLimits = DEFAULT_LIMITS) -> PoseSequence:
    """Read COCO-17 keypoints from a 2D pose estimator's JSON output (see the module docstring).

    Args:
        source: a path, the file's bytes, or the parsed object.
        num_joints: keypoints per person (17 for COCO).
        limits: :class:`PoseLimits` (file size, frames, people per frame, memory).

    Returns:
        PoseSequence (layout ``coco17``, ``D = 2``; frames ordered by frame number).

    Raises:
        DataFormatError: malformed entries, non-finite or out-of-range numbers, a frame number
            that is not an integer, a limit exceeded (file, frame and person named).
    """
    obj, path = load_json(source, name, limits)
    entries = _entries(obj, path)
    by_frame: Dict[int, List[Person]] = {}
    for k, item in enumerate(entries):
        fi, dets = _entry_people(item, k, path)
        if fi not in by_frame and len(by_frame) >= limits.max_frames:
            raise DataFormatError(f"more than {limits.max_frames} frames (raise PoseLimits.max_frames)", path)
        people = by_frame.setdefault(fi, [])
        check_people(len(people) + len(dets), path, f"frame {fi}", limits)
        for p, det in enumerate(dets):
            if not isinstance(det, dict):
                raise DataFormatError(f"frame {fi} person {p}: expected an object, got {short(det)}", path)
            people.append(_coco_person(det, num_joints, path, f"frame {fi} person {len(people)}"))
    return build_sequence(sorted(by_frame.items()), num_joints, 2, "coco17", path, limits)
