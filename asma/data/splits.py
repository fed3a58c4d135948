"""Official train/test splits (exact id lists) and split-file parsers.

NTU RGB+D (Shahroudy et al. 2016; Liu et al. 2019):
    - NTU60 cross-subject (xsub): the 20 training performers below, the other 20 test.
    - NTU60 cross-view (xview): cameras 2 and 3 train, camera 1 test.
    - NTU120 cross-subject (xsub): the 53 training performers below (a superset of NTU60's).
    - NTU120 cross-setup (xset): even setup ids 2, 4, ..., 32 train, odd ones test.
PKU-MMD: the official ``cross-subject.txt`` / ``cross-view.txt`` (Part II: ``*_v2.txt``) files
list the training and test video ids (:func:`read_pku_split_file`).
UTKinect-Action3D: cross-subject with odd subjects for training, even for testing.
"""
from __future__ import annotations

import os
import re
from typing import Dict, FrozenSet, List, Mapping, Tuple, Union

import numpy as np

NTU60_XSUB_TRAIN_SUBJECTS: Tuple[int, ...] = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS: Tuple[int, ...] = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
NTU60_XVIEW_TRAIN_CAMERAS: Tuple[int, ...] = (2, 3)
NTU120_XSET_TRAIN_SETUPS: Tuple[int, ...] = tuple(range(2, 33, 2))
NTU60_SETUPS: Tuple[int, ...] = tuple(range(1, 18))
NTU120_SETUPS: Tuple[int, ...] = tuple(range(1, 33))

#: benchmark name -> (metadata key, training ids)
NTU_BENCHMARKS: Dict[str, Dict[str, Tuple[str, Tuple[int, ...]]]] = {
    "ntu60": {"xsub": ("subject", NTU60_XSUB_TRAIN_SUBJECTS),
              "xview": ("camera", NTU60_XVIEW_TRAIN_CAMERAS)},
    "ntu120": {"xsub": ("subject", NTU120_XSUB_TRAIN_SUBJECTS),
               "xset": ("setup", NTU120_XSET_TRAIN_SETUPS)},
}


def ntu_train_mask(dataset: str, benchmark: str, meta: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean ``(N,)`` mask of the training samples of an NTU benchmark.

    Args:
        dataset: ``"ntu60"`` or ``"ntu120"``.
        benchmark: ``"xsub"``/``"xview"`` (NTU60) or ``"xsub"``/``"xset"`` (NTU120).
        meta: per-sample arrays with at least ``subject``, ``camera``, ``setup`` (each ``(N,)``).
    """
    try:
        key, ids = NTU_BENCHMARKS[dataset][benchmark]
    except KeyError:
        known = {d: sorted(b) for d, b in NTU_BENCHMARKS.items()}
        raise ValueError(f"unknown NTU benchmark {dataset}-{benchmark}; known: {known}") from None
    return np.isin(np.asarray(meta[key]), ids)


def utkinect_train_mask(subjects: np.ndarray) -> np.ndarray:
    """UTKinect-Action3D cross-subject: odd subjects train (``True``), even subjects test."""
    return np.asarray(subjects) % 2 == 1


_PKU_ID = re.compile(r"(?:\d{4}|A\d{2}N\d{2})-[LMR]")


def read_pku_split_file(path: Union[str, "os.PathLike[str]"]) -> Tuple[List[str], List[str]]:
    """Training and test video ids from an official PKU-MMD split file.

    The file is: a header line (``Training videos:``), one comma-separated line of ids such as
    ``0002-L, 0002-M, ...`` (Part II: ``A01N01-L``), a header line, the test id line. The first
    line holding ids is the training list, the second the test list; spacing, CRLF and a
    trailing comma are tolerated.

    Returns:
        ``(train_ids, test_ids)``.

    Raises:
        DataFormatError: when the file does not hold two id lines or they overlap.
    """
    from .errors import DataFormatError

    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace")
    groups = []
    for ln, line in enumerate(text.splitlines(), 1):
        ids = _PKU_ID.findall(line)
        if ids:
            groups.append((ln, ids))
    if len(groups) != 2:
        raise DataFormatError(f"expected 2 lines of video ids (train, test), found {len(groups)}", path)
    train, test = groups[0][1], groups[1][1]
    both = set(train) & set(test)
    if both:
        raise DataFormatError(f"{len(both)} video ids are in both lists, e.g. {sorted(both)[0]}", path,
                              groups[1][0])
    return train, test


def pku_video_id(name: str) -> str:
    """The video id (``0002-L`` / ``A01N01-L``) a PKU-MMD sequence file or clip name starts with."""
    m = _PKU_ID.search(os.path.basename(name))
    if m is None:
        raise ValueError(f"{name!r} does not contain a PKU-MMD video id like 0002-L or A01N01-L")
    return m.group(0)


def id_train_mask(ids: List[str], train_ids: FrozenSet[str] | set, test_ids: FrozenSet[str] | set,
                  what: str = "video") -> Tuple[np.ndarray, np.ndarray]:
    """Masks ``(train, test)`` for samples identified by string ids; ids in neither list are
    in neither mask (the caller reports them)."""
    a = np.array([i in train_ids for i in ids], dtype=bool)
    b = np.array([i in test_ids for i in ids], dtype=bool)
    return a, b
