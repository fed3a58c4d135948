"""UTD-MHAD skeletons as a dataset: ``a{action}_s{subject}_t{trial}_skeleton.mat`` files.

Each file holds ``d_skel`` ``(20 joints, 3, T)`` in metres (Kinect v1 camera coordinates) in
UTD-MHAD's own head-first joint order; :func:`~asma.data.readers.kinect_v1.read_utd_mhad` reads
it and reverses the trunk to the Kinect v1 SDK order, so the clips use the ``kinect20`` layout
(and models transfer between UTD-MHAD, NW-UCLA, MSRC-12 and UTKinect).

27 actions x 8 subjects x 4 trials (861 files: three are missing from the official release).
The standard protocol (Chen et al., ICIP 2015) is cross-subject: odd subjects (1, 3, 5, 7) train,
even subjects test (431 / 430 clips).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from ..errors import DataFormatError
from .clips import ClipSource, Item, RawClip, find_named_files, one_person, subject_parity_mask

UTD_MHAD_CLASS_NAMES = (
    "swipe_left", "swipe_right", "wave", "clap", "throw", "arm_cross", "basketball_shoot", "draw_x",
    "draw_circle_CW", "draw_circle_CCW", "draw_triangle", "bowling", "boxing", "baseball_swing", "tennis_swing",
    "arm_curl", "tennis_serve", "push", "knock", "catch", "pickup_throw", "jog", "walk", "sit2stand", "stand2sit",
    "lunge", "squat")
UTD_MHAD_META_KEYS = ("action", "subject", "trial", "length")
_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton$")


def _list_items(raw: Path, skipped: List[Dict[str, str]]) -> List[Item]:
    found = find_named_files(raw, ".mat", _NAME, skipped)
    # natural order (a2 before a10) so sample order does not depend on zero padding
    found.sort(key=lambda f: tuple(int(g) for g in f[2].groups()))
    return [(p, stem) for p, stem, m in found]


def _read_item(item: Item, max_persons: int) -> Tuple[List[RawClip], List[Dict[str, Any]]]:
    from .kinect_v1 import read_utd_mhad

    path, stem = item[0], item[1]
    action, subject, trial = (int(g) for g in _NAME.match(stem).groups())
    if not 1 <= action <= len(UTD_MHAD_CLASS_NAMES):
        raise DataFormatError(f"action a{action} is not one of the {len(UTD_MHAD_CLASS_NAMES)} UTD-MHAD actions", path)
    joints = read_utd_mhad(path)
    meta = {"action": action, "subject": subject, "trial": trial, "length": joints.shape[0]}
    return [RawClip(one_person(joints, max_persons), action - 1, meta, stem, path)], []


def utd_mhad_train_mask(benchmark: str, meta: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``"xsub"``: odd subjects train, even subjects test."""
    if benchmark != "xsub":
        raise ValueError(f"UTD-MHAD has no benchmark {benchmark!r}; known: xsub")
    return subject_parity_mask(meta["subject"])


SOURCE = ClipSource(UTD_MHAD_CLASS_NAMES, UTD_MHAD_META_KEYS, _list_items, _read_item, utd_mhad_train_mask,
                    ("xsub",))
