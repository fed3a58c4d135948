"""Helpers shared by the text readers: decoding, fast numeric blocks, precise error location.

Fast paths parse whole blocks of lines at once (``np.loadtxt``'s C parser); when a block fails
they fall back to a per-line check that names the first bad line. Readers never raise anything
but :class:`~asma.data.errors.DataFormatError` on malformed input (``OSError`` for I/O).
"""
from __future__ import annotations

import os
import warnings
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import DataFormatError

Source = Union[str, "os.PathLike[str]", bytes]


def read_source(source: Source, name: Optional[str] = None):
    """Return ``(raw_bytes, display_path)`` for a path or for raw bytes (``name`` labels errors)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), (name or "<bytes>")
    path = os.fspath(source)
    with open(path, "rb") as fh:
        return fh.read(), (name or path)


def decode_text(raw: bytes, path: str) -> str:
    """Decode UTF-8 (ASCII in practice), naming the line of the first undecodable byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(f"not a text file (undecodable byte 0x{raw[exc.start]:02x})", path, line) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataFormatError("not a text file (NUL byte)", path, line)
    return text


def split_lines(text: str) -> List[str]:
    """Physical lines (``\\n``, ``\\r\\n`` or ``\\r`` endings), without their endings.

    A final line ending does not create an extra empty line.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_int(token: str, path: str, line: int, what: str) -> int:
    """``int(token)`` or a DataFormatError naming ``what``."""
    try:
        return int(token)
    except (ValueError, TypeError):
        raise DataFormatError(f"expected an integer {what}, got {token.strip()[:40]!r}", path, line) from None


def parse_float_row(line_text: str, ncols: Optional[int], path: str, line: int,
                    what: str = "numbers", finite_cols: Optional[int] = None,
                    sep: Optional[str] = None) -> np.ndarray:
    """Parse one line of numbers exactly (the slow, precise path).

    Args:
        ncols: required number of values (``None``: any).
        finite_cols: the first ``finite_cols`` values must be finite (``None``: all).
        sep: separator (``None``: whitespace).
    """
    toks = line_text.split(sep) if sep is not None else line_text.split()
    if sep is not None:
        toks = [t.strip() for t in toks]
        if toks and toks[-1] == "":
            toks = toks[:-1]
    if ncols is not None and len(toks) != ncols:
        raise DataFormatError(f"expected {ncols} {what}, got {len(toks)}", path, line)
    vals = np.empty(len(toks), dtype=np.float64)
    for k, t in enumerate(toks):
        try:
            vals[k] = float(t)
        except ValueError:
            raise DataFormatError(f"not a number: {t[:40]!r} (value {k + 1})", path, line) from None
    check = vals if finite_cols is None else vals[:finite_cols]
    ok = in_range(check)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(f"non-finite coordinate {toks[bad]!r} (value {bad + 1})", path, line)
    return vals


_F32_MAX = float(np.finfo(np.float32).max)


def in_range(a: np.ndarray) -> np.ndarray:
    """Finite and representable as float32 (what the stores hold)."""
    with np.errstate(invalid="ignore"):
        return np.abs(a) <= _F32_MAX


def parse_block(lines: Sequence[str], line_numbers: Sequence[int], ncols: int, path: str,
                what: str = "numbers", finite_cols: Optional[int] = None,
                sep: Optional[str] = None) -> np.ndarray:
    """Parse a block of equally long numeric lines into ``(len(lines), ncols)`` float64.

    Fast path: one ``np.loadtxt`` call (C parser, checks that every row has the same number
    of columns). On any failure, or when a value that must be finite is not, every line is
    re-checked with :func:`parse_float_row` so the error names the first bad line.

    Args:
        lines: the text lines (without line endings).
        line_numbers: their 1-based line numbers in the file (for errors).
        ncols: values per line.
        finite_cols: the first ``finite_cols`` columns must be finite (``None``: all).
        sep: value separator (``None``: whitespace; ``","`` for CSV).
    """
    n = len(lines)
    if n == 0:
        return np.zeros((0, ncols), dtype=np.float64)
    arr = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(lines, dtype=np.float64, ndmin=2, delimiter=sep, comments=None)
    except (ValueError, IndexError, TypeError):
        arr = None
    if arr is not None and arr.shape == (n, ncols):
        check = arr if finite_cols is None else arr[:, :finite_cols]
        if in_range(check).all():
            return arr
    for text, ln in zip(lines, line_numbers):
        parse_float_row(text, ncols, path, ln, what=what, finite_cols=finite_cols, sep=sep)
    # every line is fine on its own but the block was not (should not happen): be explicit
    raise DataFormatError(f"could not parse {what} in lines {line_numbers[0]}-{line_numbers[-1]}", path)
