"""The entry point :func:`prepare_dataset`: list, parse + preprocess (parallel, resumable), assemble
the stores, report; the steps live in the sibling modules (see :mod:`asma.data.prepare`)."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..preprocess import PreprocessConfig
from .listing import _list_items
from .parts import _fingerprint, _load_part_meta, _part_ok
from .report import PrepareSummary, _finish
from .specs import DATASETS, META_KEYS, PREPARE_VERSION, PathLike, PrepareError, ProgressFn
from .splitting import _split_masks
from .workers import _run_jobs
from .write import _write_stores


def prepare_dataset(dataset: str, raw_dir: PathLike, out_dir: PathLike, *,
                    benchmarks: Optional[Sequence[str]] = None, workers: int = 2,
                    chunk_size: Optional[int] = None, skip_bad: bool = False,
                    preprocess: Optional[PreprocessConfig] = None, body_rule: str = "activity",
                    max_persons: Optional[int] = None, missing_list: Optional[PathLike] = None,
                    labels_dir: Optional[PathLike] = None, splits_dir: Optional[PathLike] = None,
                    utkinect_labels: str = "actionLabel.txt", limit: Optional[int] = None,
                    keep_work: bool = False, restart: bool = False, progress: Optional[ProgressFn] = None,
                    mp_context: Optional[str] = None) -> PrepareSummary:
    """Prepare a raw dataset into memory-mapped stores (see :mod:`asma.data.prepare`).

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
    items, split_files = _list_items(spec, raw, benches, missing_list, labels_dir, splits_dir, utkinect_labels,
                                     skipped)
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
    nworkers = _run_jobs(jobs, workers, mp_context, progress, done_files, len(items))
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
    masks, unassigned, split_info = _split_masks(spec, dataset, benches, meta, names, split_files)
    stores = _write_stores(out, dataset, spec, cfg, body_rule, raw, sample_shape, meta_keys, masks, split_info,
                           part_paths, parts, labels, names, meta, progress)
    write_s = time.perf_counter() - t_write

    # 4. report
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
    _finish(summary, out, work, dataset, keep_work)
    return summary
