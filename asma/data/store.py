"""The on-disk skeleton store: a directory of ``.npy`` files that opens memory-mapped in milliseconds.

Layout of a store directory::

    data.npy          (N, C, T, V, M) float32, opened with np.load(mmap_mode="r")
    labels.npy        (N,) int64
    names.npy         (N,) unicode sample names
    meta/<key>.npy    (N,) int64, one file per metadata key (setup, camera, subject, ...)
    info.json         format, version, layout, class names, preprocessing, split, counts, ...

Stores are written into a temporary sibling directory and moved into place with ``os.replace``,
so a reader never sees a half-written store: after an interruption the old store (if any) is
still there, or there is none.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

STORE_FORMAT = "asma-skeleton-store"
STORE_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


class StoreError(FileNotFoundError):
    """A store directory is missing, incomplete or of an unknown format."""


# -------------------------------------------------------------------------------------------
# memory map that pickles as a file reference

def _reopen(path: str, shape: Tuple[int, ...]) -> "StoreArray":
    arr = StoreArray.open(path)
    if tuple(arr.shape) != tuple(shape):
        raise StoreError(f"{path} changed on disk: shape {tuple(arr.shape)} != {tuple(shape)} when it was pickled")
    return arr


class StoreArray(np.memmap):
    """Read-only ``np.memmap`` of a store's ``data.npy`` that pickles as a reference to the file.

    Sending the whole array to a ``DataLoader`` worker (``spawn``/``forkserver`` start methods)
    therefore reopens the map instead of copying gigabytes. Slices and views pickle as ordinary
    arrays (a copy of just that part).
    """

    @classmethod
    def open(cls, path: PathLike) -> "StoreArray":
        """Memory-map ``path`` (a ``.npy`` file) read-only, ``(N, C, T, V, M)``."""
        base = np.load(os.fspath(path), mmap_mode="r")
        arr = base.view(cls)
        arr._asma_src = (os.path.abspath(os.fspath(path)), tuple(base.shape),
                         base.__array_interface__["data"][0])
        return arr

    def __reduce__(self):
        src = getattr(self, "_asma_src", None)
        if (src is not None and tuple(self.shape) == src[1]
                and self.__array_interface__["data"][0] == src[2]):
            return (_reopen, (src[0], src[1]))
        return np.asarray(self).__reduce__()

    def __array_finalize__(self, obj):
        super().__array_finalize__(obj)
        self._asma_src = None  # views never inherit the file reference


# -------------------------------------------------------------------------------------------
# helpers

def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # exists but belongs to somebody else / not a pid: leave it
    return True


_TMP_RE = re.compile(r"\.(?:tmp|old)-(\d+)-[0-9a-f]{6}(?:\.npz)?$")


def remove_stale_temporaries(folder: PathLike, prefix: str = "") -> List[Path]:
    """Delete the temporary files and folders (``<name>.tmp-<pid>-<hex>``, ``.old-<pid>-<hex>``)
    that a killed writer left in ``folder``, i.e. those whose process no longer exists.

    Only entries whose name starts with ``prefix`` are considered; those of a live process
    (another run writing at the same time) are kept. Returns the removed paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TMP_RE.search(p.name)
        if not (m and p.name.startswith(prefix)) or _pid_alive(int(m.group(1))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def replace_dir_atomic(tmp: PathLike, final: PathLike) -> None:
    """Move the finished directory ``tmp`` to ``final``, replacing an existing ``final``.

    ``os.replace`` cannot overwrite a non-empty directory, so an existing one is first renamed
    aside and deleted afterwards; at every moment ``final`` is either the old complete store,
    absent for the instant between two renames, or the new complete store.
    """
    tmp, final = Path(tmp), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _layout_to_json(layout) -> Any:
    if isinstance(layout, str):
        return layout
    skel = layout
    name = getattr(skel, "name", None)
    try:
        from ..graph import get_layout, list_layouts

        if name in list_layouts():
            ref = get_layout(name)
            if (ref.num_joints == skel.num_joints and ref.edge_index.shape == skel.edge_index.shape
                    and bool((ref.edge_index == skel.edge_index).all())):
                return name  # a built-in layout: store its name
    except Exception:
        pass
    ei = skel.edge_index
    pairs = sorted({(min(a, b), max(a, b)) for a, b in ei.t().tolist()})
    perm = skel.flip_perm.tolist()
    return {"name": getattr(skel, "name", "custom"), "num_joints": skel.num_joints,
            "joint_names": list(skel.joint_names), "center": int(skel.center), "edges": pairs,
            "flip_pairs": [(i, p) for i, p in enumerate(perm) if i < p],
            "bone_pairs": skel.bone_pairs.tolist()}


def _layout_from_json(obj: Any):
    if isinstance(obj, str):
        return obj
    from ..graph import from_edges

    return from_edges(obj["edges"], obj["num_joints"], joint_names=obj["joint_names"], center=obj["center"],
                      flip_pairs=obj["flip_pairs"], bone_pairs=obj["bone_pairs"], name=obj["name"])


# -------------------------------------------------------------------------------------------
# writing

class StoreWriter:
    """Append-only, atomic store writer (used by the preparation pipeline and :func:`write_store`).

    Samples are appended in order and go straight to the temporary ``data.npy`` (no size needed
    up front, so a pipeline can write each part as it finishes); :meth:`commit` writes the final
    ``.npy`` header, the labels, metadata, names and ``info.json``, fsyncs and moves the store
    into place. Until then a reader sees the old store or none.

    Example::

        w = StoreWriter(path, sample_shape=(3, 50, 25, 2), layout="ntu25",
                        class_names=names, meta_keys=["subject", "camera"])
        w.append(data_block, labels_block, {"subject": ..., "camera": ...}, names_block)
        ...
        w.commit(info={"split": {...}})   # or w.abort()

    Args:
        path: the final store directory.
        sample_shape: ``(C, T, V, M)``.
        layout: layout name (or a custom Skeleton).
        class_names: the class names (index = label).
        meta_keys: metadata keys (each stored as ``(N,)`` int64).
    """

    def __init__(self, path: PathLike, sample_shape: Sequence[int], layout: Any,
                 class_names: Sequence[str], meta_keys: Sequence[str] = ()):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        (self.tmp / "meta").mkdir(parents=True)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.layout = layout
        self.class_names = list(class_names)
        self.meta_keys = list(meta_keys)
        self.n = 0
        self._labels: List[np.ndarray] = []
        self._meta: Dict[str, List[np.ndarray]] = {k: [] for k in self.meta_keys}
        self.names: List[str] = []
        # room for the header of the largest count: the data never moves when the count grows
        self._header_size = len(_npy_header((2 ** 63 - 1,) + self.sample_shape))
        self._data = open(self.tmp / "data.npy", "wb")
        self._data.write(b"\0" * self._header_size)

    def append(self, data: np.ndarray, labels: np.ndarray, meta: Optional[Dict[str, np.ndarray]] = None,
               names: Optional[Sequence[str]] = None) -> None:
        """Append samples. Shapes: ``data`` ``(n, C, T, V, M)``; ``labels``, each ``meta`` value
        and ``names`` ``(n,)`` (names default to the running sample number)."""
        k = len(data)
        if tuple(data.shape[1:]) != self.sample_shape:
            raise ValueError(f"sample shape {tuple(data.shape[1:])} != store shape {self.sample_shape}")
        cols = {"labels": labels, **{f"meta[{key!r}]": (meta or {}).get(key) for key in self.meta_keys}}
        for what, v in cols.items():
            if v is None:
                raise ValueError(f"{what} is missing")
            if len(v) != k:
                raise ValueError(f"{what} has {len(v)} entries for {k} samples")
        if names is not None and len(names) != k:
            raise ValueError(f"names has {len(names)} entries for {k} samples")
        if k == 0:
            return
        self._data.write(memoryview(np.ascontiguousarray(data, dtype=np.float32)).cast("B"))
        self._labels.append(np.asarray(labels, dtype=np.int64))
        for key in self.meta_keys:
            self._meta[key].append(np.asarray(meta[key], dtype=np.int64))
        self.names.extend(list(names) if names is not None else [f"{i:06d}" for i in range(self.n, self.n + k)])
        self.n += k

    def sync(self) -> None:
        """Wait until the samples appended so far are on disk (callable from another thread
        while samples are appended, not during :meth:`commit`): the final fsync then has only
        the rest to write."""
        self._data.flush()
        os.fdatasync(self._data.fileno())

    def commit(self, info: Optional[Dict[str, Any]] = None) -> Path:
        """Finish: write the header, labels/meta/names/info, fsync, and move the store into place."""
        self._data.seek(0)
        self._data.write(_npy_header((self.n,) + self.sample_shape, self._header_size))
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        np.save(self.tmp / "labels.npy", labels)
        np.save(self.tmp / "names.npy", np.array(self.names, dtype=str) if self.n else np.zeros(0, dtype="<U1"))
        for key, parts in self._meta.items():
            np.save(self.tmp / "meta" / f"{key}.npy", np.concatenate(parts) if parts else np.zeros(0, np.int64))
        counts = np.bincount(labels, minlength=len(self.class_names)) if self.n else \
            np.zeros(len(self.class_names), dtype=np.int64)
        full_info = {
            "format": STORE_FORMAT, "version": STORE_VERSION,
            "num_samples": self.n, "shape": [self.n, *self.sample_shape], "dtype": "float32",
            "layout": _layout_to_json(self.layout), "class_names": self.class_names,
            "num_classes": len(self.class_names), "class_counts": counts.tolist(),
            "meta_keys": self.meta_keys,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        for k, v in (info or {}).items():
            if k not in ("format", "version", "num_samples", "shape", "dtype"):
                full_info[k] = v
        with open(self.tmp / "info.json", "w", encoding="utf-8") as fh:
            json.dump(full_info, fh, indent=2, default=_json_default)
            fh.write("\n")
        for p in list(self.tmp.iterdir()) + list((self.tmp / "meta").iterdir()):
            if p.is_file() and p.name != "data.npy":  # fsynced above
                _fsync_file(p)
        replace_dir_atomic(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Delete the temporary directory (nothing is left behind)."""
        self._data.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _npy_header(shape: Tuple[int, ...], size: Optional[int] = None) -> bytes:
    """The ``.npy`` (version 1.0) header of a C-order float32 array of ``shape``, padded with
    spaces to ``size`` bytes (default: the next multiple of 64, as numpy writes it). Hand-written
    because numpy's writer always pads to the next 64 bytes, so the header would grow, and the
    data move, when the count gains digits."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}".encode("latin1")
    need = 10 + len(text) + 1
    size = size or -(-need // 64) * 64
    if need > size:
        raise ValueError(f"npy header of shape {shape} does not fit in {size} bytes")
    return b"\x93NUMPY\x01\x00" + (size - 10).to_bytes(2, "little") + text.ljust(size - 11) + b"\n"


def write_store(path: PathLike, arrays, info: Optional[Dict[str, Any]] = None,
                chunk: int = 1024) -> Path:
    """Write :class:`~asma.data.arrays.SkeletonArrays` as a store directory (atomically).

    Args:
        path: the store directory (replaced if it exists).
        arrays: data ``(N, C, T, V, M)`` (a memmap is copied in chunks), labels, meta, names, ...
        info: extra ``info.json`` entries (e.g. ``preprocessing``, ``split``, ``dataset``).

    Returns:
        The store path.
    """
    n = len(arrays)
    w = StoreWriter(path, arrays.data.shape[1:], arrays.layout, arrays.class_names, sorted(arrays.meta))
    try:
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            w.append(np.asarray(arrays.data[s:e], dtype=np.float32), arrays.labels[s:e],
                     {k: np.asarray(v)[s:e] for k, v in arrays.meta.items()},
                     None if arrays.names is None else arrays.names[s:e])  # None: the sample numbers
        extra = {"source": arrays.source}
        extra.update(info or {})
        return w.commit(extra)
    except BaseException:
        w.abort()
        raise


# -------------------------------------------------------------------------------------------
# reading

def read_store_info(path: PathLike) -> Dict[str, Any]:
    """The parsed ``info.json`` of a store (checks the format and version).

    Raises:
        StoreError: missing directory/file, other format, or a newer version.
    """
    path = Path(path)
    info_path = path / "info.json"
    if not path.is_dir():
        raise StoreError(f"no skeleton store at {path} (directory missing)")
    if not info_path.is_file():
        raise StoreError(f"{path} is not a complete skeleton store: {info_path.name} is missing")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{info_path}: unreadable ({exc})") from None
    if info.get("format") != STORE_FORMAT:
        raise StoreError(f"{path}: not an {STORE_FORMAT} (format={info.get('format')!r})")
    if int(info.get("version", 0)) > STORE_VERSION:
        raise StoreError(f"{path}: store version {info.get('version')} is newer than this asma "
                         f"(reads up to {STORE_VERSION}); upgrade asma")
    return info


def open_store(path: PathLike, mmap: bool = True):
    """Open a store as :class:`~asma.data.arrays.SkeletonArrays` (data memory-mapped, read-only).

    Args:
        path: the store directory.
        mmap: ``False`` loads ``data.npy`` fully into memory instead.

    Returns:
        SkeletonArrays with ``data`` ``(N, C, T, V, M)`` float32 (a :class:`StoreArray` when
        memory-mapped), ``labels`` ``(N,)``, ``meta`` ``{key: (N,) int64}``, ``names``, and
        ``source`` = the store path.

    Raises:
        StoreError: missing or inconsistent files, naming the path.
    """
    from .arrays import SkeletonArrays

    path = Path(path)
    info = read_store_info(path)
    need = [path / "data.npy", path / "labels.npy"] + [path / "meta" / f"{k}.npy" for k in info.get("meta_keys", [])]
    for p in need:
        if not p.is_file():
            raise StoreError(f"{path} is not a complete skeleton store: {p.relative_to(path)} is missing")
    data = StoreArray.open(path / "data.npy") if mmap else np.load(path / "data.npy")
    labels = np.load(path / "labels.npy")
    meta = {k: np.load(path / "meta" / f"{k}.npy") for k in info.get("meta_keys", [])}
    names = np.load(path / "names.npy").tolist() if (path / "names.npy").is_file() else None
    n = data.shape[0]
    if list(data.shape) != list(info.get("shape", data.shape)) or data.dtype != np.float32:
        raise StoreError(f"{path}: data.npy is {data.dtype} {tuple(data.shape)} but info.json says "
                         f"{info.get('dtype')} {tuple(info.get('shape', ()))}")
    for what, arr in [("labels.npy", labels)] + [(f"meta/{k}.npy", v) for k, v in meta.items()]:
        if len(arr) != n:
            raise StoreError(f"{path}: {what} has {len(arr)} entries for {n} samples")
    if names is not None and len(names) != n:
        raise StoreError(f"{path}: names.npy has {len(names)} entries for {n} samples")
    return SkeletonArrays(data=data, labels=labels, layout=_layout_from_json(info["layout"]),
                          class_names=list(info.get("class_names", [])), meta=meta, names=names,
                          source=str(path),
                          coord_channels=(info.get("preprocessing") or {}).get("coord_channels"))
