"""Kinect v1 (20-joint) datasets: UTKinect-Action3D, MSR Action3D, MSR DailyActivity3D, UTD-MHAD.

Every reader returns joints in the **Kinect SDK v1 order** of the ``kinect20`` layout (1 HipCenter,
2 Spine, 3 ShoulderCenter, 4 Head, 5-8 left arm, 9-12 right arm, 13-16 left leg, 17-20 right leg),
reordering files that use another order:

- UTKinect-Action3D ``joints_sSS_eEE.txt``: ``frameNumber x1 y1 z1 .. x20 y20 z20`` per line, SDK
  order. Frame numbers are *not* contiguous: segments from ``actionLabel.txt``
  (``<action>: <startFrame> <endFrame>``) select rows by the frame-number column.
- MSR Action3D ``aAA_sSS_eEE_skeleton*.txt``: ``x y z c`` per line, 20 lines per frame, in MSR's
  own joint order (reordered here).
- MSR DailyActivity3D ``aAA_sSS_eEE_skeleton.txt``: header ``<frames> <20>``, then per frame a
  line ``40`` and two rows per joint, ``x y z c`` (world) and ``u v depth c`` (screen); SDK order
  (checked by bone lengths on the real sample). The world rows are kept.
- UTD-MHAD ``aA_sS_tT_skeleton.mat`` (``d_skel``, 20 x 3 x T) or a CSV export (20 rows, x,y,z per
  frame in columns); its order is the SDK order with the trunk reversed (1 head .. 4 hip centre).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, decode_text, parse_block, parse_int, read_source, split_lines

NUM_JOINTS = 20
UTKINECT_CLASSES = ["walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull",
                    "waveHands", "clapHands"]
#: SDK slot -> 0-based MSR Action3D joint index.
MSR_ACTION3D_TO_SDK = [6, 3, 2, 19, 0, 7, 9, 11, 1, 8, 10, 12, 4, 13, 15, 17, 5, 14, 16, 18]
#: SDK slot -> 0-based UTD-MHAD joint index (trunk reversed).
UTD_MHAD_TO_SDK = [3, 2, 1, 0] + list(range(4, 20))

_UTK_FILE = re.compile(r"joints_s(\d+)_e(\d+)\.txt$")
_UTK_SEQ = re.compile(r"^s(\d+)_e(\d+)$")


# -------------------------------------------------------------------------------------------
# UTKinect-Action3D

def read_utkinect_joints(source: Source, *, name: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read a UTKinect ``joints_sSS_eEE.txt`` file.

    Returns:
        ``(frame_numbers (F,) int64, joints (F, 20, 3) float64)`` in file order (frame numbers
        are increasing with gaps; a number may repeat).

    Raises:
        DataFormatError: a line without 61 numbers, a non-integer frame number, non-finite
            coordinates (file and line named), or an empty file.
    """
    raw, path = read_source(source, name)
    lines = split_lines(decode_text(raw, path))
    nums = [i + 1 for i, l in enumerate(lines) if l.strip()]
    body = [lines[i - 1] for i in nums]
    if not body:
        raise EmptySequenceError("empty joints file", path)
    arr = parse_block(body, nums, 1 + 3 * NUM_JOINTS, path, "values (frame number + 20 x xyz)")
    fn = arr[:, 0]
    bad = np.flatnonzero(fn != np.round(fn))
    if bad.size:
        raise DataFormatError(f"frame number {float(fn[bad[0]]):g} is not an integer", path, nums[bad[0]])
    bad = np.flatnonzero((fn < 0) | (fn >= 2.0 ** 53))  # int64 cast of 4e37 would wrap silently
    if bad.size:
        raise DataFormatError(f"frame number {float(fn[bad[0]]):g} is out of range (0 .. 2**53)", path, nums[bad[0]])
    return fn.astype(np.int64), arr[:, 1:].reshape(-1, NUM_JOINTS, 3)


@dataclass
class UTKinectSegment:
    """One labelled segment of ``actionLabel.txt``: sequence ``sSS_eEE``, action name, first and
    last frame numbers (``None`` for the ``NaN NaN`` entry) and the label-file line."""

    sequence: str
    action: str
    start: Optional[int]
    end: Optional[int]
    line: int

    @property
    def subject(self) -> int:
        """Subject number ``SS`` of ``sSS_eEE``."""
        return int(_UTK_SEQ.match(self.sequence).group(1))

    @property
    def episode(self) -> int:
        """Recording number ``EE`` of ``sSS_eEE``."""
        return int(_UTK_SEQ.match(self.sequence).group(2))


def read_utkinect_labels(source: Source, *, name: Optional[str] = None) -> List[UTKinectSegment]:
    """Read ``actionLabel.txt``: blocks of ``sSS_eEE`` followed by ``action: start end`` lines.

    ``NaN NaN`` intervals are returned with ``start = end = None``.

    Raises:
        DataFormatError: an action line before any sequence line, an unknown action, or
            unparsable frame numbers (file and line named).
    """
    raw, path = read_source(source, name)
    seq = None
    out: List[UTKinectSegment] = []
    for ln, line in enumerate(split_lines(decode_text(raw, path)), 1):
        s = line.strip()
        if not s:
            continue
        if _UTK_SEQ.match(s):
            seq = s
            continue
        if ":" not in s:
            raise DataFormatError(f"expected 'sSS_eEE' or 'action: start end', got {s[:40]!r}", path, ln)
        if seq is None:
            raise DataFormatError("action line before the first 'sSS_eEE' line", path, ln)
        act, rest = (p.strip() for p in s.split(":", 1))
        if act not in UTKINECT_CLASSES:
            raise DataFormatError(f"unknown action {act!r} (known: {', '.join(UTKINECT_CLASSES)})", path, ln)
        toks = rest.split()
        if len(toks) != 2:
            raise DataFormatError(f"expected 'start end' after '{act}:', got {rest[:40]!r}", path, ln)
        if all(t.lower() == "nan" for t in toks):
            out.append(UTKinectSegment(seq, act, None, None, ln))
            continue
        a = parse_int(toks[0], path, ln, "start frame")
        b = parse_int(toks[1], path, ln, "end frame")
        if b < a:
            raise DataFormatError(f"end frame {b} before start frame {a}", path, ln)
        out.append(UTKinectSegment(seq, act, a, b, ln))
    return out


@dataclass
class UTKinectClip:
    """A cut segment: ``clip`` ``(3, F, 20, 1)`` float32 plus where it came from."""

    name: str
    clip: np.ndarray
    label: int
    subject: int
    episode: int
    start: int
    end: int


def utkinect_clips(root: Union[str, "os.PathLike[str]"], labels: str = "actionLabel.txt"
                   ) -> Tuple[List[UTKinectClip], List[Dict[str, str]]]:
    """Cut every labelled UTKinect segment (rows whose frame number is in ``[start, end]``).

    Args:
        root: folder with ``joints_sSS_eEE.txt`` and the label file.
        labels: label file name (``"actionLabel.txt"`` or the corrected ``"actionLabel_modified.txt"``).

    Returns:
        ``(clips, skipped)``; ``skipped`` lists ``{"segment", "reason"}`` for NaN intervals and
        intervals containing no frame.

    Raises:
        FileNotFoundError: a joints file named in the labels is missing.
    """
    root = os.fspath(root)
    segs = read_utkinect_labels(os.path.join(root, labels))
    cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    clips: List[UTKinectClip] = []
    skipped: List[Dict[str, str]] = []
    for seg in segs:
        tag = f"{seg.sequence}/{seg.action}"
        if seg.start is None:
            skipped.append({"segment": tag, "reason": f"{labels} line {seg.line}: interval is NaN NaN"})
            continue
        if seg.sequence not in cache:
            p = os.path.join(root, f"joints_{seg.sequence}.txt")
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p} (named in {labels} line {seg.line}) does not exist")
            cache[seg.sequence] = read_utkinect_joints(p)
        fn, joints = cache[seg.sequence]
        sel = (fn >= seg.start) & (fn <= seg.end)
        if not sel.any():
            skipped.append({"segment": tag, "reason": f"{labels} line {seg.line}: no frame numbered "
                                                       f"{seg.start}..{seg.end}"})
            continue
        clip = joints[sel].transpose(2, 0, 1)[..., None].astype(np.float32)  # (3, F, 20, 1)
        clips.append(UTKinectClip(name=f"{seg.sequence}_{seg.action}", clip=clip,
                                  label=UTKINECT_CLASSES.index(seg.action), subject=seg.subject,
                                  episode=seg.episode, start=seg.start, end=seg.end))
    return clips, skipped


def load_utkinect(root: Union[str, "os.PathLike[str]"], *, labels: str = "actionLabel.txt",
                  preprocess=None, max_persons: int = 1):
    """UTKinect-Action3D as :class:`~asma.data.arrays.SkeletonArrays` (layout ``kinect20``).

    Args:
        root: folder with the 20 joints files and ``actionLabel.txt``.
        labels: label file name.
        preprocess: a :class:`~asma.data.preprocess.PreprocessConfig` (default: the lineage
            pipeline for ``kinect20``: centre ShoulderCenter, 50 frames, per-frame shoulder
            alignment); ``False`` keeps raw clips zero-padded to the longest one.
        max_persons: ``M`` (1; extra slots are zero).

    Returns:
        SkeletonArrays, data ``(199, 3, T, 20, M)``, labels 0..9, meta ``subject``, ``episode``,
        ``start``, ``end`` (frame numbers), ``length`` (frames before resampling).
    """
    from ..arrays import SkeletonArrays
    from ..preprocess import PreprocessConfig, preprocess_clip

    clips, skipped = utkinect_clips(root, labels)
    if preprocess is None:
        preprocess = PreprocessConfig.for_layout("kinect20")
    out = []
    for c in clips:
        x = c.clip
        if max_persons > 1:
            x = np.concatenate([x, np.zeros(x.shape[:3] + (max_persons - 1,), np.float32)], axis=3)
        out.append(x if preprocess is False else preprocess_clip(x, preprocess, name=c.name))
    T = max(x.shape[1] for x in out)
    data = np.zeros((len(out), 3, T, NUM_JOINTS, max_persons), np.float32)
    for i, x in enumerate(out):
        data[i, :, :x.shape[1]] = x
    meta = {"subject": np.array([c.subject for c in clips]), "episode": np.array([c.episode for c in clips]),
            "start": np.array([c.start for c in clips]), "end": np.array([c.end for c in clips]),
            "length": np.array([c.clip.shape[1] for c in clips])}
    arrays = SkeletonArrays(data=data, labels=np.array([c.label for c in clips]), layout="kinect20",
                            class_names=list(UTKINECT_CLASSES), meta=meta, names=[c.name for c in clips],
                            source=f"UTKinect-Action3D at {os.fspath(root)} ({labels})")
    arrays.skipped = skipped  # type: ignore[attr-defined]
    return arrays


def utkinect_cross_subject(arrays):
    """Split UTKinect SkeletonArrays into ``(train, test)``: odd subjects train, even test."""
    from ..splits import utkinect_train_mask

    m = utkinect_train_mask(arrays.meta["subject"])
    return arrays.subset(np.flatnonzero(m)), arrays.subset(np.flatnonzero(~m))


# -------------------------------------------------------------------------------------------
# MSR Action3D / DailyActivity3D

def read_msr_skeleton(source: Source, *, name: Optional[str] = None, order: str = "auto") -> np.ndarray:
    """Read an MSR Action3D or MSR DailyActivity3D skeleton file, in SDK order.

    Args:
        order: ``"auto"`` (DailyActivity3D files, recognised by their ``<frames> 20`` header,
            are SDK order; header-less Action3D files are MSR order), ``"msr"`` or ``"sdk"``.

    Returns:
        ``(F, 20, 4)`` float64: x, y, z and the confidence column ``c``.

    Raises:
        DataFormatError: a line count that is not a multiple of 20, a row without 4 numbers,
            a frame block whose size line is not 40, or non-finite values (file and line named).
    """
    if order not in ("auto", "msr", "sdk"):
        raise ValueError(f"order must be 'auto', 'msr' or 'sdk', got {order!r}")
    raw, path = read_source(source, name)
    lines = split_lines(decode_text(raw, path))
    nums = [i + 1 for i, l in enumerate(lines) if l.strip()]
    if not nums:
        raise EmptySequenceError("empty skeleton file", path)
    first = lines[nums[0] - 1].split()
    if len(first) == 2:  # DailyActivity3D: "<frames> <joints>", then per frame "40" + 40 rows
        F = parse_int(first[0], path, nums[0], "frame count")
        J = parse_int(first[1], path, nums[0], "joint count")
        if J != NUM_JOINTS:
            raise DataFormatError(f"expected {NUM_JOINTS} joints, got {J}", path, nums[0])
        rows: List[int] = []
        k = 1
        for f in range(F):
            if k >= len(nums):
                raise DataFormatError(f"file ends early: frame {f + 1} of {F} missing", path, nums[-1])
            n = parse_int(lines[nums[k] - 1], path, nums[k], "row count")
            if n != 2 * NUM_JOINTS:
                raise DataFormatError(f"expected {2 * NUM_JOINTS} rows per frame, got {n}", path, nums[k])
            if k + 1 + n > len(nums):
                raise DataFormatError(f"file ends early inside frame {f + 1}", path, nums[-1])
            rows.extend(nums[k + 1:k + 1 + n:2])  # world rows (x y z c); screen rows skipped
            k += 1 + n
        if k != len(nums):
            raise DataFormatError("unexpected data after the last frame", path, nums[k])
        arr = parse_block([lines[i - 1] for i in rows], rows, 4, path, "values (x y z c)")
        joints = arr.reshape(F, NUM_JOINTS, 4)
        perm = MSR_ACTION3D_TO_SDK if order == "msr" else None
    else:
        if len(nums) % NUM_JOINTS:
            raise DataFormatError(f"{len(nums)} joint lines is not a multiple of {NUM_JOINTS}", path, nums[-1])
        arr = parse_block([lines[i - 1] for i in nums], nums, 4, path, "values (x y z c)")
        joints = arr.reshape(-1, NUM_JOINTS, 4)
        perm = None if order == "sdk" else MSR_ACTION3D_TO_SDK
    if perm is not None:
        joints = joints[:, perm]
    return joints


# -------------------------------------------------------------------------------------------
# UTD-MHAD

def read_utd_mhad(source: Union[str, "os.PathLike[str]"], *, name: Optional[str] = None) -> np.ndarray:
    """Read a UTD-MHAD skeleton (``.mat`` with ``d_skel`` 20 x 3 x T, or the CSV export with
    20 rows of ``x,y,z`` per frame), reordered to the SDK order.

    Returns:
        ``(T, 20, 3)`` float64.
    """
    from .matlab import read_mat_v5

    p = os.fspath(source)
    path = name or p
    if p.lower().endswith(".mat"):
        mats = read_mat_v5(p, name=name)
        arr = mats.get("d_skel")
        if arr is None:
            raise DataFormatError(f"no numeric variable 'd_skel' (found: {', '.join(mats) or 'none'})", path)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.shape[:2] != (NUM_JOINTS, 3):
            raise DataFormatError(f"d_skel must be 20 x 3 x T, got {arr.shape}", path)
        joints = arr.transpose(2, 0, 1)
    else:
        raw, path = read_source(p, name)
        lines = split_lines(decode_text(raw, path))
        nums = [i + 1 for i, l in enumerate(lines) if l.strip()]
        if len(nums) != NUM_JOINTS:
            raise DataFormatError(f"expected {NUM_JOINTS} rows (one per joint), got {len(nums)}", path,
                                  nums[-1] if nums else None)
        ncols = len(lines[nums[0] - 1].rstrip().rstrip(",").split(","))
        if ncols % 3:
            raise DataFormatError(f"{ncols} columns is not a multiple of 3 (x,y,z per frame)", path, nums[0])
        arr = parse_block([lines[i - 1].rstrip().rstrip(",") for i in nums], nums, ncols, path,
                          "comma-separated values", sep=",")
        joints = arr.reshape(NUM_JOINTS, ncols // 3, 3).transpose(1, 0, 2)
    if not np.isfinite(joints).all():
        raise DataFormatError("non-finite coordinate", path)
    if joints.shape[0] == 0:
        raise EmptySequenceError("no frames", path)
    return np.ascontiguousarray(joints[:, UTD_MHAD_TO_SDK])


def joints_to_clip(joints: np.ndarray, max_persons: int = 1) -> np.ndarray:
    """``(F, V, C)`` joints of one person -> clip ``(C, F, V, M)`` float32 (extra persons 0)."""
    j = np.asarray(joints, dtype=np.float32)
    clip = np.zeros((j.shape[2], j.shape[0], j.shape[1], max_persons), np.float32)
    clip[..., 0] = j.transpose(2, 0, 1)
    return clip
