"""Step 2 of :func:`~asma.data.prepare.prepare_dataset`: the worker that parses and preprocesses a
chunk of raw files into a part file (:func:`_run_chunk`, picklable by its module path), and the
loop that runs the chunks in this process or a ``ProcessPoolExecutor``."""
from __future__ import annotations

import multiprocessing as mp
import re
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import DataFormatError
from ..preprocess import PreprocessConfig, preprocess_clip
from .parts import _save_part
from .specs import ProgressFn


# NTU files read per call, and the bytes parsed together: a pool worker's allocator keeps freed
# memory (_init_worker), so ~4 MiB (16 typical files) do not fault their temporaries in again per
# call; in this process (workers <= 1) the allocator is left alone and read_ntu_skeletons' 1 MiB holds
_NTU_BATCH = 16
_BATCH_BYTES: Optional[int] = 1 << 20


def _ntu_records(kind: str, items: List[Tuple]) -> Iterator[Any]:
    """Per item: its NTU file read by :func:`~asma.data.readers.ntu.read_ntu_skeletons` in
    batches (a record, or the file's ``DataFormatError``/``OSError``), or ``None``: read it alone
    (other kinds, and a batch that failed unexpectedly, so that the error names its file)."""
    if kind != "ntu":
        yield from (None for _ in items)
        return
    from ..readers.ntu import read_ntu_skeletons

    for i in range(0, len(items), _NTU_BATCH):
        batch = items[i:i + _NTU_BATCH]
        try:
            yield from read_ntu_skeletons([it[0] for it in batch], return_exceptions=True, batch_bytes=_BATCH_BYTES)
        except Exception:
            yield from (None for _ in batch)


def _process_item(kind: str, item: Tuple, cfg: PreprocessConfig, body_rule: str, M: int, dataset: str,
                  rec: Any = None) -> Tuple[List[Tuple[np.ndarray, int, Dict[str, int], str]], List[Dict]]:
    """One raw file -> list of (clip (C,T,V,M), label, meta, name), notes. ``rec``: the NTU
    file already read (:func:`_ntu_records`), or the exception reading it raised."""
    notes: List[Dict] = []
    out = []
    if kind == "ntu":
        from ..errors import EmptySequenceError
        from ..readers.ntu import _ntu_array_view, parse_ntu_name, read_ntu_skeleton

        path, name = item
        if isinstance(rec, Exception):
            raise rec
        if rec is None:
            rec = read_ntu_skeleton(path, values="xyz")
        if len(rec.frame) == 0:
            raise EmptySequenceError(f"no skeleton in any of the {rec.num_frames} frames", path)
        x = _ntu_array_view(rec, max_bodies=M, body_rule=body_rule)
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
        from ..readers.pkummd import cut_pku_clips, parse_pku_name, read_pku_labels, read_pku_sequence

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
        from ..readers.kinect_v1 import UTKINECT_CLASSES, read_utkinect_joints

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
            try:
                y = preprocess_clip(clip, cfg, name=f"{seq}_{action}")
            except DataFormatError as exc:
                raise type(exc)(f"{seq} {action}: {exc.reason}", path, line) from None
            meta = {"subject": subject, "episode": episode, "start": start, "end": end, "length": int(sel.sum())}
            out.append((y, UTKINECT_CLASSES.index(action), meta, f"{seq}_{action}"))
    elif kind == "clips":
        return _process_clips(dataset, item, cfg, M)
    else:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return out, notes


def _process_clips(dataset: str, item: Tuple, cfg: PreprocessConfig, M: int):
    """A ``"clips"`` dataset's item: its reader's :class:`RawClip` list, each preprocessed."""
    from .specs import DATASETS

    clips, notes = DATASETS[dataset].clip_source().read_item(item, M)
    out = []
    for c in clips:
        try:
            y = preprocess_clip(c.data, cfg, name=c.name)
        except DataFormatError as exc:
            raise type(exc)(f"{c.name}: {exc.reason}" if c.line is not None else exc.reason, c.path, c.line) from None
        out.append((y, c.label, c.meta, c.name))
    return out, notes


def _item_path(item: Tuple) -> str:
    return item[0]


def _run_chunk(job: Dict[str, Any]) -> Dict[str, Any]:
    """Worker: parse + preprocess ``job["items"]`` and write the part file. Picklable."""
    cfg = PreprocessConfig.from_dict(job["cfg"])
    samples, bad, notes = [], [], []
    for item, rec in zip(job["items"], _ntu_records(job["kind"], job["items"])):
        try:
            out, n = _process_item(job["kind"], item, cfg, job["body_rule"], job["M"], job["dataset"], rec)
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


def _init_worker(parent: int) -> None:
    """Pool initializer: end this worker when the main process dies, even by ``kill -9``
    (otherwise orphaned workers keep parsing for the rest of their queue), and keep freed memory
    in its heap (:func:`~asma.allocator.tune_allocator`): the parser's temporaries are otherwise
    returned to the kernel and faulted in again for every file (~140 page faults per file, about
    a tenth of the per-file time), which also lets it parse 16 NTU files at once. Only the
    worker's allocator changes, and the worker exits when the pool does."""
    import ctypes
    import os
    import signal
    import sys
    import threading
    import time

    from ...allocator import tune_allocator

    global _BATCH_BYTES
    if tune_allocator():
        _BATCH_BYTES = None  # all of a call's files parsed together

    if sys.platform.startswith("linux"):
        try:  # the kernel sends SIGKILL when the parent exits: immediate, no polling
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # portable fallback
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="asma-parent-watch", daemon=True).start()


def _run_jobs(jobs: List[Dict[str, Any]], workers: int, mp_context: Optional[str],
              progress: Optional[ProgressFn], done_files: int, total_files: int,
              part_done: Callable[[int], None]) -> int:
    """Run :func:`_run_chunk` on every job (``workers <= 1``: in this process), calling
    ``part_done(job index)`` here as each finishes; returns the number of worker processes used."""
    nworkers = max(1, min(int(workers or 1), len(jobs))) if jobs else 1
    if nworkers <= 1:
        for job in jobs:
            r = _run_chunk(job)
            part_done(r["index"])
            done_files += r["items"]
            if progress:
                progress("parse", done_files, total_files)
    else:
        method = mp_context or ("fork" if "fork" in mp.get_all_start_methods() else None)
        ctx = mp.get_context(method) if method else None
        import os

        with ProcessPoolExecutor(max_workers=nworkers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(os.getpid(),)) as pool:
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
                        part_done(r["index"])  # the workers go on with the queued jobs meanwhile
                        done_files += r["items"]
                        if progress:
                            progress("parse", done_files, total_files)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    return nworkers
