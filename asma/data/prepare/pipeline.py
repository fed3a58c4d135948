"""The entry point :func:`prepare_dataset`: list, parse + preprocess (parallel, resumable), assemble
the stores, report; the steps live in the sibling modules (see :mod:`asma.data.prepare`)."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..preprocess import PreprocessConfig
from .listing import _list_items
from .parts import _fingerprint, _part_ok
from .report import PrepareSummary, _finish
from .specs import DATASETS, PREPARE_VERSION, PathLike, PrepareError, ProgressFn
from .workers import _run_jobs
from .write import _Assembler


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
        dataset: ``"ntu60"``, ``"ntu120"``, ``"pku1"``, ``"pku2"``, ``"utkinect"``, or a ``"clips"``
            dataset read by its reader module: ``"nwucla"``, ``"utd-mhad"``, ``"penn-action"``,
            ``"hdm05"``, ``"msrc12"`` (see :data:`DATASETS`).
        raw_dir: the extracted raw data (searched recursively). NTU: the ``.skeleton`` files (NTU120:
            both archives); PKU-MMD: skeletons, labels, split files; UTKinect: ``joints/``, labels.
        out_dir: where the stores ``<dataset>-<benchmark>/{train,test}`` and the report go.
        benchmarks: subset of the dataset's benchmarks (default: all).
        workers: parallel processes (``<= 1``: in this process).
        chunk_size: raw files per part file (default per dataset).
        skip_bad: record and skip bad files instead of stopping at the first one.
        preprocess: :class:`PreprocessConfig` (default: the dataset's lineage-compatible one).
        body_rule: NTU person slots, ``"activity"`` or ``"file-order"`` (lineage).
        max_persons: ``M`` (default: 2, UTKinect 1).
        missing_list: NTU missing-skeleton list path, or "none" (default: the official list of
            302 / 535 samples shipped with asma, :func:`official_missing_samples`).
        labels_dir, splits_dir: PKU-MMD label and split folders when not under ``raw_dir``.
        utkinect_labels: ``actionLabel.txt`` or ``actionLabel_modified.txt``.
        limit: only the first ``limit`` raw files (smoke tests, benchmarks).
        keep_work: keep the work directory (part files) after success.
        restart: ignore finished parts of an earlier run (otherwise reused when the settings and
            the raw files, by size and modification time, are unchanged).
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
    spec, benches, raw, out, M = _check_inputs(dataset, benchmarks, raw_dir, out_dir, body_rule, max_persons)
    cfg = preprocess or spec.default_preprocess()

    # 1. list
    skipped: List[Dict[str, str]] = []
    items, split_files = _list_items(spec, raw, benches, missing_list, labels_dir, splits_dir, utkinect_labels,
                                     skipped)
    files_found, items = len(items) + len(skipped), (items if limit is None else items[: int(limit)])
    if not items:
        raise PrepareError(f"no {dataset} files found under {raw}")
    plan = _plan(spec, dataset, items, cfg, body_rule, M, chunk_size, out, restart)

    # 2. parse + preprocess, and 3. each finished part into the stores
    stores_ = _Assembler(out, dataset, spec, benches, split_files, plan["sample_shape"], plan["meta_keys"],
                         plan["parts"], progress)
    try:
        t_parse = time.perf_counter()
        for i in range(len(plan["chunks"])):
            if i not in set(plan["todo"]):
                stores_.part_done(i)  # finished by an earlier run
        nworkers = _parse(plan, spec.kind, dataset, cfg, body_rule, M, skip_bad, workers, mp_context, progress,
                          len(items), stores_.part_done)
        t_write = time.perf_counter()
        parse_s = t_write - t_parse
        got, stores, unassigned = stores_.finish(cfg, body_rule, raw, len(items))
        write_s = time.perf_counter() - t_write
    except BaseException:
        stores_.abort()
        raise
    # 4. report
    chunks, todo = plan["chunks"], plan["todo"]
    summary = PrepareSummary(
        dataset=dataset, out_dir=str(out), stores=stores, files_found=files_found, files_used=len(items),
        samples=len(got["labels"]), skipped=skipped, bad=got["bad"], notes=got["notes"], unassigned=unassigned,
        resumed_chunks=len(chunks) - len(todo), chunks=len(chunks), workers=nworkers,
        seconds={"parse": round(parse_s, 3), "write": round(write_s, 3),
                 "total": round(time.perf_counter() - t_start, 3)},
        files_per_second=round(sum(len(chunks[i]) for i in todo) / parse_s, 2) if parse_s > 0 and todo else 0.0,
        settings={**{k: v for k, v in plan["settings"].items() if k != "items"}, "skip_bad": bool(skip_bad),
                  "benchmarks": list(benches)},
        report_path=str(out / f"{dataset}-prepare-report.json"))
    return _finish(summary, out, plan["work"], dataset, keep_work)


def _persons(max_persons: Optional[int], default: int) -> int:
    """``M``: the dataset's default when not given; 0 or fewer is refused (never silently the default)."""
    if max_persons is None:
        return default
    if int(max_persons) < 1:
        raise PrepareError(f"max_persons must be at least 1, got {max_persons}")
    return int(max_persons)


def _parse(plan: Dict[str, Any], kind: str, dataset: str, cfg: PreprocessConfig, body_rule: str, M: int,
           skip_bad: bool, workers: int, mp_context: Optional[str], progress: Optional[ProgressFn],
           total: int, part_done: Callable[[int], None]) -> int:
    """Run the chunks still to do (step 2), calling ``part_done(index)`` in this process as each
    part file is complete; returns the number of worker processes used."""
    chunks, todo = plan["chunks"], plan["todo"]
    done_files = sum(len(c) for i, c in enumerate(chunks) if i not in set(todo))
    if progress:
        progress("parse", done_files, total)
    jobs = [{"index": i, "items": chunks[i], "kind": kind, "dataset": dataset, "cfg": cfg.to_dict(),
             "body_rule": body_rule, "M": M, "skip_bad": bool(skip_bad), "part": str(plan["parts"][i]),
             "meta_keys": plan["meta_keys"], "sample_shape": plan["sample_shape"], "fingerprint": plan["prints"][i]}
            for i in todo]
    return _run_jobs(jobs, workers, mp_context, progress, done_files, total, part_done)


def _check_inputs(dataset: str, benchmarks: Optional[Sequence[str]], raw_dir: PathLike, out_dir: PathLike,
                  body_rule: str, max_persons: Optional[int]) -> Tuple[DatasetSpec, Tuple[str, ...], Path, Path, int]:
    """``(spec, benchmarks, raw, out, M)`` after checking the arguments (then ``out`` is created)."""
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
    if body_rule not in ("activity", "file-order"):
        raise PrepareError(f"body_rule must be 'activity' or 'file-order', got {body_rule!r}")
    M = _persons(max_persons, spec.num_persons)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return spec, benches, raw, out, M


def _plan(spec: DatasetSpec, dataset: str, items: List[Tuple], cfg: PreprocessConfig, body_rule: str, M: int,
          chunk_size: Optional[int], out: Path, restart: bool) -> Dict[str, Any]:
    """Chunks, part files, the work directory keyed by the settings, and the chunks still to do."""
    from ..store import remove_stale_temporaries

    T = cfg.length
    if T is None:
        raise PrepareError("preprocess.length must be set for a store (fixed-size clips)")
    V = spec.num_joints
    meta_keys = spec.meta_keys
    csize = int(chunk_size or spec.chunk_size)
    item_ids = [it[2] if spec.kind == "pku" else it[1] for it in items]
    # skip_bad is not part of the key: parts finished without it are valid with it (resume
    # after fixing or deciding to skip a bad file)
    settings = {"version": PREPARE_VERSION, "dataset": dataset, "preprocess": cfg.to_dict(),
                "body_rule": body_rule, "max_persons": M, "chunk_size": csize, "items": item_ids}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    work = out / ".asma-work" / f"{dataset}-{key}"
    if restart:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(work)  # half-written parts of a killed run
    remove_stale_temporaries(out, f".{dataset}-prepare-report.json")
    chunks = [items[i:i + csize] for i in range(0, len(items), csize)]
    parts = [work / f"part-{i:05d}.npz" for i in range(len(chunks))]
    prints = [[fp for it in chunk for fp in _fingerprint(spec.kind, it)] for chunk in chunks]
    todo = [i for i, p in enumerate(parts) if not (p.is_file() and _part_ok(p, meta_keys, prints[i]))]
    return {"chunks": chunks, "parts": parts, "prints": prints, "todo": todo, "work": work, "settings": settings,
            "meta_keys": meta_keys, "sample_shape": (3, T, V, M)}
