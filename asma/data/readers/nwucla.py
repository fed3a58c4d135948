"""Northwestern-UCLA Multiview Action3D (NW-UCLA), the ``all_sqe`` JSON release of CTR-GCN.

One file per clip, ``aAA_sSS_eEE_vVV.json`` (action, subject, repetition, view)::

    {"file_name": "a01_s01_e00_v01", "label": 1, "skeletons": [[[x, y, z] x 20] x T]}

One person, Kinect v1 camera coordinates in metres, joints in the Kinect v1 SDK order (the
``kinect20`` layout; checked with bone lengths on all 1,484 clips). ``label`` is 1..10 for the
non-contiguous action ids 1-6, 8, 9, 11, 12 and must agree with the name. Clips can be 1 frame long.

The standard protocol is cross-view: views 1 and 2 train, view 3 tests (1,020 / 464 clips);
J. Wang et al., "Cross-view Action Modeling, Learning and Recognition", CVPR 2014.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, decode_text, read_source
from .clips import ClipSource, Item, RawClip, find_named_files, one_person

#: NW-UCLA action ids in label order (label 1 = a01, ..., label 10 = a12).
NWUCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
NWUCLA_CLASS_NAMES = ("pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
                      "stand up", "donning", "doffing", "throw", "carry")
NWUCLA_META_KEYS = ("action", "subject", "episode", "view", "length")
_NAME = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})$")


def parse_nwucla_name(name: str) -> Dict[str, int]:
    """``"a02_s09_e04_v03"`` -> ``{"action": 2, "subject": 9, "episode": 4, "view": 3}``."""
    m = _NAME.match(name)
    if m is None:
        raise DataFormatError(f"name {name!r} is not aAA_sSS_eEE_vVV", name)
    return dict(zip(("action", "subject", "episode", "view"), (int(g) for g in m.groups())))


def _frames(skel: Any, path: str) -> np.ndarray:
    if not isinstance(skel, list):
        raise DataFormatError(f"'skeletons' must be a list of frames, got {type(skel).__name__}", path)
    try:
        arr = np.asarray(skel, dtype=np.float64)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 3 or arr.shape[1:] != (20, 3):
        for t, frame in enumerate(skel):  # name the first bad frame
            if not isinstance(frame, list) or len(frame) != 20:
                got = len(frame) if isinstance(frame, list) else type(frame).__name__
                raise DataFormatError(f"frame {t}: expected 20 joints, got {got}", path)
            for j, xyz in enumerate(frame):
                if (not isinstance(xyz, list) or len(xyz) != 3
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xyz)):
                    raise DataFormatError(f"frame {t} joint {j + 1}: expected [x, y, z] numbers, got {xyz!r:.60}",
                                          path)
        raise DataFormatError("'skeletons' is not a T x 20 x 3 array", path)
    if arr.shape[0] == 0:
        raise EmptySequenceError("no frames in 'skeletons'", path)
    bad = ~np.isfinite(arr)
    if bad.any():
        t, j, _ = np.argwhere(bad)[0]
        raise DataFormatError(f"frame {t} joint {j + 1}: non-finite coordinate", path)
    return arr


def read_nwucla_json(source: Source, *, name: Optional[str] = None) -> Tuple[np.ndarray, int, str]:
    """Read one NW-UCLA ``all_sqe`` clip.

    Returns:
        ``(joints, label, file_name)``: joints ``(T, 20, 3)`` float64 in the ``kinect20`` order,
        the 0-based label and the ``file_name`` field.

    Raises:
        DataFormatError: invalid JSON (line and column named), missing fields, a frame that is not
            20 x [x, y, z], a non-finite value, a label outside 1..10 or one that contradicts the name.
    """
    raw, path = read_source(source, name)
    try:
        obj = json.loads(decode_text(raw, path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, exc.lineno) from None
    if not isinstance(obj, dict) or "skeletons" not in obj or "label" not in obj:
        raise DataFormatError("expected an object with 'file_name', 'label' and 'skeletons'", path)
    label = obj["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= len(NWUCLA_ACTIONS):
        raise DataFormatError(f"'label' must be an integer 1..{len(NWUCLA_ACTIONS)}, got {label!r}", path)
    file_name = str(obj.get("file_name", ""))
    m = _NAME.match(file_name)
    if m is not None and int(m.group(1)) != NWUCLA_ACTIONS[label - 1]:
        raise DataFormatError(f"'label' {label} is action a{NWUCLA_ACTIONS[label - 1]:02d}, but the file is "
                              f"{file_name}", path)
    return _frames(obj["skeletons"], path), label - 1, file_name


def _list_items(raw: Path, skipped: List[Dict[str, str]]) -> List[Item]:
    return [(p, stem) for p, stem, m in find_named_files(raw, ".json", _NAME, skipped)]


def _read_item(item: Item, max_persons: int) -> Tuple[List[RawClip], List[Dict[str, Any]]]:
    path, stem = item[0], item[1]
    joints, label, file_name = read_nwucla_json(path)
    meta = parse_nwucla_name(stem)
    if meta["action"] != NWUCLA_ACTIONS[label]:
        raise DataFormatError(f"'label' {label + 1} is action a{NWUCLA_ACTIONS[label]:02d}, but the file is named "
                              f"{stem}", path)
    notes = [] if file_name in ("", stem) else [{"file": path, "line": None,
                                                 "note": f"file_name {file_name!r} differs from the file's name"}]
    meta["length"] = joints.shape[0]
    return [RawClip(one_person(joints, max_persons), label, meta, stem, path)], notes


def nwucla_train_mask(benchmark: str, meta: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``"xview"``: views 1 and 2 train, view 3 tests (the standard NW-UCLA protocol)."""
    if benchmark != "xview":
        raise ValueError(f"NW-UCLA has no benchmark {benchmark!r}; known: xview")
    return np.isin(meta["view"], (1, 2)), {"rule": "views 1 and 2 train, view 3 tests", "train_views": [1, 2]}


def load_nwucla(folder: Union[str, "Path"], max_persons: int = 1):
    """All clips under ``folder`` as ``(joints list of (T, 20, 3), labels (N,), names)``,
    sorted by name (for analysis without a prepare step)."""
    items = _list_items(Path(folder), [])
    clips = [_read_item(it, max_persons)[0][0] for it in items]
    return ([c.data[..., 0].transpose(1, 2, 0) for c in clips], np.array([c.label for c in clips], np.int64),
            [c.name for c in clips])


SOURCE = ClipSource(NWUCLA_CLASS_NAMES, NWUCLA_META_KEYS, _list_items, _read_item, nwucla_train_mask, ("xview",))
