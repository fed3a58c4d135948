"""Part files ``<work>/part-00012.npz``: one chunk's labels, names, metadata and report, with a
fingerprint of its raw files so that a re-run reuses finished, unchanged parts (resume); the
chunk's clips are a plain ``part-00012.data.npy`` beside it, which the store writer memory-maps
(no zip member to read and check into memory before the copy into the stores). Both are written
atomically, the data first, so a finished ``.npz`` always has its data."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


def _fingerprint(kind: str, item: Tuple) -> List[List]:
    """``[path, size, mtime_ns]`` of every raw file an item reads (a changed file invalidates its part)."""
    # pku: skeleton + label file; clips: (path, name, further files read, e.g. an ASF skeleton)
    paths = [item[0], item[1]] if kind == "pku" else [item[0], *item[2:]] if kind == "clips" else [item[0]]
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
    tmp = f"{_data_path(part_path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    with open(tmp, "wb") as fh:  # a file object: np.save appends no suffix to the temporary name
        np.save(fh, data)
    os.replace(tmp, _data_path(part_path))
    arrays = {
        "labels": np.array([s[1] for s in samples], dtype=np.int64),
        "names": np.array([s[3] for s in samples], dtype=str) if n else np.zeros(0, "<U1"),
        "report": np.array(json.dumps({"bad": bad, "notes": notes, "fingerprint": fingerprint or []})),
    }
    for k in meta_keys:
        arrays["meta_" + k] = np.array([s[2][k] for s in samples], dtype=np.int64)
    tmp = f"{part_path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, part_path)


def _data_path(part_path) -> Path:
    """``part-00012.npz`` -> ``part-00012.data.npy``."""
    return Path(part_path).with_suffix(".data.npy")


def _load_part_data(part_path) -> np.ndarray:
    """The part's clips, memory-mapped read-only.

    Shapes:
        - **output**: :math:`(n, C, T, V, M)` float32
    """
    return np.load(_data_path(part_path), mmap_mode="r", allow_pickle=False)


def _load_part_meta(path: Path, meta_keys: Sequence[str]) -> Dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        out = {"labels": z["labels"], "names": z["names"].tolist(),
               "meta": {k: z["meta_" + k] for k in meta_keys},
               "report": json.loads(str(z["report"]))}
        out["n"] = len(out["labels"])
    return out


def _part_ok(path: Path, meta_keys: Sequence[str], fingerprint: List[List]) -> bool:
    """A finished part is reused when it and its data load, agree in length, and its raw files are
    unchanged."""
    try:
        meta = _load_part_meta(path, meta_keys)
        n = _load_part_data(path).shape[0]
    except Exception:
        return False
    return meta["report"].get("fingerprint") == fingerprint and n == meta["n"]
