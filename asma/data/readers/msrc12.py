"""MSRC-12 Kinect gesture dataset: ``P<m>_<1|2>_<gesture>[A]_p<subject>.{csv,tagstream}``.

- ``.csv``: one line per frame (~30 fps): a timestamp, then 20 joints x (x, y, z, tracking flag),
  metres in Kinect v1 camera space, joints in the SDK order (``kinect20`` layout). Sequences
  start with untracked all-zero frames, which are dropped (as the official loader does).
- ``.tagstream``: header ``XQPCTick;Tag``, then one line per *action point*
  ``<tick>;G<n>  <name>``: the moment each repetition of the gesture is performed. A tick is
  the csv timestamp ``(tick * 1000 + 49875 / 2) / 49875`` (the official loader's conversion),
  and labels the frame with the nearest timestamp.

Each sequence (one subject repeating one gesture ~10 times) is cut into one clip per action
point: from the midpoint with the previous action point to the midpoint with the next (the
first and last clip extend as far as their neighbour's half-gap), at most
:data:`MAX_HALF_WINDOW` frames on each side. The release has no official split; asma's
``xsub`` trains on the lower half of the subject ids present (p01-p15 of the full 30) and tests
on the rest. S. Fothergill et al., "Instructing people for training gestural interactive
systems", CHI 2012.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, decode_text, parse_block, parse_int, read_source, split_lines
from .clips import ClipSource, Item, RawClip, find_named_files, one_person

MSRC12_CLASS_NAMES = ("lift outstretched arms", "duck", "push right", "goggles", "wind it up", "shoot", "bow",
                      "throw", "had enough", "change weapon", "beat both", "kick")
MSRC12_META_KEYS = ("subject", "gesture", "modality", "repetition", "point", "start", "end", "length")
MAX_HALF_WINDOW = 60  # frames (2 s): a long pause before or after a repetition is not part of it
_NAME = re.compile(r"^P(\d)_(\d)_(\d+)(A?)_p(\d+)$")
_TAG = re.compile(r"^\s*(\d+)\s*;\s*G(\d+)\b")


def read_msrc12_csv(source: Source, *, name: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read an MSRC-12 skeleton csv.

    Returns:
        ``(timestamps (F,) int64, joints (F, 20, 3) float64)``, all frames (untracked ones are zero).

    Raises:
        DataFormatError: a line that is not 81 numbers (its line named), non-finite values,
            timestamps that go back.
    """
    raw, path = read_source(source, name)
    lines = split_lines(decode_text(raw, path))
    nums = [i + 1 for i, line in enumerate(lines) if line.strip()]
    if not nums:
        raise EmptySequenceError("no frames", path)
    arr = parse_block([lines[i - 1] for i in nums], nums, 81, path, "numbers (timestamp + 20 x (x, y, z, flag))")
    ts = arr[:, 0].astype(np.int64)
    back = np.flatnonzero(np.diff(ts) < 0)
    if back.size:
        raise DataFormatError(f"timestamp {ts[back[0] + 1]} is before the previous {ts[back[0]]}", path,
                              nums[back[0] + 1])
    return ts, arr[:, 1:].reshape(-1, 20, 4)[..., :3]


def read_msrc12_tags(source: Source, *, name: Optional[str] = None) -> List[Tuple[int, int, int]]:
    """Read a ``.tagstream``: ``[(csv timestamp, gesture 1..12, line)]`` per action point."""
    raw, path = read_source(source, name)
    lines = split_lines(decode_text(raw, path))
    if not lines or not lines[0].strip().lower().startswith("xqpctick"):
        raise DataFormatError("expected the header 'XQPCTick;Tag'", path, 1)
    out = []
    for ln, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        m = _TAG.match(line)
        if m is None:
            raise DataFormatError(f"expected '<tick>;G<n> <name>', got {line.strip()[:40]!r}", path, ln)
        tick, g = parse_int(m.group(1), path, ln, "tick"), int(m.group(2))
        if tick >= 2 ** 62:  # the timestamps are int64
            raise DataFormatError(f"tick {m.group(1)[:30]} is out of range", path, ln)
        if not 1 <= g <= len(MSRC12_CLASS_NAMES):
            raise DataFormatError(f"gesture G{g} is not one of G1-G12", path, ln)
        out.append(((tick * 1000 + 49875 // 2) // 49875, g, ln))
    return out


def cut_windows(points: np.ndarray, first: int, num_frames: int,
                max_half: int = MAX_HALF_WINDOW) -> List[Tuple[int, int]]:
    """``[start, end)`` frame windows around sorted action-point frames (midpoint rule, see the
    module docstring), clipped to ``[first, num_frames)``."""
    p = np.asarray(points, dtype=np.int64)
    gaps = np.diff(p)
    out = []
    for k, c in enumerate(p):
        before = gaps[k - 1] if k > 0 else (gaps[0] if gaps.size else max_half)
        after = gaps[k] if k < gaps.size else (gaps[-1] if gaps.size else max_half)
        s = max(first, int(c - min(before // 2, max_half)))
        e = min(num_frames, int(c + min(after - after // 2, max_half)))
        out.append((s, max(e, s + 1)))
    return out


def _list_items(raw: Path, skipped: List[Dict[str, str]]) -> List[Item]:
    items = []
    for p, stem, m in find_named_files(raw, ".csv", _NAME, skipped):
        tag = Path(p).with_suffix(".tagstream")
        if not tag.is_file():
            skipped.append({"file": p, "reason": f"no {tag.name} next to it"})
        else:
            items.append((p, stem, str(tag)))
    return items


def _read_item(item: Item, max_persons: int) -> Tuple[List[RawClip], List[Dict[str, Any]]]:
    path, stem, tag_path = item
    modality, _, gesture, _, subject = _NAME.match(stem).groups()
    gesture = int(gesture)
    if not 1 <= gesture <= len(MSRC12_CLASS_NAMES):
        raise DataFormatError(f"gesture {gesture} in the name is not one of 1-12", path)
    ts, joints = read_msrc12_csv(path)
    tracked = np.flatnonzero(np.any(joints != 0, axis=(1, 2)))
    if tracked.size == 0:
        raise EmptySequenceError("no tracked frame", path)
    tags = read_msrc12_tags(tag_path)
    for t, g, ln in tags:
        if g != gesture:
            raise DataFormatError(f"action point of G{g} in a file of gesture {gesture}", tag_path, ln)
    if not tags:
        raise EmptySequenceError("no action points", tag_path)
    frames = np.array([int(np.argmin(np.abs(ts - t))) for t, _, _ in tags])
    order = np.argsort(frames, kind="stable")
    clips, notes = [], []
    for k, (s, e) in zip(order, cut_windows(frames[order], int(tracked[0]), len(ts))):
        ln = tags[k][2]
        if not np.any(joints[s:e] != 0):
            notes.append({"file": tag_path, "line": ln, "note": f"action point {k + 1}: no tracked frame; skipped"})
            continue
        meta = {"subject": int(subject), "gesture": gesture, "modality": int(modality), "repetition": int(k),
                "point": int(frames[k]), "start": s, "end": e, "length": e - s}
        clips.append(RawClip(one_person(joints[s:e], max_persons), gesture - 1, meta, f"{stem}_{k:02d}",
                             tag_path, ln))
    return clips, notes


def msrc12_train_mask(benchmark: str, meta: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``"xsub"``: the lower half (rounded up) of the subject ids present train, the rest test."""
    if benchmark != "xsub":
        raise ValueError(f"MSRC-12 has no benchmark {benchmark!r}; known: xsub")
    ids = np.unique(meta["subject"])
    train_ids = ids[: (len(ids) + 1) // 2]
    return np.isin(meta["subject"], train_ids), {"rule": "lower half of the subject ids present train",
                                                 "train_subjects": train_ids.tolist()}


SOURCE = ClipSource(MSRC12_CLASS_NAMES, MSRC12_META_KEYS, _list_items, _read_item, msrc12_train_mask, ("xsub",),
                    split_needs_all=True)
