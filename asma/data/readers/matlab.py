"""A minimal reader for MATLAB Level-5 ``.mat`` files (numeric arrays only), without scipy.

Enough for datasets that ship skeletons as ``.mat`` (UTD-MHAD ``d_skel``): compressed
(``miCOMPRESSED``) and plain ``miMATRIX`` elements of real numeric classes, little or big
endian. Cells, structs, chars, sparse and complex arrays are skipped; v7.3 (HDF5) files are
rejected with a clear message.
"""
from __future__ import annotations

import struct
import zlib
from typing import Dict, Optional

import numpy as np

from ..errors import DataFormatError
from ._text import Source, read_source

_MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_NUMERIC_CLASSES = set(range(6, 16))  # double, single, int8 .. uint64


class _Buf:
    def __init__(self, data: bytes, endian: str, path: str, base: int = 0):
        self.data, self.e, self.path, self.base = data, endian, path, base

    def fail(self, pos: int, msg: str):
        raise DataFormatError(f"{msg} (byte {self.base + pos})", self.path)

    def tag(self, pos: int):
        """``(type, nbytes, data_start, next_element_pos)`` of the element at ``pos``."""
        if pos + 8 > len(self.data):
            self.fail(pos, "truncated data element tag")
        mtype, nbytes = struct.unpack_from(self.e + "II", self.data, pos)
        if mtype >> 16:  # small data element: 2-byte size, 2-byte type, 4 bytes of data
            if (mtype >> 16) > 4:
                self.fail(pos, "bad small data element")
            return mtype & 0xFFFF, mtype >> 16, pos + 4, pos + 8
        if pos + 8 + nbytes > len(self.data):
            self.fail(pos, f"data element of {nbytes} bytes runs past the end of the file")
        nxt = pos + 8 + nbytes if mtype == _MI_COMPRESSED else pos + 8 + ((nbytes + 7) // 8) * 8
        return mtype, nbytes, pos + 8, nxt

    def values(self, mtype: int, start: int, nbytes: int, pos: int) -> np.ndarray:
        if mtype not in _MI_TYPES:
            self.fail(pos, f"unsupported numeric element type {mtype}")
        dt = np.dtype(_MI_TYPES[mtype]).newbyteorder(self.e)
        if nbytes % dt.itemsize:
            self.fail(pos, "element size is not a multiple of its type size")
        return np.frombuffer(self.data, dtype=dt, count=nbytes // dt.itemsize, offset=start)


def _parse_matrix(buf: _Buf, start: int):
    """Parse the sub-elements of an miMATRIX whose data starts at ``start``;
    returns ``(name, array or None)`` (``None`` for non-numeric or complex arrays)."""
    pos = start
    t, n, s, nxt = buf.tag(pos)
    flags = buf.values(t, s, n, pos)
    if flags.size < 1:
        buf.fail(pos, "missing array flags")
    cls = int(flags[0]) & 0xFF
    complex_ = bool(int(flags[0]) & 0x0800)
    pos = nxt
    t, n, s, nxt = buf.tag(pos)
    dims = buf.values(t, s, n, pos).astype(np.int64)
    if dims.size < 2 or (dims < 0).any():
        buf.fail(pos, f"bad dimensions {dims.tolist()}")
    pos = nxt
    t, n, s, nxt = buf.tag(pos)
    name = bytes(buf.data[s:s + n]).decode("latin-1")
    pos = nxt
    if cls not in _NUMERIC_CLASSES or complex_:
        return name, None
    t, n, s, nxt = buf.tag(pos)
    vals = buf.values(t, s, n, pos)
    if vals.size != int(np.prod(dims)):
        buf.fail(pos, f"array {name!r}: {vals.size} values for dimensions {tuple(dims.tolist())}")
    return name, np.asarray(vals, dtype=np.float64).reshape(tuple(dims.tolist()), order="F")


def read_mat_v5(source: Source, *, name: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Read the real numeric arrays of a Level-5 MAT-file.

    Returns:
        ``{variable name: float64 array}`` with MATLAB's dimensions (column-major order kept).

    Raises:
        DataFormatError: not a MAT-file, a v7.3/HDF5 file, or a corrupt element.
    """
    raw, path = read_source(source, name)
    if raw[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in raw[:116]:
        raise DataFormatError("MATLAB v7.3 (HDF5) .mat files are not supported; re-save with -v7 or use CSV", path)
    if len(raw) < 128 or not raw[:116].startswith(b"MATLAB 5.0 MAT-file"):
        raise DataFormatError("not a MATLAB Level-5 MAT-file (bad header)", path)
    endian = {b"IM": "<", b"MI": ">"}.get(raw[126:128])
    if endian is None:
        raise DataFormatError("bad endian indicator in the MAT-file header", path)
    out: Dict[str, np.ndarray] = {}
    buf = _Buf(raw, endian, path)
    pos = 128
    while pos + 8 <= len(raw):
        t, n, s, nxt = buf.tag(pos)
        if t == _MI_COMPRESSED:
            try:
                inner = zlib.decompress(raw[s:s + n])
            except zlib.error as exc:
                buf.fail(pos, f"corrupt compressed element ({exc})")
            ib = _Buf(inner, endian, path, base=s)
            if len(inner) >= 8:
                it, _, iss, _ = ib.tag(0)
                if it == _MI_MATRIX:
                    nm, arr = _parse_matrix(ib, iss)
                    if arr is not None:
                        out[nm] = arr
        elif t == _MI_MATRIX:
            nm, arr = _parse_matrix(buf, s)
            if arr is not None:
                out[nm] = arr
        pos = nxt
    return out
