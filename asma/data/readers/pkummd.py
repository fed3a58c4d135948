"""PKU-MMD Part I and Part II: continuous skeleton sequences + action label files.

- Sequence file (``0002-L.txt``; Part II ``A01N01-L.txt``): one line per frame with 150 numbers,
  person 1's 25 joints x (x, y, z) then person 2's (all zero when absent), Kinect v2 / NTU joint
  order, metres.
- Label file (same name, in the label folder): one action per line,
  ``action_id,start_frame,end_frame,confidence`` with 1-based inclusive frame numbers.
- Split files: see :func:`asma.data.splits.read_pku_split_file`.

Clips are cut with :func:`cut_pku_clips`; the label is ``action_id - 1`` (51 classes for both
parts: Part II uses 41 of the 51 Part I action ids).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, decode_text, parse_block, read_source, split_lines

PKU_VALUES_PER_FRAME = 150
PKU_NUM_CLASSES = 51
#: PKU-MMD action names by id (1-based id = index + 1), as in Actions.xlsx (alphabetical there).
PKU_CLASS_NAMES = [
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking", "hopping (one foot jumping)",
    "hugging other person", "jump up", "kicking other person", "kicking something",
    "make a phone call/answer phone", "pat on back of other person", "pickup",
    "playing with phone/tablet", "point finger at the other person", "pointing to something with finger",
    "punching/slapping other person", "pushing other person", "put on a hat/cap",
    "put something inside pocket", "reading", "rub two hands together", "salute", "sitting down",
    "standing up", "take off a hat/cap", "take off glasses", "take off jacket",
    "take out something from pocket", "taking a selfie", "tear up paper", "throw",
    "touch back (backache)", "touch chest (stomachache/heart pain)", "touch head (headache)",
    "touch neck (neckache)", "typing on a keyboard", "use a fan (with hand or paper)/feeling warm",
    "wear jacket", "wear on glasses", "wipe face", "writing",
]
assert len(PKU_CLASS_NAMES) == PKU_NUM_CLASSES

_P1 = re.compile(r"^(\d{4})-([LMR])$")
_P2 = re.compile(r"^A(\d{2})N(\d{2})-([LMR])$")
_VIEWS = {"L": 1, "M": 2, "R": 3}


def parse_pku_name(name: str) -> Dict[str, int]:
    """Metadata from a PKU-MMD sequence name (path/extension allowed).

    Part I ``0002-L`` -> ``{"part": 1, "video": 2, "view": 1}``; Part II ``A10N08-L`` ->
    ``{"part": 2, "video": 1008, "view": 1}`` (``video = 100 * A + N``). Views L/M/R = 1/2/3.
    """
    stem = os.path.splitext(os.path.basename(os.fspath(name)))[0]
    m = _P1.match(stem)
    if m:
        return {"part": 1, "video": int(m.group(1)), "view": _VIEWS[m.group(2)]}
    m = _P2.match(stem)
    if m:
        return {"part": 2, "video": 100 * int(m.group(1)) + int(m.group(2)), "view": _VIEWS[m.group(3)]}
    raise DataFormatError("file name is not a PKU-MMD video id (0002-L or A01N01-L)", stem)


def read_pku_sequence(source: Source, *, name: Optional[str] = None) -> np.ndarray:
    """Read a PKU-MMD skeleton sequence.

    Returns:
        ``(3, F, 25, 2)`` float32 (x, y, z; person 2 all-zero where absent).

    Raises:
        DataFormatError: a line without exactly 150 numbers, a non-number or a non-finite
            value, naming the file and line; an empty file.
    """
    raw, path = read_source(source, name)
    lines = split_lines(decode_text(raw, path))
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise EmptySequenceError("empty sequence file", path)
    arr = parse_block(lines, list(range(1, len(lines) + 1)), PKU_VALUES_PER_FRAME, path,
                      "values per frame (2 bodies x 25 joints x xyz)")
    F = arr.shape[0]
    return np.ascontiguousarray(arr.reshape(F, 2, 25, 3).transpose(3, 0, 2, 1), dtype=np.float32)


@dataclass
class PkuAction:
    """One labelled interval: ``action`` id (1-based), 1-based inclusive ``start``/``end``
    frames, ``confidence``, and the label-file ``line`` it came from."""

    action: int
    start: int
    end: int
    confidence: int
    line: int


def read_pku_labels(source: Source, *, name: Optional[str] = None) -> List[PkuAction]:
    """Read a PKU-MMD label file (``action_id,start_frame,end_frame,confidence`` per line).

    Raises:
        DataFormatError: wrong field count, non-integers, ``start > end``, ``start < 1`` or an
            action id outside 1..51, naming the file and line.
    """
    raw, path = read_source(source, name)
    out: List[PkuAction] = []
    for ln, line in enumerate(split_lines(decode_text(raw, path)), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        if parts and parts[-1] == "":
            parts = parts[:-1]
        if len(parts) == 1:
            parts = line.split()
        if len(parts) != 4:
            raise DataFormatError(f"expected 4 values (action,start,end,confidence), got {len(parts)}", path, ln)
        try:
            vals = [int(float(p)) for p in parts]
            if any(float(p) != int(float(p)) for p in parts):
                raise ValueError
        except (ValueError, OverflowError):
            raise DataFormatError(f"expected integers, got {line.strip()[:60]!r}", path, ln) from None
        a, s, e, c = vals
        if not 1 <= a <= PKU_NUM_CLASSES:
            raise DataFormatError(f"action id {a} outside 1..{PKU_NUM_CLASSES}", path, ln)
        if s < 1 or e < s:
            raise DataFormatError(f"bad interval start={s} end={e} (1-based, start <= end)", path, ln)
        out.append(PkuAction(a, s, e, c, ln))
    return out


def cut_pku_clips(seq: np.ndarray, actions: List[PkuAction], *, path: Optional[str] = None,
                  label_path: Optional[str] = None) -> List[Tuple[PkuAction, np.ndarray, bool]]:
    """Cut a sequence into labelled clips.

    Args:
        seq: ``(3, F, 25, 2)`` from :func:`read_pku_sequence`.
        actions: from :func:`read_pku_labels`.

    Returns:
        one ``(action, clip, truncated)`` per interval, ``clip`` ``(3, end - start + 1, 25, 2)``
        (frames ``start-1 .. end-1``); an interval running past the sequence end by a few
        frames is cut at the end and flagged ``truncated=True``.

    Raises:
        DataFormatError: an interval starting after the last frame (names the label line).
    """
    F = seq.shape[1]
    out = []
    for a in actions:
        if a.start > F:
            raise DataFormatError(f"interval {a.start}-{a.end} starts after the last frame "
                                  f"({F} frames in {os.path.basename(path or '?')})", label_path, a.line)
        end = min(a.end, F)
        out.append((a, seq[:, a.start - 1:end], end < a.end))
    return out


def sniff_pku_file(path: Union[str, "os.PathLike[str]"]) -> str:
    """``"labels"`` when the first non-empty line has commas (or 4 values), ``"skeleton"`` when
    it has 150 values, else ``"unknown"``."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for line in head.splitlines():
        line = line.strip()
        if not line:
            continue
        if b"," in line:
            return "labels"
        n = len(line.split())
        if n == 4:
            return "labels"
        if n == PKU_VALUES_PER_FRAME:
            return "skeleton"
        return "unknown"
    return "unknown"
