"""NTU RGB+D 60/120 raw ``.skeleton`` files (Kinect v2, 25 joints).

File format (CRLF as shipped, LF accepted)::

    <numFrames>
    per frame:  <numBodies>            (0, 1, 2 or more)
      per body: <bodyID> <clippedEdges> <handLeftConf> <handLeftState> <handRightConf>
                <handRightState> <isRestricted> <leanX> <leanY> <trackingState>
                <numJoints = 25>
                25 x: x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState

:func:`read_ntu_skeleton` parses the whole structure (every body of every frame, all 12 joint
values). :func:`ntu_to_array` turns it into the ``(3, F, 25, M)`` clip, assigning bodies to the
``M`` person slots with one of two rules (see there). File names ``SsssCcccPpppRrrrAaaa`` carry
the metadata (:func:`parse_ntu_name`); the label is ``A - 1``. The action names, the
missing-skeleton lists, listing and writing files are in :mod:`asma.data.readers.ntu_files`.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, decode_text, in_range, parse_block, parse_int, read_source, split_lines
from .ntu_fast import read_xyz_fast, read_xyz_fast_many

NUM_JOINTS = 25
JOINT_VALUES = 12  # x y z depthX depthY colorX colorY oW oX oY oZ trackingState
BODY_INFO_VALUES = 10
BODY_RULES = ("activity", "file-order")

_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
NTU_META_KEYS = ("setup", "camera", "subject", "replication", "action")


def parse_ntu_name(name: str) -> Dict[str, int]:
    """Metadata from an NTU sample name ``SsssCcccPpppRrrrAaaa`` (path and ``.skeleton`` allowed;
    the name must match in full).

    Returns:
        dict with int ``setup``, ``camera``, ``subject`` (performer), ``replication``, ``action``
        (1-based; the class label is ``action - 1``).

    Raises:
        DataFormatError: when the name does not follow the pattern.
    """
    stem = ntu_sample_name(name)
    m = _NAME_RE.fullmatch(stem)  # in full: "S001C001P001R001A001 (1)" is a copy, not a sample
    if m is None:
        raise DataFormatError("file name does not match the NTU pattern SsssCcccPpppRrrrAaaa", stem)
    return dict(zip(NTU_META_KEYS, (int(g) for g in m.groups())))


def ntu_sample_name(name: str) -> str:
    """``"S001C001P001R001A001"`` from a path or name, with or without ``.skeleton``."""
    stem = os.path.basename(os.fspath(name).strip())
    if stem.endswith(".skeleton"):
        stem = stem[: -len(".skeleton")]
    return stem


@dataclass
class NtuSkeletonFile:
    """Everything in one ``.skeleton`` file, body by body.

    ``K`` is the total number of (frame, body) entries.

    Attributes:
        path: the file (or the name given for bytes input).
        num_frames: ``F`` from the header (frames with 0 bodies included).
        frame: ``(K,)`` int64 0-based frame of each body entry (non-decreasing).
        body_id: ``(K,)`` uint64 Kinect tracking id.
        body_info: ``(K, 9)`` float64 clippedEdges .. trackingState of the body line.
        joints: ``(K, 25, 12)`` float64: x y z (m), depthX depthY, colorX colorY,
            orientation W X Y Z, trackingState (0/1/2).
        line: ``(K,)`` int64 1-based line of each body-info line (for error messages).
    """

    path: str
    num_frames: int
    frame: np.ndarray
    body_id: np.ndarray
    body_info: np.ndarray
    joints: np.ndarray
    line: np.ndarray

    @property
    def name(self) -> str:
        """The sample name (file stem without ``.skeleton``)."""
        return ntu_sample_name(self.path)

    @property
    def bodies_per_frame(self) -> np.ndarray:
        """``(F,)`` int number of bodies listed in each frame."""
        return np.bincount(self.frame, minlength=self.num_frames).astype(np.int64)

    @property
    def body_ids(self) -> List[int]:
        """Distinct body ids, in order of first appearance."""
        _, first = np.unique(self.body_id, return_index=True)
        return [int(self.body_id[i]) for i in np.sort(first)]

    @property
    def xyz(self) -> np.ndarray:
        """``(K, 25, 3)`` camera-space joint positions in metres."""
        return self.joints[:, :, :3]


def read_ntu_skeleton(source: Source, *, name: Optional[str] = None, values: str = "all") -> NtuSkeletonFile:
    """Parse an NTU RGB+D ``.skeleton`` file (CRLF or LF).

    Args:
        source: a path, or the file's bytes.
        name: label for errors and :attr:`NtuSkeletonFile.path` (default: the path).
        values: ``"all"``: every value of the body and joint lines; ``"xyz"``: only the joint
            positions (about 4x faster, numpy on the bytes, :mod:`asma.data.readers.ntu_fast`;
            what :func:`read_ntu_clip` and ``asma data prepare`` use).
            The structure, the 12 values per joint line and x/y/z are checked the same way;
            the other 9 joint values are then not parsed.

    Returns:
        :class:`NtuSkeletonFile` with ``K`` body entries: ``joints`` ``(K, 25, 12)``
        (``values="xyz"``: ``(K, 25, 3)`` and ``body_info`` ``(K, 0)``).

    Raises:
        DataFormatError: truncated or corrupt file, a joint count other than 25, a line with
            the wrong number of values, a non-number, a non-finite x/y/z, or trailing data,
            naming the file and the 1-based line.
    """
    if values not in ("all", "xyz"):
        raise ValueError(f"values must be 'all' or 'xyz', got {values!r}")
    raw, path = read_source(source, name)
    fast = _read_xyz_fast(raw, path) if values == "xyz" else None
    if fast is not None:
        return fast
    lines = split_lines(decode_text(raw, path))
    if not lines:
        raise DataFormatError("empty file", path)
    num_frames, frames, ids, infos, info_lines, joint_starts = _walk(lines, path)
    k = len(frames)
    ncols = JOINT_VALUES if values == "all" else 3
    if k:
        body_info = (parse_block([" ".join(t) for t in infos], info_lines, BODY_INFO_VALUES - 1, path,
                                 "values on the body line")
                     if values == "all" else np.zeros((k, 0)))
        idx = (np.asarray(joint_starts, dtype=np.int64)[:, None] + np.arange(NUM_JOINTS)).ravel()
        joints = _joint_values(lines, idx, path, values).reshape(k, NUM_JOINTS, ncols)
    else:
        body_info = np.zeros((0, BODY_INFO_VALUES - 1 if values == "all" else 0))
        joints = np.zeros((0, NUM_JOINTS, ncols))
    return NtuSkeletonFile(
        path=path, num_frames=num_frames, frame=np.asarray(frames, dtype=np.int64),
        body_id=np.asarray(ids, dtype=np.uint64), body_info=body_info, joints=joints,
        line=np.asarray(info_lines, dtype=np.int64))


def read_ntu_skeletons(sources: Sequence[Source], *, values: str = "xyz", return_exceptions: bool = False,
                       batch_bytes: Optional[int] = 1 << 20) -> List[Union[NtuSkeletonFile, Exception]]:
    """:func:`read_ntu_skeleton` of several files, in order. With ``values="xyz"`` consecutive
    files are parsed together, up to ``batch_bytes`` of them per call
    (:func:`~asma.data.readers.ntu_fast.read_xyz_fast_many`), which saves the per-call cost of
    the numpy passes; the records are the same.

    Args:
        sources: paths, or files' bytes (named ``<bytes>`` in errors).
        values: as :func:`read_ntu_skeleton`.
        return_exceptions: put the ``DataFormatError`` or ``OSError`` of a bad file in its place
            in the list instead of raising the first one (as :func:`asyncio.gather`).
        batch_bytes: file bytes per parse call (at least one file; ``None``: all in one). Past
            about 1 MiB, glibc's default allocator hands the larger temporaries back to the kernel
            after each call and faults them in again; a process whose allocator keeps freed
            memory (:func:`asma.allocator.tune_allocator`, as the preparation workers) gains
            up to about 4 MiB.

    Returns:
        One :class:`NtuSkeletonFile` (or exception) per source.

    Raises:
        DataFormatError, OSError: the first bad file's, unless ``return_exceptions``.
    """
    if values not in ("all", "xyz"):
        raise ValueError(f"values must be 'all' or 'xyz', got {values!r}")
    read: List[Union[Tuple[bytes, str], OSError]] = []
    for src in sources:
        try:
            read.append(read_source(src))
        except OSError as exc:
            read.append(exc)
    raws = [r[0] for r in read if not isinstance(r, OSError)]
    fast: List[Optional[object]] = []
    if values == "xyz":
        i = 0
        while i < len(raws):  # consecutive files up to batch_bytes, at least one
            j, size = i + 1, len(raws[i])
            while j < len(raws) and (batch_bytes is None or size + len(raws[j]) <= batch_bytes):
                size += len(raws[j])
                j += 1
            fast += read_xyz_fast_many(raws[i:j])
            i = j
    else:
        fast = [None] * len(raws)
    out: List[Union[NtuSkeletonFile, Exception]] = []
    it = iter(fast)
    for r in read:
        if isinstance(r, OSError):
            out.append(r)
            continue
        rec = next(it)
        try:
            out.append(_xyz_file(rec, r[1]) if rec is not None else read_ntu_skeleton(r[0], name=r[1], values=values))
        except DataFormatError as exc:
            out.append(exc)
    if not return_exceptions:
        for r in out:
            if isinstance(r, Exception):
                raise r
    return out


def _walk(lines: Sequence, path: str):
    """The frame/body structure: ``(num_frames, frame of each body, body ids, body-line values
    after the id, their 1-based lines, 0-based first joint line of each body)`` of the file's
    lines (the exact path, which names the line of any problem)."""
    n_lines = len(lines)

    def need(i: int, what: str) -> str:
        if i >= n_lines:
            raise DataFormatError(f"file ends early: expected {what} at line {i + 1}", path, n_lines)
        return lines[i]

    num_frames = parse_int(lines[0], path, 1, "frame count")
    if num_frames < 0:
        raise DataFormatError(f"negative frame count {num_frames}", path, 1)
    i = 1
    frames: List[int] = []
    ids: List[int] = []
    infos: List[str] = []
    info_lines: List[int] = []
    joint_starts: List[int] = []
    for f in range(num_frames):
        nb = parse_int(need(i, f"the body count of frame {f + 1}"), path, i + 1, "body count")
        if nb < 0:
            raise DataFormatError(f"negative body count {nb}", path, i + 1)
        i += 1
        for b in range(nb):
            info = need(i, f"body {b + 1} of frame {f + 1}").split()
            if len(info) != BODY_INFO_VALUES:
                raise DataFormatError(
                    f"expected {BODY_INFO_VALUES} values on the body line, got {len(info)}", path, i + 1)
            bid = parse_int(info[0], path, i + 1, "body id")
            if not 0 <= bid < 2 ** 64:
                raise DataFormatError(f"body id {bid} out of the uint64 range", path, i + 1)
            nj = parse_int(need(i + 1, "the joint count"), path, i + 2, "joint count")
            if nj != NUM_JOINTS:
                raise DataFormatError(f"expected {NUM_JOINTS} joints, got {nj}", path, i + 2)
            if i + 2 + nj > n_lines:
                need(n_lines, f"joint {n_lines - i - 1} of body {b + 1} in frame {f + 1}")
            frames.append(f)
            ids.append(bid)
            infos.append(info[1:])
            info_lines.append(i + 1)
            joint_starts.append(i + 2)
            i += 2 + nj
    for j in range(i, n_lines):
        if lines[j].strip():
            raise DataFormatError(f"unexpected data after the last frame ({num_frames} frames): "
                                  f"{lines[j].strip()[:40]!r}", path, j + 1)
    return num_frames, frames, ids, infos, info_lines, joint_starts


def _read_xyz_fast(raw: bytes, path: str) -> Optional[NtuSkeletonFile]:
    """``values="xyz"`` by :func:`~asma.data.readers.ntu_fast.read_xyz_fast` (numpy on the bytes),
    or ``None`` for anything unusual: the exact path then parses the file or names the bad line."""
    rec = read_xyz_fast(raw)
    return None if rec is None else _xyz_file(rec, path)


def _xyz_file(rec, path: str) -> NtuSkeletonFile:
    """The :class:`NtuSkeletonFile` of a fast-path :class:`~asma.data.readers.ntu_fast.XyzRecord`."""
    return NtuSkeletonFile(path=path, num_frames=rec.num_frames, frame=rec.frame, body_id=rec.body_id,
                           body_info=np.zeros((len(rec.frame), 0)), joints=rec.xyz, line=rec.line)


def _joint_values(lines: List[str], idx: np.ndarray, path: str, values: str) -> np.ndarray:
    """``(J, 12)`` (``values="all"``) or ``(J, 3)`` float64 of the joint lines ``idx`` (0-based)."""
    jl = [lines[t] for t in idx.tolist()]
    if values == "xyz":
        # fast path: x, y, z and the last of the 12 columns converted (np.loadtxt refuses a row
        # with fewer columns); single-space separators counted (11 per line) so no row has more
        blob = "\n".join(jl)
        arr = None
        if blob.count(" ") == (JOINT_VALUES - 1) * len(jl) and "\t" not in blob:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    arr = np.loadtxt(jl, dtype=np.float64, ndmin=2, comments=None, usecols=(0, 1, 2, 11))
            except (ValueError, IndexError, TypeError):
                arr = None
        if arr is not None and arr.shape == (len(jl), 4) and in_range(arr[:, :3]).all():
            return arr[:, :3]
    vals = parse_block(jl, (idx + 1).tolist(), JOINT_VALUES, path, "values on the joint line", finite_cols=3)
    return vals if values == "all" else vals[:, :3]


def body_activity(rec: NtuSkeletonFile) -> Dict[int, float]:
    """Activity of every body id: the sum over its frames, joints and x/y/z of the squared
    deviation from its own temporal mean (i.e. ``frames x total temporal variance``).

    Long-lived, moving bodies score high; static detections (furniture) low.
    """
    out: Dict[int, float] = {}
    for bid in rec.body_ids:
        sel = rec.body_id == np.uint64(bid)
        xyz = rec.joints[sel, :, :3]
        out[bid] = float(((xyz - xyz.mean(axis=0, keepdims=True)) ** 2).sum())
    return out


#: bodies tracked in at most this many frames count as short-lived detections (the length
#: threshold of the common NTU denoising scripts)
SHORT_BODY_FRAMES = 11


def rank_bodies(rec: NtuSkeletonFile, short_frames: int = SHORT_BODY_FRAMES) -> List[int]:
    """Body ids, best first: bodies present in more than ``short_frames`` frames before
    short-lived ones, then by decreasing :func:`body_activity`, ties by first appearance."""
    ids = rec.body_ids
    if len(ids) <= 1:  # nothing to rank (most files): skip the activity
        return ids
    act = body_activity(rec)
    present = {b: int(np.unique(rec.frame[rec.body_id == np.uint64(b)]).size) for b in ids}
    return sorted(ids, key=lambda b: (present[b] <= short_frames, -act[b]))  # stable sort


def ntu_to_array(rec: NtuSkeletonFile, max_bodies: int = 2, body_rule: str = "activity",
                 dtype=np.float32) -> np.ndarray:
    """Clip array ``(3, F, 25, M)`` (x, y, z in metres) from a parsed file, ``M = max_bodies``.

    Body rules:
        - ``"activity"`` (default): bodies are tracked by their Kinect body id and ranked by
          :func:`rank_bodies`: bodies tracked in more than 11 frames first (shorter tracks are
          usually spurious detections), then by decreasing :func:`body_activity` (total
          temporal variance of the joints times the frames tracked), ties by first appearance.
          The ``M`` best are kept, the best in slot 0. A body keeps its slot in every frame;
          slots of absent bodies are 0.
        - ``"file-order"``: the ST-GCN / CrosSCLR / AimCLR ``gendata`` rule, for exact
          reproduction: in each frame the ``m``-th listed body goes to slot ``m``, bodies
          beyond ``M`` are dropped, ids are ignored (so a person can change slots).

    Frames with no body stay all-zero; the frame axis always has the file's ``F`` frames.
    """
    return np.ascontiguousarray(_ntu_array_view(rec, max_bodies, body_rule, dtype))


def _ntu_array_view(rec: NtuSkeletonFile, max_bodies: int = 2, body_rule: str = "activity",
                    dtype=np.float32) -> np.ndarray:
    """:func:`ntu_to_array` as a ``(3, F, 25, M)`` view of an ``(F, M, 25, 3)`` buffer, without the
    transposing copy (what ``prepare_dataset`` passes to :func:`~asma.data.preprocess.preprocess_clip`,
    which copies the kept frames anyway)."""
    if body_rule not in BODY_RULES:
        raise ValueError(f"unknown body_rule {body_rule!r}; use one of {BODY_RULES}")
    F = rec.num_frames
    if len(rec.frame) == 0 or max_bodies <= 0:
        return np.zeros((F, max_bodies, NUM_JOINTS, 3), dtype=dtype).transpose(3, 0, 2, 1)
    xyz = rec.joints[:, :, :3]
    if body_rule == "file-order":
        # position of each entry within its frame: index minus the frame's first entry
        first = np.searchsorted(rec.frame, rec.frame, side="left")
        slot = np.arange(len(rec.frame)) - first
    elif (rec.body_id == rec.body_id[0]).all():  # one body (most files): slot 0 throughout
        slot = np.zeros(len(rec.frame), np.int64)
    else:
        order = rank_bodies(rec)
        slot_of = {b: s for s, b in enumerate(order[:max_bodies])}
        ids, inv = np.unique(rec.body_id, return_inverse=True)  # one dict look-up per body, not per entry
        slot = np.array([slot_of.get(int(b), -1) for b in ids], dtype=np.int64)[inv.ravel()]
    keep = (slot >= 0) & (slot < max_bodies)
    # whole (25, 3) rows into a (F, M, 25, 3) buffer, then one transposing copy
    buf = np.zeros((F, max_bodies, NUM_JOINTS, 3), dtype=dtype)
    buf[rec.frame[keep], slot[keep]] = xyz[keep]
    return buf.transpose(3, 0, 2, 1)


def read_ntu_clip(source: Source, *, max_bodies: int = 2, body_rule: str = "activity",
                  name: Optional[str] = None) -> np.ndarray:
    """:func:`read_ntu_skeleton` + :func:`ntu_to_array`: ``(3, F, 25, M)`` float32.

    Raises:
        EmptySequenceError: when no frame holds a body.
    """
    rec = read_ntu_skeleton(source, name=name, values="xyz")
    if len(rec.frame) == 0:
        raise EmptySequenceError(f"no skeleton in any of the {rec.num_frames} frames", rec.path)
    return ntu_to_array(rec, max_bodies=max_bodies, body_rule=body_rule)
