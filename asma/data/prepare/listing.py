"""Step 1 of :func:`~asma.data.prepare.prepare_dataset`: find the raw files of a dataset (sorted by
sample name) and record the ones left out (missing-skeleton list, duplicates, foreign files)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..errors import DataFormatError
from .specs import DatasetSpec, PathLike, PrepareError


def _find_files(root: Path, pattern: re.Pattern) -> List[Path]:
    out = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".asma-work"))
        for f in files:
            if pattern.search(f):
                out.append(Path(dirpath) / f)
    return out


def official_missing_samples(dataset: str) -> Set[str]:
    """The official "samples with missing skeletons" of ``"ntu60"`` (302 names) or ``"ntu120"``
    (535), shipped with asma (``asma/data/prepare/missing_skeletons/``)."""
    from importlib.resources import files

    from ..readers.ntu_files import parse_missing_list

    if dataset not in ("ntu60", "ntu120"):
        raise ValueError(f"no missing-skeleton list for {dataset!r}; use 'ntu60' or 'ntu120'")
    return parse_missing_list(files(__package__).joinpath("missing_skeletons", f"{dataset}.txt").read_text("utf-8"))


def _list_ntu(spec: DatasetSpec, raw: Path, missing_list, skipped: List[Dict[str, str]]) -> List[Tuple]:
    from ..readers.ntu import parse_ntu_name
    from ..readers.ntu_files import read_missing_list

    if missing_list is None:
        missing = official_missing_samples(spec.name)
    elif str(missing_list).lower() == "none":
        missing = set()
    elif not Path(missing_list).is_file():
        raise PrepareError(f"missing-skeleton list {missing_list} does not exist (leave --missing-list out to use "
                           "the official list shipped with asma, or pass 'none' to keep every file)")
    else:
        missing = read_missing_list(missing_list)
    files = _find_files(raw, re.compile(r"\.skeleton$"))
    files.sort(key=lambda p: (p.name, str(p)))
    items, seen = [], {}
    for p in files:
        name = p.name[: -len(".skeleton")]
        try:
            meta = parse_ntu_name(name)
        except DataFormatError:
            skipped.append({"file": str(p), "reason": "name is not SsssCcccPpppRrrrAaaa"})
            continue
        if meta["setup"] not in spec.setups:
            continue  # e.g. NTU120-only setups when preparing NTU60
        if name in seen:
            skipped.append({"file": str(p), "reason": f"duplicate of {seen[name]}"})
            continue
        seen[name] = str(p)
        if name in missing:
            skipped.append({"file": str(p), "reason": "in the official missing-skeleton list"})
            continue
        items.append((str(p), name))
    return items


_PKU_STEM = re.compile(r"^(?:\d{4}|A\d{2}N\d{2})-[LMR]$")


def _list_pku(spec: DatasetSpec, raw: Path, labels_dir: Optional[PathLike],
              skipped: List[Dict[str, str]]) -> List[Tuple]:
    from ..readers.pkummd import parse_pku_name, sniff_pku_file

    roots = [raw] + ([Path(labels_dir)] if labels_dir else [])
    skel: Dict[str, str] = {}
    labs: Dict[str, str] = {}
    for root in roots:
        for p in sorted(_find_files(root, re.compile(r"\.txt$", re.I))):
            stem = p.stem
            if not _PKU_STEM.match(stem):
                continue
            if parse_pku_name(stem)["part"] != spec.part:
                continue
            kind = sniff_pku_file(p)
            target = skel if kind == "skeleton" else labs if kind == "labels" else None
            if target is None:
                skipped.append({"file": str(p), "reason": "neither a skeleton nor a label file"})
            elif stem in target:
                skipped.append({"file": str(p), "reason": f"duplicate of {target[stem]}"})
            else:
                target[stem] = str(p)
    items = []
    for stem in sorted(skel):
        if stem not in labs:
            skipped.append({"file": skel[stem], "reason": "no label file with the same name"})
            continue
        items.append((skel[stem], labs[stem], stem))
    for stem in sorted(set(labs) - set(skel)):
        skipped.append({"file": labs[stem], "reason": "label file without a skeleton file"})
    return items


def _find_pku_splits(spec: DatasetSpec, raw: Path, splits_dir: Optional[PathLike]) -> Dict[str, Path]:
    roots = ([Path(splits_dir)] if splits_dir else []) + [raw]
    out: Dict[str, Path] = {}
    pat = re.compile(r"^cross[-_ ]?(subject|view)(_v2)?\.txt$", re.I)
    for root in roots:
        for p in sorted(_find_files(root, pat)):
            m = pat.match(p.name)
            v2 = bool(m.group(2))
            if v2 != (spec.part == 2):
                continue
            bench = "xsub" if m.group(1).lower() == "subject" else "xview"
            out.setdefault(bench, p)
    return out


def _list_utkinect(raw: Path, labels: str, skipped: List[Dict[str, str]]) -> List[Tuple]:
    from ..readers.kinect_v1 import read_utkinect_labels

    lp = raw / labels
    if not lp.is_file():
        found = _find_files(raw, re.compile(re.escape(labels) + "$"))
        if not found:
            raise PrepareError(f"UTKinect label file {labels} not found under {raw}")
        lp = found[0]
    segs = read_utkinect_labels(lp)
    by_seq: Dict[str, List] = {}
    for s in segs:
        if s.start is None:
            skipped.append({"file": f"{lp}:{s.line}", "reason": f"{s.sequence} {s.action}: interval is NaN NaN"})
            continue
        by_seq.setdefault(s.sequence, []).append((s.action, s.start, s.end, s.line))
    items = []
    for seq in sorted(by_seq):
        p = lp.parent / f"joints_{seq}.txt"
        if not p.is_file():
            raise PrepareError(f"{p} (named in {lp.name}) does not exist")
        items.append((str(p), seq, by_seq[seq]))
    return items


def _list_items(spec: DatasetSpec, raw: Path, benches: Sequence[str], missing_list, labels_dir: Optional[PathLike],
                splits_dir: Optional[PathLike], utkinect_labels: str,
                skipped: List[Dict[str, str]]) -> Tuple[List[Tuple], Dict[str, Path]]:
    """The raw items of ``spec`` under ``raw`` and, for PKU-MMD, the split file of each benchmark."""
    split_files: Dict[str, Path] = {}
    if spec.kind == "ntu":
        items = _list_ntu(spec, raw, missing_list, skipped)
    elif spec.kind == "pku":
        split_files = _find_pku_splits(spec, raw, splits_dir)
        lacking = [b for b in benches if b not in split_files]
        if lacking:
            names = {"xsub": "cross_subject", "xview": "cross_view"}
            want = [names[b] + ("_v2" if spec.part == 2 else "") + ".txt" for b in lacking]
            raise PrepareError(f"PKU-MMD split file(s) {', '.join(want)} not found under "
                               f"{splits_dir or raw}; pass --splits DIR")
        items = _list_pku(spec, raw, labels_dir, skipped)
    elif spec.kind == "clips":
        items = spec.clip_source().list_items(raw, skipped)
    else:
        items = _list_utkinect(raw, utkinect_labels, skipped)
    return items, split_files
