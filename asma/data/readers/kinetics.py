"""Kinetics-skeleton clips (ST-GCN release) and OpenPose per-frame JSON -> :class:`PoseSequence`.

- **Kinetics-skeleton** (OpenPose-18, 2D, x/y in [0, 1]): one JSON per clip,
  ``{"data": [{"frame_index": i, "skeleton": [{"pose": [x0, y0, ...], "score": [s0, ...]}]}],
  "label": ..., "label_index": ...}`` -> :func:`read_kinetics_json`; a folder of them with its
  label file -> :func:`load_kinetics_skeleton`.
- **OpenPose** per-frame ``*_keypoints.json`` (``people[].pose_keypoints_2d``; COCO-18 or
  BODY_25, BODY_25 is mapped to OpenPose-18) -> :func:`read_openpose_frames`.

Errors and limits: see :mod:`asma.data.readers.pose_json`.
"""
from __future__ import annotations

import json
import os
import re
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from .pose_json import (DEFAULT_LIMITS, PoseLimits, PoseSequence, as_index, as_list, build_sequence, check_people,
                        load_json, points, pose_to_clip, short)

PathLike = Union[str, "os.PathLike[str]"]

#: BODY_25 index for each OpenPose-18 (COCO-18) joint.
BODY25_TO_OPENPOSE18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


def _kinetics_frame(fr, k: int, path: str, limits: PoseLimits):
    if not isinstance(fr, dict):
        raise DataFormatError(f"frame entry {k}: expected an object, got {short(fr)}", path)
    fi = as_index(fr.get("frame_index", k + 1), path, f"frame entry {k} frame_index")
    skel = as_list(fr.get("skeleton"), path, f"frame {fi} skeleton")
    check_people(len(skel), path, f"frame {fi}", limits)
    people = []
    for p, sk in enumerate(skel):
        where = f"frame {fi} person {p}"
        if not isinstance(sk, dict):
            raise DataFormatError(f"{where}: expected an object with 'pose' and 'score', got {short(sk)}", path)
        c = points(sk.get("pose"), 18, 2, path, where + " pose")
        s = points(sk.get("score"), 18, 1, path, where + " score")[:, 0]
        people.append((c, s))
    return fi, people


def read_kinetics_json(source, *, name: Optional[str] = None, limits: PoseLimits = DEFAULT_LIMITS) -> PoseSequence:
    """Read one Kinetics-skeleton clip JSON (OpenPose-18, x/y in [0, 1]).

    Args:
        source: a path, the file's bytes, or the parsed object.
        limits: :class:`PoseLimits` (file size, frames, people per frame, memory).

    Returns:
        PoseSequence (layout ``openpose18``, ``D = 2``) with ``label``/``label_index`` when present.
        Use ``pose_to_clip(seq, 2, center=True)`` for ST-GCN's ``(3, T, 18, 2)`` input.

    Raises:
        DataFormatError: invalid JSON, missing ``data``, wrong pose/score lengths, non-numbers,
            NaN/inf, a duplicate frame index, a limit exceeded (file, frame and person named);
            EmptySequenceError for zero frames or nobody in any frame.
    """
    obj, path = load_json(source, name, limits)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataFormatError("expected an object with a 'data' list of frames", path)
    if len(obj["data"]) > limits.max_frames:
        raise DataFormatError(f"{len(obj['data'])} frames, over the limit of {limits.max_frames} "
                              "(raise PoseLimits.max_frames)", path)
    frames = [_kinetics_frame(fr, k, path, limits) for k, fr in enumerate(obj["data"])]
    seq = build_sequence(frames, 18, 2, "openpose18", path, limits)
    label = obj.get("label")
    seq.label = label if isinstance(label, str) else None
    li = obj.get("label_index")
    seq.label_index = None if li is None else as_index(li, path, "label_index")
    return seq


def _openpose_file(f: str, k: int, limits: PoseLimits):
    obj, path = load_json(f, None, limits)
    nums = re.findall(r"\d+", os.path.basename(f))
    fi = as_index(int(nums[-1]), path, "frame number in the file name") if nums else k
    if not isinstance(obj, dict):
        raise DataFormatError("expected an object with a 'people' list", path)
    plist = as_list(obj.get("people"), path, "people")
    check_people(len(plist), path, "people", limits)
    people = []
    for p, person in enumerate(plist):
        vals = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        where = f"person {p}"
        if not isinstance(vals, list) or len(vals) not in (54, 75):
            n = len(vals) if isinstance(vals, list) else type(vals).__name__
            raise DataFormatError(f"{where}: pose_keypoints_2d must hold 18 or 25 x (x, y, c) values, got {n}", path)
        kp = points(vals, len(vals) // 3, 3, path, where)
        if kp.shape[0] == 25:
            kp = kp[BODY25_TO_OPENPOSE18]
        people.append((kp[:, :2], kp[:, 2]))
    return fi, people


def read_openpose_frames(files: Union[PathLike, Sequence[PathLike]], *,
                         limits: PoseLimits = DEFAULT_LIMITS) -> PoseSequence:
    """Read OpenPose's per-frame ``*_keypoints.json`` files (a directory or a list of files).

    The frame number is the last integer in each file name (``video_000000000012_keypoints.json``
    -> 12), else the position in the sorted list; two files with the same number are an error.
    ``pose_keypoints_2d`` with 18 (COCO) or 25 (BODY_25, mapped to OpenPose-18) keypoints.

    Returns:
        PoseSequence (layout ``openpose18``, ``D = 2``, pixel coordinates).
    """
    if isinstance(files, (str, os.PathLike)) and os.path.isdir(files):
        d = os.fspath(files)
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))
    files = [os.fspath(f) for f in files]
    if not files:
        raise EmptySequenceError("no OpenPose JSON files", None)
    if len(files) > limits.max_frames:
        raise DataFormatError(f"{len(files)} frame files, over the limit of {limits.max_frames} "
                              "(raise PoseLimits.max_frames)", os.path.dirname(files[0]) or files[0])
    frames = [_openpose_file(f, k, limits) for k, f in enumerate(files)]
    return build_sequence(frames, 18, 2, "openpose18", files[0], limits)


def load_kinetics_skeleton(data_dir: PathLike, label_file: PathLike, *, max_frames: int = 300,
                           max_persons: int = 2, label_names: Optional[Sequence[str]] = None,
                           limits: PoseLimits = DEFAULT_LIMITS):
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
        seq = read_kinetics_json(p, limits=limits)
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
