"""Step 3 of :func:`~asma.data.prepare.prepare_dataset`: assemble the part files into one store per
benchmark and part, ``<out>/<dataset>-<benchmark>/{train,test}`` (see :mod:`asma.data.store`),
written into a temporary directory and moved into place."""
from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..preprocess import PreprocessConfig
from .parts import _load_part_data
from .specs import PREPARE_VERSION, DatasetSpec, ProgressFn


def _write_stores(out: Path, dataset: str, spec: DatasetSpec, cfg: PreprocessConfig, body_rule: str, raw: Path,
                  sample_shape: Tuple[int, ...], meta_keys: Sequence[str],
                  masks: Dict[str, Tuple[np.ndarray, np.ndarray]], split_info: Dict[str, Any],
                  part_paths: List[Path], parts: List[Dict[str, Any]], labels: np.ndarray, names: List[str],
                  meta: Dict[str, np.ndarray], progress: Optional[ProgressFn]) -> Dict[str, Dict[str, int]]:
    """Write the stores; returns ``{"<dataset>-<bench>": {"train": n, "test": n}}``. On any error
    the temporary directories are removed and existing stores are left untouched."""
    from ..store import StoreWriter, remove_stale_temporaries, replace_dir_atomic

    for b in masks:  # what a killed earlier run left behind (its process is gone)
        remove_stale_temporaries(out, f".{dataset}-{b}.")
    N = len(labels)
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
            data = _load_part_data(p)  # memory-mapped: copied once, into the stores
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

        def commit(key: Tuple[str, str]) -> None:
            b, part_name = key
            writers[key].commit({**info_common, "split": {"benchmark": b, "part": part_name, **split_info[b]},
                                 "name": f"{dataset}-{b}"})

        # each commit mostly waits for its msync + fsync: the stores' flushes overlap on the disk
        with ThreadPoolExecutor(max_workers=len(writers)) as pool:
            list(pool.map(commit, writers))
        for b, tmp in tmp_dirs.items():
            replace_dir_atomic(tmp, out / f"{dataset}-{b}")
    except BaseException:
        for w in writers.values():
            w.abort()
        for tmp in tmp_dirs.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stores
