"""Step 3 of :func:`~asma.data.prepare.prepare_dataset`, overlapping step 2: as each part file is
finished, its samples are split into the benchmarks and appended to the stores
``<out>/<dataset>-<benchmark>/{train,test}`` (see :mod:`asma.data.store`) while the workers parse
the next parts, in part order whatever order the parts finish in. The stores are written into
temporary directories and moved into place once all parts are in (:class:`_Assembler`)."""
from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..preprocess import PreprocessConfig
from .parts import _load_part_data, _load_part_meta
from .specs import PREPARE_VERSION, DatasetSpec, PrepareError, ProgressFn
from .splitting import _Splitter


class _Assembler:
    """The stores of one run, filled part by part (:meth:`part_done`) and committed by
    :meth:`finish`; :meth:`abort` removes everything it wrote. Where the split rule needs all
    samples (:attr:`_Splitter.needs_all`), the parts are appended in :meth:`finish`."""

    def __init__(self, out: Path, dataset: str, spec: DatasetSpec, benches: Sequence[str],
                 split_files: Dict[str, Path], sample_shape: Tuple[int, ...], meta_keys: Sequence[str],
                 part_paths: List[Path], progress: Optional[ProgressFn]):
        from ..store import StoreWriter, remove_stale_temporaries

        self.out, self.dataset, self.meta_keys, self.part_paths = out, dataset, list(meta_keys), part_paths
        self.progress = progress
        self.split = _Splitter(spec, dataset, benches, split_files)
        self.parts: List[Optional[Dict[str, Any]]] = [None] * len(part_paths)  # each part's metadata
        self.finished: Set[int] = set()
        self.next = 0  # the first part not yet appended
        self.tmp_dirs: Dict[str, Path] = {}
        self.writers: Dict[Tuple[str, str], Any] = {}
        # the disk writes of the appended parts, in a thread while the parse goes on (else the
        # commit's fsync waits for all of them at the end)
        self._syncer = ThreadPoolExecutor(max_workers=1)
        self._sync: Optional[Future] = None
        for b in benches:  # what a killed earlier run left behind (its process is gone)
            remove_stale_temporaries(out, f".{dataset}-{b}.")
        try:
            for b in benches:
                self.tmp_dirs[b] = out / f".{dataset}-{b}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
                self.tmp_dirs[b].mkdir(parents=True)
                for part_name in ("train", "test"):
                    self.writers[(b, part_name)] = StoreWriter(self.tmp_dirs[b] / part_name, sample_shape,
                                                               spec.layout, spec.class_names, meta_keys)
        except BaseException:
            self.abort()
            raise

    def part_done(self, index: int) -> None:
        """Part ``index`` is complete on disk: append it, and the complete parts after it."""
        self.finished.add(index)
        if self.split.needs_all:
            return
        while self.next in self.finished:
            self._append(self.next, None)

    def _append(self, index: int, masks: Optional[Dict[str, Tuple[np.ndarray, np.ndarray]]]) -> None:
        meta = self.parts[index] or _load_part_meta(self.part_paths[index], self.meta_keys)
        if masks is None:
            masks = self.split(meta["meta"], meta["names"])
        data = _load_part_data(self.part_paths[index])  # memory-mapped: copied once, into the stores
        for (b, part_name), w in self.writers.items():
            sel = masks[b][0 if part_name == "train" else 1]
            if sel.any():
                with self._naming(b, part_name):
                    w.append(data[sel], meta["labels"][sel], {k: meta["meta"][k][sel] for k in self.meta_keys},
                             [nm for nm, s in zip(meta["names"], sel) if s])
        self.parts[index] = meta
        self.next = index + 1
        if self._sync is None or self._sync.done():
            if self._sync is not None:
                self._sync.result()  # re-raise a failed write here
            self._sync = self._syncer.submit(self._sync_all)
        if self.progress:
            self.progress("write", self.next, len(self.part_paths))

    def _sync_all(self) -> None:
        for (b, part_name), w in self.writers.items():
            with self._naming(b, part_name):
                w.sync()

    @contextmanager
    def _naming(self, benchmark: str, part_name: str) -> Iterator[None]:
        """A failed disk write (full disk, lost permission) as a :class:`PrepareError` naming
        the store being written, instead of a bare ``OSError``."""
        try:
            yield
        except OSError as exc:
            raise PrepareError(f"cannot write the store {self.dataset}-{benchmark}/{part_name} under {self.out}: "
                               f"{exc.strerror or exc}") from exc

    def finish(self, cfg: PreprocessConfig, body_rule: str, raw: Path, n_items: int
               ) -> Tuple[Dict[str, Any], Dict[str, Dict[str, int]], List[str]]:
        """Append what is left, commit the stores and move them into place: ``(got, stores,
        unassigned)`` with ``got`` the labels, names, metadata and bad/notes records of all
        parts, ``stores`` ``{"<dataset>-<bench>": {"train": n, "test": n}}``."""
        if self.split.needs_all:  # the rule sees every sample; then the parts are appended in order
            for i in range(len(self.parts)):
                self.parts[i] = _load_part_meta(self.part_paths[i], self.meta_keys)
            masks = self.split(self._concat("meta"), [n for p in self.parts for n in p["names"]])
            offset = 0
            for i, p in enumerate(self.parts):
                sl = slice(offset, offset + p["n"])
                self._append(i, {b: (tr[sl], te[sl]) for b, (tr, te) in masks.items()})
                offset += p["n"]
        if self.next != len(self.parts):
            raise RuntimeError(f"parts {self.next}..{len(self.parts) - 1} were never finished")
        got = {"labels": self._concat("labels"), "names": [n for p in self.parts for n in p["names"]],
               "meta": self._concat("meta"), "bad": [b for p in self.parts for b in p["report"]["bad"]],
               "notes": [n for p in self.parts for n in p["report"]["notes"]]}
        if not got["labels"].size:
            raise PrepareError(f"no usable sample in {n_items} {self.dataset} files ({len(got['bad'])} bad); see "
                               f"the errors with skip_bad=False")
        self._syncer.shutdown(wait=True)
        if self._sync is not None:
            self._sync.result()
        info_common = {"dataset": self.dataset, "preprocessing": cfg.to_dict(), "body_rule": body_rule,
                       "source": str(raw), "prepare_version": PREPARE_VERSION}

        def commit(key: Tuple[str, str]) -> None:
            b, part_name = key
            with self._naming(b, part_name):
                self.writers[key].commit({**info_common, "split": {"benchmark": b, "part": part_name,
                                                                   **self.split.info[b]},
                                          "name": f"{self.dataset}-{b}"})

        # each commit mostly waits for its fsync: the stores' flushes overlap on the disk
        with ThreadPoolExecutor(max_workers=len(self.writers)) as pool:
            list(pool.map(commit, self.writers))
        from ..store import replace_dir_atomic

        for b, tmp in self.tmp_dirs.items():
            replace_dir_atomic(tmp, self.out / f"{self.dataset}-{b}")
        stores = {f"{self.dataset}-{b}": {p: self.writers[(b, p)].n for p in ("train", "test")}
                  for b in self.tmp_dirs}
        return got, stores, self.split.unassigned()

    def _concat(self, what: str):
        if what == "labels":
            return np.concatenate([p["labels"] for p in self.parts]) if self.parts else np.zeros(0, np.int64)
        return {k: np.concatenate([p["meta"][k] for p in self.parts]) if self.parts else np.zeros(0, np.int64)
                for k in self.meta_keys}

    def abort(self) -> None:
        """Remove the temporary stores (existing stores are left untouched)."""
        self._syncer.shutdown(wait=True)
        for w in self.writers.values():
            w.abort()
        for tmp in self.tmp_dirs.values():
            shutil.rmtree(tmp, ignore_errors=True)
