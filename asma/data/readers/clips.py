"""What a dataset reader hands to ``asma data prepare`` (:mod:`asma.data.prepare`): the raw clips
of one file (:class:`RawClip`) and the three hooks that list, read and split a dataset
(:class:`ClipSource`). The NW-UCLA, UTD-MHAD, Penn Action, HDM05 and MSRC-12 readers provide one
each; the pipeline stays the same for all of them (chunks, resume, ``skip_bad``, atomic stores).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

Item = Tuple[str, ...]  # (raw file path, sample name, further files the item reads...)


@dataclass
class RawClip:
    """One clip read from a raw file, before preprocessing.

    Attributes:
        data: ``(C, F, V, M)`` float (absent persons all zero).
        label: 0-based class.
        meta: integer metadata (the dataset's ``meta_keys``).
        name: sample name (unique in the dataset).
        path: the raw file (for errors).
        line: 1-based line in ``path`` where the clip is defined (cut sequences), else ``None``.
    """

    data: np.ndarray
    label: int
    meta: Dict[str, int]
    name: str
    path: str
    line: Optional[int] = None


@dataclass(frozen=True)
class ClipSource:
    """The prepare hooks of one dataset.

    Attributes:
        class_names: names in label order.
        meta_keys: the integer metadata every :class:`RawClip` carries.
        list_items: ``(raw_dir, skipped) -> items`` sorted by sample name; files left out are
            appended to ``skipped`` as ``{"file": ..., "reason": ...}``.
        read_item: ``(item, max_persons) -> (clips, notes)``; raises
            :class:`~asma.data.errors.DataFormatError` naming file and line.
        train_mask: ``(benchmark, meta) -> (train (N,) bool, split info)``; the rest is test.
        benchmarks: the benchmark names ``train_mask`` knows.
        split_needs_all: ``train_mask`` decides from all samples together (MSRC-12: the lower
            half of the subjects present); otherwise sample by sample, so that ``asma data
            prepare`` writes each part into the stores while the next parts are parsed.
    """

    class_names: Tuple[str, ...]
    meta_keys: Tuple[str, ...]
    list_items: Callable[[Path, List[Dict[str, str]]], List[Item]]
    read_item: Callable[[Item, int], Tuple[List[RawClip], List[Dict[str, Any]]]]
    train_mask: Callable[[str, Dict[str, np.ndarray]], Tuple[np.ndarray, Dict[str, Any]]]
    benchmarks: Tuple[str, ...] = field(default=())
    split_needs_all: bool = False


def find_named_files(root: Path, suffix: str, name_re: re.Pattern,
                     skipped: List[Dict[str, str]]) -> List[Tuple[str, str, re.Match]]:
    """Files under ``root`` (recursive, sorted) ending in ``suffix`` (any case) whose stem
    matches ``name_re``, as ``(path, stem, match)``; other files with that suffix and second
    copies of a stem go to ``skipped``."""
    found: List[Tuple[str, str, re.Match]] = []
    seen: Dict[str, str] = {}
    paths = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".asma-work"))
        paths += [Path(dirpath) / f for f in files if f.lower().endswith(suffix.lower())]
    for p in sorted(paths, key=lambda q: (q.name.lower(), str(q))):
        stem = p.name[: -len(suffix)]
        m = name_re.match(stem)
        if m is None:
            skipped.append({"file": str(p), "reason": f"name does not match {name_re.pattern}"})
        elif stem.lower() in seen:
            skipped.append({"file": str(p), "reason": f"duplicate of {seen[stem.lower()]}"})
        else:
            seen[stem.lower()] = str(p)
            found.append((str(p), stem, m))
    return found


def one_person(joints: np.ndarray, max_persons: int) -> np.ndarray:
    """A single person's ``(F, V, C)`` joints as a clip with ``max_persons`` slots.

    Shapes: ``(F, V, C) -> (C, F, V, M)`` float32, persons ``1..M-1`` zero.
    """
    F, V, C = joints.shape
    clip = np.zeros((C, F, V, max(1, int(max_persons))), np.float32)
    clip[..., 0] = np.transpose(joints, (2, 0, 1))
    return clip


def subject_parity_mask(subjects: np.ndarray) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Odd subjects train, even subjects test (UTD-MHAD, UTKinect)."""
    return np.asarray(subjects) % 2 == 1, {"rule": "odd subjects train, even subjects test"}
