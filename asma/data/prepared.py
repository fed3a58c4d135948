"""Named prepared datasets: ``load_prepared("ntu60-xsub", data_dir) -> (train, test)``.

A prepared dataset ``<name>`` lives in ``<data_dir>/<name>/train`` and ``<data_dir>/<name>/test``
(two stores, see :mod:`asma.data.store`), written by ``asma data prepare <dataset> --raw DIR
--out <data_dir>`` (:func:`asma.data.prepare.prepare_dataset`).

The default ``data_dir`` is ``$ASMA_DATA_DIR`` or ``~/.cache/asma/data``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

from .store import StoreError, open_store, read_store_info

PathLike = Union[str, "os.PathLike[str]"]

#: name -> description. The name is ``<dataset>-<benchmark>``.
PREPARED_DATASETS: Dict[str, str] = {
    "ntu60-xsub": "NTU RGB+D 60 cross-subject: 20 training performers, 60 classes (commonly reported 40,091 / 16,487 clips)",
    "ntu60-xview": "NTU RGB+D 60 cross-view: cameras 2, 3 train, camera 1 test, 60 classes (commonly reported 37,646 / 18,932 clips)",
    "ntu120-xsub": "NTU RGB+D 120 cross-subject: 53 training performers, 120 classes",
    "ntu120-xset": "NTU RGB+D 120 cross-setup: even setups train, odd setups test, 120 classes",
    "pku1-xsub": "PKU-MMD Part I cross-subject (official split file), 51 classes",
    "pku1-xview": "PKU-MMD Part I cross-view (official split file), 51 classes",
    "pku2-xsub": "PKU-MMD Part II cross-subject (official split file), 51 class ids (41 used)",
    "pku2-xview": "PKU-MMD Part II cross-view (official split file), 51 class ids (41 used)",
    "utkinect-xsub": "UTKinect-Action3D cross-subject: odd subjects train, even test (Kinect v1, 20 joints), 10 classes",
    "nwucla-xview": "Northwestern-UCLA cross-view: views 1, 2 train, view 3 test (1,020 / 464 clips), 10 classes",
    "utd-mhad-xsub": "UTD-MHAD cross-subject: odd subjects train, even test (431 / 430 clips), 27 classes",
    "penn-action-official": "Penn Action official split (1,258 / 1,068 clips), 15 classes, 2D + visibility",
    "hdm05-xsub": "HDM05 mocap cross-subject: actors bd, bk, dg train, mm, tr test (189 / 99 clips), 11 classes",
    "msrc12-xsub": "MSRC-12 gestures cut at action points: lower half of the subjects train, upper half test, "
                   "12 classes",
}


def default_data_dir() -> Path:
    """``$ASMA_DATA_DIR`` or ``~/.cache/asma/data``."""
    env = os.environ.get("ASMA_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "asma" / "data"


def prepared_path(name: str, data_dir: Optional[PathLike] = None) -> Path:
    """``<data_dir>/<name>`` (the folder holding ``train/`` and ``test/``)."""
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return base / name


def prepare_command(name: str, data_dir: Optional[PathLike] = None) -> str:
    """The shell command that creates prepared dataset ``name`` under ``data_dir``."""
    dataset = name.rsplit("-", 1)[0]  # "<dataset>-<benchmark>"; dataset names may hold "-" (utd-mhad)
    out = str(Path(data_dir).expanduser()) if data_dir is not None else str(default_data_dir())
    return f"asma data prepare {dataset} --raw RAW_DIR --out {out}"


def load_prepared(name: str, data_dir: Optional[PathLike] = None, mmap: bool = True):
    """Open a prepared dataset as ``(train, test)`` :class:`~asma.data.arrays.SkeletonArrays`.

    Args:
        name: one of :data:`PREPARED_DATASETS` (e.g. ``"ntu60-xsub"``).
        data_dir: the ``--out`` folder of ``asma data prepare`` (default :func:`default_data_dir`).
        mmap: memory-map ``data.npy`` (default) instead of loading it.

    Returns:
        ``(train, test)``; each has ``data`` ``(N, 3, T, V, M)`` float32 (memory-mapped),
        ``labels`` ``(N,)``, ``meta`` (e.g. setup/camera/subject/replication/length for NTU).

    Raises:
        ValueError: unknown name (lists the known ones).
        FileNotFoundError (:class:`~asma.data.store.StoreError`): not prepared yet; the
            message names the expected path and the command that creates it.
    """
    if name not in PREPARED_DATASETS:
        raise ValueError(f"unknown prepared dataset {name!r}; known: {', '.join(PREPARED_DATASETS)}")
    root = prepared_path(name, data_dir)
    parts = []
    for part in ("train", "test"):
        path = root / part
        try:
            parts.append(open_store(path, mmap=mmap))
        except StoreError as exc:
            raise StoreError(f"prepared dataset {name!r} not found or incomplete at {path} ({exc}). "
                             f"Create it with: {prepare_command(name, data_dir)}  "
                             f"(see docs/datasets.md for downloading the raw data)") from None
    return parts[0], parts[1]


def prepared_status(data_dir: Optional[PathLike] = None) -> Dict[str, Optional[Dict]]:
    """For every known name, the train/test ``info.json`` summaries if prepared, else ``None``."""
    out: Dict[str, Optional[Dict]] = {}
    for name in PREPARED_DATASETS:
        root = prepared_path(name, data_dir)
        try:
            tr = read_store_info(root / "train")
            te = read_store_info(root / "test")
            out[name] = {"train": tr["num_samples"], "test": te["num_samples"], "shape": tr["shape"][1:],
                         "created": tr.get("created"), "path": str(root)}
        except StoreError:
            out[name] = None
    return out
