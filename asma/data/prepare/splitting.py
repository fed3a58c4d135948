"""Benchmark splits of the prepared samples: a train and a test mask per benchmark (NTU ids,
PKU-MMD split files, UTKinect odd/even subjects), samples in neither, and the split description
stored in each store's ``info.json``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .specs import DatasetSpec


def _split_masks(spec: DatasetSpec, dataset: str, benches: Sequence[str], meta: Dict[str, np.ndarray],
                 names: List[str], split_files: Dict[str, Path]
                 ) -> Tuple[Dict[str, Tuple[np.ndarray, np.ndarray]], List[str], Dict[str, Any]]:
    """``(masks, unassigned, split_info)``: ``masks[benchmark] = (train, test)`` boolean arrays."""
    masks: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    unassigned: List[str] = []
    split_info: Dict[str, Any] = {}
    for b in benches:
        if spec.kind == "ntu":
            from ..splits import NTU_BENCHMARKS, ntu_train_mask

            tr = ntu_train_mask(dataset, b, meta)
            masks[b] = (tr, ~tr)
            key_, ids = NTU_BENCHMARKS[dataset][b]
            split_info[b] = {"rule": f"{key_} in training ids", "train_ids": list(ids)}
        elif spec.kind == "pku":
            from ..splits import id_train_mask, pku_video_id, read_pku_split_file

            tr_ids, te_ids = read_pku_split_file(split_files[b])
            vids = [pku_video_id(n) for n in names]
            tr, te = id_train_mask(vids, set(tr_ids), set(te_ids))
            masks[b] = (tr, te)
            lost = sorted({v for v, a, c in zip(vids, tr, te) if not a and not c})
            unassigned.extend(f"{b}: video {v} is in neither list of {split_files[b].name}" for v in lost)
            split_info[b] = {"rule": f"video id in {split_files[b].name}", "file": str(split_files[b]),
                             "train_videos": len(tr_ids), "test_videos": len(te_ids)}
        elif spec.kind == "clips":
            tr, split_info[b] = spec.clip_source().train_mask(b, meta)
            masks[b] = (tr, ~tr)
        else:
            from ..splits import utkinect_train_mask

            tr = utkinect_train_mask(meta["subject"])
            masks[b] = (tr, ~tr)
            split_info[b] = {"rule": "odd subjects train, even subjects test"}
    return masks, unassigned, split_info
