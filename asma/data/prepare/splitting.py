"""Benchmark splits of the prepared samples: a train and a test mask per benchmark (NTU ids,
PKU-MMD split files, UTKinect odd/even subjects, a clip reader's rule), the samples in neither,
and the split description stored in each store's ``info.json``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

import numpy as np

from .specs import DatasetSpec


class _Splitter:
    """The split rule of each benchmark, applied to one part's samples at a time (or to all
    samples at once where :attr:`needs_all`: a rule that looks at every sample, such as MSRC-12's
    lower half of the subjects present). PKU-MMD split files are read once."""

    def __init__(self, spec: DatasetSpec, dataset: str, benches: Sequence[str], split_files: Dict[str, Path]):
        self.spec, self.dataset, self.benches, self.split_files = spec, dataset, tuple(benches), split_files
        self.needs_all = spec.kind == "clips" and spec.clip_source().split_needs_all
        self.info: Dict[str, Any] = {}
        self.lost: Dict[str, Set[str]] = {b: set() for b in self.benches}  # PKU videos in neither list
        self._pku: Dict[str, Tuple[set, set]] = {}
        for b in self.benches:
            if spec.kind == "ntu":
                from ..splits import NTU_BENCHMARKS

                key_, ids = NTU_BENCHMARKS[dataset][b]
                self.info[b] = {"rule": f"{key_} in training ids", "train_ids": list(ids)}
            elif spec.kind == "pku":
                from ..splits import read_pku_split_file

                tr_ids, te_ids = read_pku_split_file(split_files[b])
                self._pku[b] = (set(tr_ids), set(te_ids))
                self.info[b] = {"rule": f"video id in {split_files[b].name}", "file": str(split_files[b]),
                                "train_videos": len(tr_ids), "test_videos": len(te_ids)}
            elif spec.kind == "utkinect":
                self.info[b] = {"rule": "odd subjects train, even subjects test"}

    def __call__(self, meta: Dict[str, np.ndarray], names: List[str]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        """``{benchmark: (train, test)}`` boolean ``(n,)`` masks of these samples (a clip
        reader's rule also sets :attr:`info`; PKU videos in neither list go to :attr:`lost`)."""
        masks: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        for b in self.benches:
            if self.spec.kind == "ntu":
                from ..splits import ntu_train_mask

                tr = ntu_train_mask(self.dataset, b, meta)
                masks[b] = (tr, ~tr)
            elif self.spec.kind == "pku":
                from ..splits import id_train_mask, pku_video_id

                vids = [pku_video_id(n) for n in names]
                tr, te = id_train_mask(vids, *self._pku[b])
                masks[b] = (tr, te)
                self.lost[b].update(v for v, a, c in zip(vids, tr, te) if not a and not c)
            elif self.spec.kind == "clips":
                tr, self.info[b] = self.spec.clip_source().train_mask(b, meta)
                masks[b] = (tr, ~tr)
            else:
                from ..splits import utkinect_train_mask

                tr = utkinect_train_mask(meta["subject"])
                masks[b] = (tr, ~tr)
        return masks

    def unassigned(self) -> List[str]:
        """One line per PKU video in neither split list, by benchmark and video."""
        return [f"{b}: video {v} is in neither list of {self.split_files[b].name}"
                for b in self.benches for v in sorted(self.lost[b])]
