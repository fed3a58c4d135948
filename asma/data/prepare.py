"""Raw dataset -> memory-mapped stores, in parallel and resumable (the library behind
``asma data prepare``).

Pipeline of :func:`prepare_dataset`:

1. **list** the raw files (sorted by sample name), drop the official missing-skeleton samples
   (NTU), duplicates (the same sample twice: the first path wins) and files that do not belong
   to the dataset; all are named in the report.
2. **parse + preprocess** in chunks with a ``ProcessPoolExecutor``: each chunk becomes a part
   file ``part-00012.npz`` in a work directory ``<out>/.asma-work/<dataset>-<settings hash>/``,
   written atomically. A re-run with the same settings reuses finished parts whose raw files
   are unchanged (size and modification time), i.e. it resumes after Ctrl-C, a crash or a bad
   file; different settings use a different work directory.
3. **assemble** one store per benchmark and part, ``<out>/<dataset>-<benchmark>/{train,test}``
   (see :mod:`asma.data.store`), written into a temporary directory and moved into place.
4. **report**: ``<out>/<dataset>-prepare-report.json`` lists skipped, duplicate, bad (file, line,
   reason) and unassigned samples, counts and timings; the work directory is deleted.

Bad input (truncated/corrupt files, wrong joint counts, NaN/inf, empty sequences) stops the run
with a :class:`~asma.data.errors.DataFormatError` naming file and line, or, with
``skip_bad=True``, is skipped and recorded.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DataFormatError
from .preprocess import PreprocessConfig, preprocess_clip

PathLike = Union[str, "os.PathLike[str]"]
ProgressFn = Callable[[str, int, int], None]
PREPARE_VERSION = 1


class PrepareError(RuntimeError):
    """The preparation cannot start or finish (missing inputs, no files, a bad file without
    ``skip_bad``); the message says what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """What :func:`prepare_dataset` needs to know about a dataset."""

    name: str
    kind: str  # "ntu", "pku", "utkinect"
    layout: str
    benchmarks: Tuple[str, ...]
    num_persons: int
    setups: Tuple[int, ...] = ()
    part: int = 0
    default_max_frames: Optional[int] = None
    chunk_size: int = 64
    description: str = ""

    @property
    def class_names(self) -> List[str]:
        """Class names in label order."""
        if self.kind == "ntu":
            from .readers.ntu import NTU120_CLASS_NAMES

            return NTU120_CLASS_NAMES[:60] if self.name == "ntu60" else list(NTU120_CLASS_NAMES)
        if self.kind == "pku":
            from .readers.pkummd import PKU_CLASS_NAMES

            return list(PKU_CLASS_NAMES)
        from .readers.kinect_v1 import UTKINECT_CLASSES

        return list(UTKINECT_CLASSES)

    def default_preprocess(self) -> PreprocessConfig:
        """Lineage-compatible defaults for this dataset (centre/shoulders from its layout)."""
        if self.layout == "kinect20":
            return PreprocessConfig(center_joint=2, shoulders=(4, 8), max_frames=self.default_max_frames)
        return PreprocessConfig(center_joint=20, shoulders=(4, 8), max_frames=self.default_max_frames)


DATASETS: Dict[str, DatasetSpec] = {
    "ntu60": DatasetSpec("ntu60", "ntu", "ntu25", ("xsub", "xview"), 2, setups=tuple(range(1, 18)),
                         description="NTU RGB+D 60 (setups S001-S017, 56,880 raw files, 302 without skeletons)"),
    "ntu120": DatasetSpec("ntu120", "ntu", "ntu25", ("xsub", "xset"), 2, setups=tuple(range(1, 33)),
                          description="NTU RGB+D 120 (setups S001-S032, 114,480 raw files, 535 without skeletons)"),
    "pku1": DatasetSpec("pku1", "pku", "ntu25", ("xsub", "xview"), 2, part=1, default_max_frames=300,
                        chunk_size=8, description="PKU-MMD Part I (1,076 sequences, ~21.5k clips, 51 classes)"),
    "pku2": DatasetSpec("pku2", "pku", "ntu25", ("xsub", "xview"), 2, part=2, default_max_frames=300,
                        chunk_size=8, description="PKU-MMD Part II (1,009 sequences, ~6.9k clips, 41 of 51 classes)"),
    "utkinect": DatasetSpec("utkinect", "utkinect", "kinect20", ("xsub",), 1, chunk_size=1,
                            description="UTKinect-Action3D (20 sequences, 199 clips, 10 classes, Kinect v1)"),
}

META_KEYS = {
    "ntu": ("setup", "camera", "subject", "replication", "action", "length", "bodies"),
    "pku": ("video", "view", "action", "start", "end", "confidence", "length", "truncated"),
    "utkinect": ("subject", "episode", "start", "end", "length"),
}


@dataclass
class PrepareSummary:
    """Result of :func:`prepare_dataset` (also written as the JSON report)."""

    dataset: str
    out_dir: str
    stores: Dict[str, Dict[str, int]]  # "<dataset>-<bench>" -> {"train": n, "test": n}
    files_found: int
    files_used: int
    samples: int
    skipped: List[Dict[str, str]] = field(default_factory=list)  # missing-skeleton list, duplicates, ...
    bad: List[Dict[str, Any]] = field(default_factory=list)  # {"file", "line", "error"}
    notes: List[Dict[str, Any]] = field(default_factory=list)
    unassigned: List[str] = field(default_factory=list)
    resumed_chunks: int = 0
    chunks: int = 0
    workers: int = 1
    seconds: Dict[str, float] = field(default_factory=dict)
    files_per_second: float = 0.0
    settings: Dict[str, Any] = field(default_factory=dict)
    report_path: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (the report's content)."""
        return asdict(self)


# -------------------------------------------------------------------------------------------
# listing

def _find_files(root: Path, pattern: re.Pattern) -> List[Path]:
    out = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".asma-work"))
        for f in files:
            if pattern.search(f):
                out.append(Path(dirpath) / f)
    return out


def _find_missing_list(raw: Path, dataset: str) -> Optional[Path]:
    cands = _find_files(raw, re.compile(r"samples_with_missing_skeletons.*\.txt$", re.I))
    if raw.parent != raw:
        cands += [p for p in raw.parent.glob("*.txt") if "missing_skeletons" in p.name.lower()]
    is120 = [p for p in cands if "120" in p.name]
    is60 = [p for p in cands if "120" not in p.name]
    if dataset == "ntu120":
        return sorted(is120)[0] if is120 else None
    return sorted(is60)[0] if is60 else (sorted(is120)[0] if is120 else None)


def _list_ntu(spec: DatasetSpec, raw: Path, missing_list, skipped: List[Dict[str, str]]) -> List[Tuple]:
    from .readers.ntu import parse_ntu_name, read_missing_list

    if missing_list is None:
        ml = _find_missing_list(raw, spec.name)
        if ml is None:
            want = ("NTU_RGBD120_samples_with_missing_skeletons.txt" if spec.name == "ntu120"
                    else "NTU_RGBD_samples_with_missing_skeletons.txt")
            raise PrepareError(
                f"the official missing-skeleton list ({want}) was not found under {raw}. Download it from "
                "https://github.com/shahroudy/NTURGB-D/tree/master/Matlab and pass --missing-list PATH "
                "(or put it in the raw folder), or pass --missing-list none to keep every file")
        missing = read_missing_list(ml)
    elif str(missing_list).lower() == "none":
        missing = set()
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
    from .readers.pkummd import parse_pku_name, sniff_pku_file

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
    from .readers.kinect_v1 import read_utkinect_labels

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


# -------------------------------------------------------------------------------------------
# workers

def _process_item(kind: str, item: Tuple, cfg: PreprocessConfig, body_rule: str, M: int,
                  dataset: str) -> Tuple[List[Tuple[np.ndarray, int, Dict[str, int], str]], List[Dict]]:
    """One raw file -> list of (clip (C,T,V,M), label, meta, name), notes."""
    notes: List[Dict] = []
    out = []
    if kind == "ntu":
        from .errors import EmptySequenceError
        from .readers.ntu import ntu_to_array, parse_ntu_name, read_ntu_skeleton

        path, name = item
        rec = read_ntu_skeleton(path)
        if len(rec.frame) == 0:
            raise EmptySequenceError(f"no skeleton in any of the {rec.num_frames} frames", path)
        x = ntu_to_array(rec, max_bodies=M, body_rule=body_rule)
        meta = parse_ntu_name(name)
        n_classes = 60 if dataset == "ntu60" else 120
        if not 1 <= meta["action"] <= n_classes:
            raise DataFormatError(f"action A{meta['action']:03d} is not one of the {n_classes} {dataset} classes",
                                  path)
        meta["length"] = rec.num_frames
        meta["bodies"] = len(rec.body_ids)
        try:
            clip = preprocess_clip(x, cfg, name=path)
        except DataFormatError as exc:
            raise type(exc)(exc.reason, path) from None
        out.append((clip, meta["action"] - 1, meta, name))
    elif kind == "pku":
        from .readers.pkummd import cut_pku_clips, parse_pku_name, read_pku_labels, read_pku_sequence

        skel_path, label_path, stem = item
        seq = read_pku_sequence(skel_path)
        if M != 2:
            seq = seq[..., :M] if M < 2 else np.concatenate(
                [seq, np.zeros(seq.shape[:3] + (M - 2,), np.float32)], axis=3)
        actions = read_pku_labels(label_path)
        pm = parse_pku_name(stem)
        for k, (a, clip, truncated) in enumerate(cut_pku_clips(seq, actions, path=skel_path, label_path=label_path)):
            name = f"{stem}_{k:03d}"
            if truncated:
                notes.append({"file": label_path, "line": a.line,
                              "note": f"interval {a.start}-{a.end} cut at the last frame {seq.shape[1]}"})
            try:
                y = preprocess_clip(clip, cfg, name=f"{label_path} line {a.line}")
            except DataFormatError as exc:
                raise type(exc)(exc.reason, label_path, a.line) from None
            meta = {"video": pm["video"], "view": pm["view"], "action": a.action, "start": a.start,
                    "end": a.end, "confidence": a.confidence, "length": clip.shape[1], "truncated": int(truncated)}
            out.append((y, a.action - 1, meta, name))
    elif kind == "utkinect":
        from .readers.kinect_v1 import UTKINECT_CLASSES, read_utkinect_joints

        path, seq, segs = item
        fn, joints = read_utkinect_joints(path)
        subject, episode = (int(v) for v in re.match(r"s(\d+)_e(\d+)", seq).groups())
        for action, start, end, line in segs:
            sel = (fn >= start) & (fn <= end)
            if not sel.any():
                notes.append({"file": path, "line": line,
                              "note": f"{seq} {action}: no frame numbered {start}..{end}; skipped"})
                continue
            clip = np.zeros((3, int(sel.sum()), 20, M), np.float32)
            clip[..., 0] = joints[sel].transpose(2, 0, 1)
            y = preprocess_clip(clip, cfg, name=f"{seq}_{action}")
            meta = {"subject": subject, "episode": episode, "start": start, "end": end, "length": int(sel.sum())}
            out.append((y, UTKINECT_CLASSES.index(action), meta, f"{seq}_{action}"))
    else:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return out, notes


def _item_path(item: Tuple) -> str:
    return item[0]


def _fingerprint(kind: str, item: Tuple) -> List[List]:
    """``[path, size, mtime_ns]`` of every raw file an item reads (a changed file invalidates its part)."""
    paths = [item[0], item[1]] if kind == "pku" else [item[0]]
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append([str(p), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(p), -1, -1])
    return out


def _save_part(part_path: str, samples, meta_keys: Sequence[str], sample_shape, bad, notes,
               fingerprint=None) -> None:
    n = len(samples)
    data = np.zeros((n,) + tuple(sample_shape), np.float32)
    for i, s in enumerate(samples):
        data[i] = s[0]
    arrays = {
        "data": data,
        "labels": np.array([s[1] for s in samples], dtype=np.int64),
        "names": np.array([s[3] for s in samples], dtype=str) if n else np.zeros(0, "<U1"),
        "report": np.array(json.dumps({"bad": bad, "notes": notes, "fingerprint": fingerprint or []})),
    }
    for k in meta_keys:
        arrays["meta_" + k] = np.array([s[2][k] for s in samples], dtype=np.int64)
    tmp = f"{part_path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, part_path)


def _run_chunk(job: Dict[str, Any]) -> Dict[str, Any]:
    """Worker: parse + preprocess ``job["items"]`` and write the part file. Picklable."""
    cfg = PreprocessConfig.from_dict(job["cfg"])
    samples, bad, notes = [], [], []
    for item in job["items"]:
        try:
            out, n = _process_item(job["kind"], item, cfg, job["body_rule"], job["M"], job["dataset"])
        except DataFormatError as exc:
            if not job["skip_bad"]:
                raise
            bad.append({"file": exc.path or _item_path(item), "line": exc.line, "error": str(exc)})
            continue
        except OSError as exc:
            if not job["skip_bad"]:
                raise DataFormatError(f"cannot read: {exc.strerror or exc}", _item_path(item)) from None
            bad.append({"file": _item_path(item), "line": None, "error": f"cannot read: {exc}"})
            continue
        except Exception as exc:  # a bug: say which file triggered it
            raise RuntimeError(f"unexpected {type(exc).__name__} while preparing {_item_path(item)}: {exc}") from exc
        samples.extend(out)
        notes.extend(n)
    _save_part(job["part"], samples, job["meta_keys"], job["sample_shape"], bad, notes, job.get("fingerprint"))
    return {"index": job["index"], "items": len(job["items"]), "samples": len(samples)}


def _load_part_meta(path: Path, meta_keys: Sequence[str]) -> Dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        out = {"labels": z["labels"], "names": z["names"].tolist(),
               "meta": {k: z["meta_" + k] for k in meta_keys},
               "report": json.loads(str(z["report"]))}
        out["n"] = len(out["labels"])
    return out


def _part_ok(path: Path, meta_keys: Sequence[str], fingerprint: List[List]) -> bool:
    """A finished part is reused when it loads and its raw files are unchanged."""
    try:
        rep = _load_part_meta(path, meta_keys)["report"]
    except Exception:
        return False
    return rep.get("fingerprint") == fingerprint


# -------------------------------------------------------------------------------------------
# main entry point

def prepare_dataset(dataset: str, raw_dir: PathLike, out_dir: PathLike, *,
                    benchmarks: Optional[Sequence[str]] = None, workers: int = 2,
                    chunk_size: Optional[int] = None, skip_bad: bool = False,
                    preprocess: Optional[PreprocessConfig] = None, body_rule: str = "activity",
                    max_persons: Optional[int] = None, missing_list: Optional[PathLike] = None,
                    labels_dir: Optional[PathLike] = None, splits_dir: Optional[PathLike] = None,
                    utkinect_labels: str = "actionLabel.txt", limit: Optional[int] = None,
                    keep_work: bool = False, restart: bool = False, progress: Optional[ProgressFn] = None,
                    mp_context: Optional[str] = None) -> PrepareSummary:
    """Prepare a raw dataset into memory-mapped stores (see the module docstring).

    Args:
        dataset: ``"ntu60"``, ``"ntu120"``, ``"pku1"``, ``"pku2"`` or ``"utkinect"``.
        raw_dir: the extracted raw data (searched recursively). NTU: the ``.skeleton`` files
            (for NTU120 both archives) and the missing-skeleton list; PKU-MMD: skeleton and
            label folders and the split files; UTKinect: ``joints/`` files and ``actionLabel.txt``.
        out_dir: where the stores ``<dataset>-<benchmark>/{train,test}`` and the report go.
        benchmarks: subset of the dataset's benchmarks (default: all).
        workers: parallel processes (``<= 1``: in this process).
        chunk_size: raw files per part file (default per dataset).
        skip_bad: record and skip bad files instead of stopping at the first one.
        preprocess: :class:`PreprocessConfig` (default: the dataset's lineage-compatible one).
        body_rule: NTU person slots, ``"activity"`` or ``"file-order"`` (lineage).
        max_persons: ``M`` (default: 2, UTKinect 1).
        missing_list: NTU missing-skeleton list path (default: found in ``raw_dir``), or "none".
        labels_dir, splits_dir: PKU-MMD label and split folders when not under ``raw_dir``.
        utkinect_labels: ``actionLabel.txt`` or ``actionLabel_modified.txt``.
        limit: only the first ``limit`` raw files (smoke tests, benchmarks).
        keep_work: keep the work directory (part files) after success.
        restart: ignore finished parts of an earlier run (they are otherwise reused when the
            settings and the raw files, by size and modification time, are unchanged).
        progress: ``callback(stage, done, total)`` with stage ``"parse"`` (files) or ``"write"`` (parts).
        mp_context: multiprocessing start method (default: ``fork`` where available).

    Returns:
        :class:`PrepareSummary`; the same content is in ``<out>/<dataset>-prepare-report.json``.

    Raises:
        PrepareError: unknown dataset/benchmark, missing inputs, no files.
        DataFormatError: the first bad file when ``skip_bad`` is false (finished parts are kept,
            so a re-run resumes).
    """
    t_start = time.perf_counter()
    if dataset not in DATASETS:
        raise PrepareError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    benches = tuple(benchmarks) if benchmarks else spec.benchmarks
    for b in benches:
        if b not in spec.benchmarks:
            raise PrepareError(f"{dataset} has no benchmark {b!r}; known: {', '.join(spec.benchmarks)}")
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise PrepareError(f"raw data folder {raw} does not exist")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = preprocess or spec.default_preprocess()
    M = int(max_persons or spec.num_persons)
    if body_rule not in ("activity", "file-order"):
        raise PrepareError(f"body_rule must be 'activity' or 'file-order', got {body_rule!r}")

    # 1. list
    skipped: List[Dict[str, str]] = []
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
    else:
        items = _list_utkinect(raw, utkinect_labels, skipped)
    files_found = len(items) + len(skipped)
    if limit is not None:
        items = items[: int(limit)]
    if not items:
        raise PrepareError(f"no {dataset} files found under {raw}")

    T = cfg.length
    if T is None:
        raise PrepareError("preprocess.length must be set for a store (fixed-size clips)")
    V = 20 if spec.layout == "kinect20" else 25
    sample_shape = (3, T, V, M)
    meta_keys = META_KEYS[spec.kind]
    csize = int(chunk_size or spec.chunk_size)
    item_ids = [it[1] if spec.kind in ("ntu", "utkinect") else it[2] for it in items]
    # skip_bad is not part of the key: parts finished without it are valid with it (resume
    # after fixing or deciding to skip a bad file)
    settings = {"version": PREPARE_VERSION, "dataset": dataset, "preprocess": cfg.to_dict(),
                "body_rule": body_rule, "max_persons": M, "chunk_size": csize, "items": item_ids}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    work = out / ".asma-work" / f"{dataset}-{key}"
    if restart:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    chunks = [items[i:i + csize] for i in range(0, len(items), csize)]
    part_paths = [work / f"part-{i:05d}.npz" for i in range(len(chunks))]
    prints = [[fp for it in chunk for fp in _fingerprint(spec.kind, it)] for chunk in chunks]
    todo = [i for i, p in enumerate(part_paths) if not (p.is_file() and _part_ok(p, meta_keys, prints[i]))]
    resumed = len(chunks) - len(todo)

    # 2. parse + preprocess
    t_parse = time.perf_counter()
    done_files = sum(len(chunks[i]) for i in range(len(chunks)) if i not in set(todo))
    if progress:
        progress("parse", done_files, len(items))
    jobs = [{"index": i, "items": chunks[i], "kind": spec.kind, "dataset": dataset, "cfg": cfg.to_dict(),
             "body_rule": body_rule, "M": M, "skip_bad": bool(skip_bad), "part": str(part_paths[i]),
             "meta_keys": meta_keys, "sample_shape": sample_shape, "fingerprint": prints[i]} for i in todo]
    nworkers = max(1, min(int(workers or 1), len(jobs))) if jobs else 1
    if nworkers <= 1:
        for job in jobs:
            r = _run_chunk(job)
            done_files += r["items"]
            if progress:
                progress("parse", done_files, len(items))
    else:
        method = mp_context or ("fork" if "fork" in mp.get_all_start_methods() else None)
        ctx = mp.get_context(method) if method else None
        with ProcessPoolExecutor(max_workers=nworkers, mp_context=ctx) as pool:
            pending = set()
            queue = list(jobs)
            try:
                # keep a bounded number of jobs in flight so a failure stops the run quickly
                while queue or pending:
                    while queue and len(pending) < 2 * nworkers:
                        pending.add(pool.submit(_run_chunk, queue.pop(0)))
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        r = fut.result()  # re-raises a worker's DataFormatError
                        done_files += r["items"]
                        if progress:
                            progress("parse", done_files, len(items))
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    parse_s = time.perf_counter() - t_parse

    # 3. assemble
    t_write = time.perf_counter()
    parts = [_load_part_meta(p, meta_keys) for p in part_paths]
    labels = np.concatenate([p["labels"] for p in parts]) if parts else np.zeros(0, np.int64)
    names = [n for p in parts for n in p["names"]]
    meta = {k: np.concatenate([p["meta"][k] for p in parts]) for k in meta_keys}
    bad = [b for p in parts for b in p["report"]["bad"]]
    notes = [n for p in parts for n in p["report"]["notes"]]
    N = len(labels)
    if N == 0:
        raise PrepareError(f"no usable sample in {len(items)} {dataset} files ({len(bad)} bad); see the errors "
                           f"with skip_bad=False")
    masks: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    unassigned: List[str] = []
    split_info: Dict[str, Any] = {}
    for b in benches:
        if spec.kind == "ntu":
            from .splits import NTU_BENCHMARKS, ntu_train_mask

            tr = ntu_train_mask(dataset, b, meta)
            masks[b] = (tr, ~tr)
            key_, ids = NTU_BENCHMARKS[dataset][b]
            split_info[b] = {"rule": f"{key_} in training ids", "train_ids": list(ids)}
        elif spec.kind == "pku":
            from .splits import id_train_mask, pku_video_id, read_pku_split_file

            tr_ids, te_ids = read_pku_split_file(split_files[b])
            vids = [pku_video_id(n) for n in names]
            tr, te = id_train_mask(vids, set(tr_ids), set(te_ids))
            masks[b] = (tr, te)
            lost = sorted({v for v, a, c in zip(vids, tr, te) if not a and not c})
            unassigned.extend(f"{b}: video {v} is in neither list of {split_files[b].name}" for v in lost)
            split_info[b] = {"rule": f"video id in {split_files[b].name}", "file": str(split_files[b]),
                             "train_videos": len(tr_ids), "test_videos": len(te_ids)}
        else:
            from .splits import utkinect_train_mask

            tr = utkinect_train_mask(meta["subject"])
            masks[b] = (tr, ~tr)
            split_info[b] = {"rule": "odd subjects train, even subjects test"}
    from .store import StoreWriter, replace_dir_atomic

    class_names = spec.class_names
    stores: Dict[str, Dict[str, int]] = {}
    writers: Dict[Tuple[str, str], Any] = {}
    positions: Dict[Tuple[str, str], np.ndarray] = {}
    tmp_dirs: Dict[str, Path] = {}
    try:
        for b, (tr, te) in masks.items():
            sname = f"{dataset}-{b}"
            tmp_dirs[b] = out / f".{sname}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            tmp_dirs[b].mkdir(parents=True)
            stores[sname] = {}
            for part_name, m in (("train", tr), ("test", te)):
                writers[(b, part_name)] = StoreWriter(tmp_dirs[b] / part_name, int(m.sum()), sample_shape,
                                                      spec.layout, class_names, meta_keys)
                pos = np.full(N, -1, dtype=np.int64)
                pos[m] = np.arange(int(m.sum()))
                positions[(b, part_name)] = pos
                stores[sname][part_name] = int(m.sum())
        offset = 0
        for pi, p in enumerate(part_paths):
            with np.load(p, allow_pickle=False) as z:
                data = z["data"]
            n = parts[pi]["n"]
            sl = slice(offset, offset + n)
            for (b, part_name), w in writers.items():
                pos = positions[(b, part_name)][sl]
                sel = pos >= 0
                if sel.any():
                    w.write_indexed(pos[sel], data[sel], labels[sl][sel],
                                    {k: meta[k][sl][sel] for k in meta_keys},
                                    [nm for nm, s in zip(names[sl], sel) if s])
            offset += n
            if progress:
                progress("write", pi + 1, len(part_paths))
        info_common = {"dataset": dataset, "preprocessing": cfg.to_dict(), "body_rule": body_rule,
                       "source": str(raw), "prepare_version": PREPARE_VERSION}
        for (b, part_name), w in writers.items():
            w.commit({**info_common, "split": {"benchmark": b, "part": part_name, **split_info[b]},
                      "name": f"{dataset}-{b}"})
        for b, tmp in tmp_dirs.items():
            replace_dir_atomic(tmp, out / f"{dataset}-{b}")
    except BaseException:
        for w in writers.values():
            w.abort()
        for tmp in tmp_dirs.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_s = time.perf_counter() - t_write

    total_s = time.perf_counter() - t_start
    parsed_files = sum(len(chunks[i]) for i in todo)
    summary = PrepareSummary(
        dataset=dataset, out_dir=str(out), stores=stores, files_found=files_found, files_used=len(items),
        samples=N, skipped=skipped, bad=bad, notes=notes, unassigned=unassigned, resumed_chunks=resumed,
        chunks=len(chunks), workers=nworkers,
        seconds={"parse": round(parse_s, 3), "write": round(write_s, 3), "total": round(total_s, 3)},
        files_per_second=round(parsed_files / parse_s, 2) if parse_s > 0 and parsed_files else 0.0,
        settings={**{k: v for k, v in settings.items() if k != "items"}, "skip_bad": bool(skip_bad),
                  "benchmarks": list(benches)},
        report_path=str(out / f"{dataset}-prepare-report.json"))
    from .store import _write_json_atomic

    _write_json_atomic(Path(summary.report_path), summary.to_dict())
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
        base = out / ".asma-work"
        for stale in base.glob(f"{dataset}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            base.rmdir()
        except OSError:
            pass
    return summary
