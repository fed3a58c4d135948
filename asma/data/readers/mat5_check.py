"""Structural check of a Level-5 MAT-file before :func:`scipy.io.loadmat` parses it.

scipy's MAT reader is not hardened for untrusted input (its ``loadmat`` docstring says so since
scipy 1.17, scipy PR #25166): some corrupt files crash the interpreter instead of raising, e.g. a
character array whose data element carries an unknown type code. A prepare run over thousands of
downloaded files must not die on one bad byte, so this walks every data element's tag first:
known type codes only, sizes inside their parent, matrix headers (flags, dimensions, name) well
formed, compressed elements decompressed with a size bound. It only reads tags and small headers;
scipy still does the parsing.
"""
from __future__ import annotations

import struct
import zlib
from typing import Optional

#: miINT8 .. miUTF32 (the MAT-file format's data types; 8, 10 and 11 are reserved).
_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18}
_MATRIX, _COMPRESSED, _INT8, _INT32, _UINT32 = 14, 15, 1, 5, 6
#: Bound on one decompressed element (a skeleton file is kilobytes to a few megabytes).
MAX_DECOMPRESSED = 512 * 1024 * 1024
_MAX_DEPTH = 32


class MatStructureError(ValueError):
    """The bytes are not a well-formed Level-5 MAT-file (the message says where)."""


def check_mat5(raw: bytes, max_decompressed: int = MAX_DECOMPRESSED) -> None:
    """Walk the data elements of a Level-5 MAT-file; raise :class:`MatStructureError` if malformed.

    Args:
        raw: the whole file (128-byte header, then data elements).
        max_decompressed: largest decompressed ``miCOMPRESSED`` element accepted, in bytes.
    """
    if len(raw) < 128:
        raise MatStructureError("shorter than the 128-byte header")
    order = {b"IM": "<", b"MI": ">"}.get(raw[126:128])
    if order is None:
        raise MatStructureError("bad endian indicator in the header")
    _walk(memoryview(raw), 128, len(raw), order, 0, max_decompressed, top=True)


def _tag(buf: memoryview, pos: int, end: int, order: str):
    """(type, nbytes, data start, next element) of the element at ``pos``."""
    if end - pos < 8:
        raise MatStructureError(f"truncated element tag at byte {pos}")
    first, second = struct.unpack_from(order + "II", buf, pos)
    if first >> 16:  # small data element: type and size packed in 4 bytes, data in the next 4
        mtype, nbytes = first & 0xFFFF, first >> 16
        if nbytes > 4:
            raise MatStructureError(f"small element of {nbytes} bytes at byte {pos}")
        return mtype, nbytes, pos + 4, pos + 8
    mtype, nbytes, start = first, second, pos + 8
    if nbytes > end - start:
        raise MatStructureError(f"element at byte {pos} declares {nbytes} bytes, {end - start} remain")
    size = nbytes if mtype == _COMPRESSED else nbytes + (-nbytes % 8)
    return mtype, nbytes, start, min(start + size, end)


def _walk(buf: memoryview, pos: int, end: int, order: str, depth: int, limit: int, top: bool = False) -> None:
    if depth > _MAX_DEPTH:
        raise MatStructureError("elements nested too deeply")
    while pos < end:
        if top and end - pos < 8 and not any(buf[pos:end]):
            return  # trailing padding
        mtype, nbytes, start, nxt = _tag(buf, pos, end, order)
        if mtype not in _TYPES:
            raise MatStructureError(f"unknown data type {mtype} at byte {pos}")
        if mtype == _COMPRESSED:
            _walk_compressed(buf[start:start + nbytes], order, depth, limit, pos)
        elif mtype == _MATRIX:
            _check_matrix(buf, start, start + nbytes, order, depth, limit)
        elif top:
            raise MatStructureError(f"top-level element of type {mtype} at byte {pos} (expected a matrix)")
        pos = nxt


def _walk_compressed(data: memoryview, order: str, depth: int, limit: int, at: int) -> None:
    d = zlib.decompressobj()
    try:
        out = d.decompress(bytes(data), limit + 1)
    except zlib.error as exc:
        raise MatStructureError(f"corrupt compressed element at byte {at} ({exc})") from None
    if len(out) > limit:
        raise MatStructureError(f"compressed element at byte {at} expands beyond {limit} bytes")
    view = memoryview(out)
    _walk(view, 0, len(view), order, depth + 1, limit, top=True)


def _check_matrix(buf: memoryview, pos: int, end: int, order: str, depth: int, limit: int) -> None:
    if pos == end:
        return  # an empty matrix element is legal
    expected = ((_UINT32, "array flags"), (_INT32, "dimensions"), (_INT8, "array name"))
    for want, what in expected:
        mtype, nbytes, start, pos_next = _tag(buf, pos, end, order)
        if mtype != want:
            raise MatStructureError(f"{what} at byte {pos} have type {mtype}, not {want}")
        if what == "array flags" and nbytes != 8:
            raise MatStructureError(f"array flags at byte {pos} are {nbytes} bytes, not 8")
        if what == "dimensions":
            _check_dims(buf, start, nbytes, order, pos)
        pos = pos_next
    _walk(buf, pos, end, order, depth + 1, limit)


def _check_dims(buf: memoryview, start: int, nbytes: int, order: str, at: int) -> Optional[int]:
    if nbytes < 8 or nbytes % 4:
        raise MatStructureError(f"dimensions at byte {at} are {nbytes} bytes (need >= 2 int32)")
    dims = struct.unpack_from(f"{order}{nbytes // 4}i", buf, start)
    if min(dims) < 0:
        raise MatStructureError(f"negative dimension {min(dims)} at byte {at}")
    total = 1
    for d in dims:
        total *= d
    if total > 2 ** 40:
        raise MatStructureError(f"dimensions {dims} at byte {at} are absurd")
    return total
