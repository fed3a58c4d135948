"""MATLAB ``.mat`` files (Level 4 and Level 5 up to v7) through :func:`scipy.io.loadmat`.

Datasets ship skeletons and labels as ``.mat`` (UTD-MHAD ``d_skel``, Penn Action ``x``/``y``/
``visibility``/``action``/``train``). scipy does the parsing; this module only turns its many
failure modes on corrupt bytes (``ValueError``, ``TypeError``, ``zlib.error``, ``MemoryError`` on
absurd dimensions, ...) into one :class:`~asma.data.errors.DataFormatError` naming the file, and
rejects v7.3 (HDF5) files with a clear message.
"""
from __future__ import annotations

import io
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import DataFormatError
from ._text import Source, read_source
from .mat5_check import MatStructureError, check_mat5

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read_mat_v5(source: Source, *, name: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Read the variables of a MAT-file.

    Args:
        source: a path or the file's bytes.
        name: the file name used in errors (default: the path).

    Returns:
        ``{variable name: array}`` as :func:`scipy.io.loadmat` gives them (MATLAB's dimensions,
        at least 2-D; numeric arrays keep their stored dtype; strings are ``<U`` arrays); the
        ``__header__``/``__version__``/``__globals__`` entries are dropped.

    Raises:
        DataFormatError: not a MAT-file, a v7.3/HDF5 file, or a corrupt one.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    raw, path = read_source(source, name)
    if raw[:8] == _HDF5_MAGIC or b"MATLAB 7.3" in raw[:116]:
        raise DataFormatError("MATLAB v7.3 (HDF5) .mat files are not supported; re-save with -v7 or use CSV", path)
    if len(raw) < 128 or not raw[:116].startswith(b"MATLAB 5.0 MAT-file"):
        raise DataFormatError("not a MATLAB Level-5 MAT-file (bad header)", path)
    try:
        check_mat5(raw)  # before scipy: some corrupt files crash its reader instead of raising
    except MatStructureError as exc:
        raise DataFormatError(f"corrupt MAT-file ({exc})", path) from None
    try:
        mats = loadmat(io.BytesIO(raw), mat_dtype=False, chars_as_strings=True, verify_compressed_data_integrity=True)
    except MatReadError as exc:
        raise DataFormatError(f"corrupt MAT-file ({exc})", path) from None
    except Exception as exc:  # scipy raises many types on corrupt bytes; all mean the same here
        raise DataFormatError(f"corrupt MAT-file ({type(exc).__name__}: {str(exc)[:120]})", path) from None
    return {k: v for k, v in mats.items() if not k.startswith("__")}


def mat_array(mats: Dict[str, np.ndarray], key: str, path: str, *, ndim: Optional[int] = None,
              shape: Optional[Sequence[Optional[int]]] = None, finite: bool = True) -> np.ndarray:
    """Variable ``key`` of :func:`read_mat_v5`'s result as float64, checked.

    Args:
        ndim: required number of dimensions (after dropping trailing singleton ones).
        shape: required sizes (``None`` entries are free).
        finite: reject NaN/inf.

    Shapes: as stored (MATLAB dimensions).

    Raises:
        DataFormatError: the variable is missing, not numeric, of the wrong shape or non-finite.
    """
    if key not in mats:
        raise DataFormatError(f"no variable {key!r} (found: {', '.join(sorted(mats)) or 'none'})", path)
    arr = np.asarray(mats[key])
    if arr.dtype.kind not in "biuf":
        raise DataFormatError(f"variable {key!r} is {arr.dtype}, not numeric", path)
    arr = arr.astype(np.float64)
    if ndim is not None:
        while arr.ndim > ndim and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != ndim:
            raise DataFormatError(f"variable {key!r} must have {ndim} dimensions, got shape {arr.shape}", path)
    if shape is not None and any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = " x ".join("N" if s is None else str(s) for s in shape)
        raise DataFormatError(f"variable {key!r} must be {want}, got {' x '.join(map(str, arr.shape))}", path)
    if finite and not np.isfinite(arr).all():
        raise DataFormatError(f"variable {key!r} has a non-finite value", path)
    return arr


def mat_scalar(mats: Dict[str, np.ndarray], key: str, path: str) -> float:
    """Variable ``key`` as one finite number (a 1 x 1 MATLAB array)."""
    arr = mat_array(mats, key, path)
    if arr.size != 1:
        raise DataFormatError(f"variable {key!r} must be a single number, got shape {arr.shape}", path)
    return float(arr.reshape(-1)[0])


def mat_string(mats: Dict[str, np.ndarray], key: str, path: str) -> str:
    """Variable ``key`` as a Python string (a MATLAB char array)."""
    if key not in mats:
        raise DataFormatError(f"no variable {key!r} (found: {', '.join(sorted(mats)) or 'none'})", path)
    arr = np.asarray(mats[key])
    if arr.dtype.kind != "U" or arr.size != 1:
        raise DataFormatError(f"variable {key!r} must be a string, got {arr.dtype} {arr.shape}", path)
    return str(arr.reshape(-1)[0]).strip()
