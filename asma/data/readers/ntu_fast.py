"""The vectorised x, y, z path of the NTU ``.skeleton`` reader (``read_ntu_skeleton(values="xyz")``).

The whole file (or a batch of files, :func:`read_xyz_fast_many`) is checked and parsed with numpy
on its bytes, no Python loop per frame, body or line: line and space offsets give every line's
token count, the frame/body/joint structure is verified from the count lines at once, and the
x, y, z tokens are converted by
:func:`parse_decimals` (SWAR on 16-byte words). Anything unusual (tabs, control bytes, doubled or
leading spaces, ``+3`` as a count, a bad token, a wrong count) returns ``None``, and the exact
line-by-line path of :mod:`asma.data.readers.ntu` then parses the file or names the bad line, so
line numbers are worked out only on the error path.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ._text import in_range

NUM_JOINTS = 25
_GROUP = NUM_JOINTS + 2  # lines per body: body line, joint count, 25 joint lines
_SPACES_BODY, _SPACES_JOINT = 9, 11  # single spaces in a body line (10 values), a joint line (12)


class XyzRecord(NamedTuple):
    """What the fast path found; ``K`` body entries, ``F`` frames."""

    num_frames: int
    frame: np.ndarray  # (K,) int64
    body_id: np.ndarray  # (K,) uint64
    line: np.ndarray  # (K,) int64, 1-based line of each body line
    xyz: np.ndarray  # (K, 25, 3) float64


def read_xyz_fast(raw: bytes) -> Optional[XyzRecord]:
    """x, y, z and the structure of a well-formed ``.skeleton`` file, or ``None`` (see the module).

    Shapes: ``xyz``: ``(K, 25, 3)``; ``frame``, ``body_id``, ``line``: ``(K,)``.
    """
    got = _parse([raw])
    return None if got is None else got[0]


def read_xyz_fast_many(raws: Sequence[bytes]) -> List[Optional[XyzRecord]]:
    """:func:`read_xyz_fast` of several files, equal to it file by file, with every pass run
    once over all of them. Each of the ~150 numpy calls of a file's parse costs about as much on
    a 30-frame file as on a 300-frame one: about 0.3 ms of a typical file's 1 ms is this fixed
    cost, which a batch pays once. When a pass over the whole batch refuses (a byte outside the
    format, a bad token, a value out of range), every file of the batch is parsed alone; a file
    whose structure is wrong is ``None`` without affecting the others.

    Shapes: as :func:`read_xyz_fast`, per file.
    """
    got = _parse(list(raws)) if len(raws) > 1 else None
    return [read_xyz_fast(r) for r in raws] if got is None else got


def _parse(raws: List[bytes]) -> Optional[List[Optional[XyzRecord]]]:
    """The records of the files ``raws`` (``None`` for a file whose structure is wrong), or
    ``None`` when a pass over all of them refuses."""
    if not raws:
        return []
    # every file ends with a newline in the joined buffer, so no line spans two files
    ends_nl = [r.endswith(b"\n") for r in raws]
    raw = b"".join(p for r, e in zip(raws, ends_nl) for p in ((r,) if e else (r, b"\n")))
    offsets = np.cumsum([0] + [len(r) + (not e) for r, e in zip(raws, ends_nl)])
    b = np.frombuffer(raw, np.uint8)
    nl = np.flatnonzero(b == 10)
    starts, ends = np.concatenate([[0], nl[:-1] + 1]), nl
    cr = (ends > starts) & (b[np.maximum(ends - 1, 0)] == 13)  # CRs that end a line
    # no control byte but the newlines and the CRs that end a line, no byte from 0x80 (read as
    # int8 those are negative: one pass for both)
    if np.count_nonzero(b.view(np.int8) < 32) != nl.size + np.count_nonzero(cr):
        return None
    ends = ends - cr
    # each file's lines without its trailing empty ones
    nonempty = np.flatnonzero(ends > starts)
    if nonempty.size == 0:
        return [None] * len(raws)
    lo = np.searchsorted(starts, offsets)  # first line of each file (lo[-1]: the number of lines)
    k = np.searchsorted(nonempty, lo[1:]) - 1
    last = np.maximum(np.where(k >= 0, nonempty[np.maximum(k, 0)] + 1, 0), lo[:-1])
    if (last != lo[1:]).any():
        keep = np.arange(starts.size) < np.repeat(last, np.diff(lo))
        starts, ends = starts[keep], ends[keep]
    first_line = np.concatenate([[0], np.cumsum(last - lo[:-1])])  # of each file, among the kept
    # no space at the start or end of a line
    if (b[starts] == 32).any() or (b[np.maximum(ends - 1, 0)] == 32).any():
        return None
    spaces = _SpaceBits(b)
    if spaces.doubled():
        return None
    structures = _structure(b, starts, ends, spaces.count(ends) - spaces.count(starts), first_line)
    ok = [f for f, st in enumerate(structures) if st is not None]
    body = np.concatenate([structures[f][2] + first_line[f] for f in ok]) if ok else np.zeros(0, np.int64)
    tok = (body[:, None] + 2 + np.arange(NUM_JOINTS)).ravel()  # joint lines
    s = spaces.first(starts[tok], 3)  # (J, 3) the spaces after x, y and z
    id_end = spaces.first(starts[body], 1)
    if s is None or id_end is None:
        return None
    ids = _body_ids(raw, starts[body], id_end[:, 0])
    if ids is None:
        return None
    # the offsets come from the line and space scans: in the file, each token non-empty
    xyz = _decimals(raw, b, np.stack([starts[tok], s[:, 0] + 1, s[:, 1] + 1], axis=1).ravel(), s.ravel())
    if xyz is None or not in_range(xyz).all():
        return None
    xyz = xyz.reshape(len(body), NUM_JOINTS, 3)
    out: List[Optional[XyzRecord]] = [None] * len(raws)
    at = 0
    for f in ok:
        num_frames, frame, local = structures[f]
        sl = slice(at, at + local.size)
        out[f] = XyzRecord(num_frames, frame, ids[sl], local + 1, xyz[sl])
        at += local.size
    return out


def _structure(b: np.ndarray, starts: np.ndarray, ends: np.ndarray, nsp: np.ndarray,
               first_line: np.ndarray) -> List[Optional[Tuple[int, np.ndarray, np.ndarray]]]:
    """Per file (file ``f``: the lines ``first_line[f]:first_line[f + 1]``, ``nsp`` spaces each):
    ``(num_frames, frame of each body, 0-based body lines of the file)`` when its lines follow
    the format exactly (counts as plain digits, joint counts ``25``, nothing after the last
    frame), else ``None``. Each file's verdict depends on its own lines only."""
    nfiles = first_line.size - 1
    n = starts.size
    bad = np.zeros(nfiles, bool)
    body = np.flatnonzero(nsp == _SPACES_BODY)
    fb = np.searchsorted(first_line, body, "right") - 1  # the file of each body line
    # a body line whose group does not fit in its file stays a count line (its spaces fail it)
    fits = body + _GROUP <= first_line[fb + 1]
    body, fb = body[fits], fb[fits]
    joints = body[:, None] + 2 + np.arange(NUM_JOINTS)
    bad[fb[(nsp[joints] != _SPACES_JOINT).any(axis=1)]] = True
    counts = np.ones(n, bool)
    counts[body] = counts[body + 1] = False
    counts[joints.ravel()] = False
    cnt = np.flatnonzero(counts)  # the first line of each file and one body-count line per frame
    fc = np.searchsorted(first_line, cnt, "right") - 1
    jc = starts[body + 1]  # the joint counts: exactly "25" ("025", " 25" are left to the exact path)
    bad[fb[(ends[body + 1] - jc != 2) | (b[jc] != 50) | (b[jc + 1] != 53)]] = True
    vals, ok = _small_ints(b, starts[cnt], ends[cnt])  # plain digits, so no spaces either
    bad[fc[~ok]] = True
    # a file's first line is a count line (the header: F), then F count lines, each where the
    # one before it says (the header: the next line; a frame: after its bodies), and the last
    # one's bodies end the file
    head = np.searchsorted(cnt, first_line[:-1])  # each file's first count line, in cnt
    head_end = np.searchsorted(cnt, first_line[1:])
    has = head < head_end  # a file without count lines fails the frame count below
    bad[has] |= cnt[head[has]] != first_line[:-1][has]
    is_head = np.zeros(cnt.size, bool)
    is_head[head[has]] = True
    expected = np.where(is_head, cnt + 1, cnt + 1 + _GROUP * vals)
    actual = np.append(cnt[1:], n)
    last = head_end[has] - 1
    actual[last] = first_line[1:][has]  # the last count line of each file: up to the file's end
    bad[fc[expected != actual]] = True
    num_frames = np.zeros(nfiles, np.int64)
    num_frames[has] = vals[head[has]]
    bad |= head_end - head - 1 != num_frames
    out: List[Optional[Tuple[int, np.ndarray, np.ndarray]]] = [None] * nfiles
    body_at = np.searchsorted(fb, np.arange(nfiles + 1))  # the bodies of file f: body_at[f]:body_at[f + 1]
    for f in np.flatnonzero(~bad).tolist():
        F = int(num_frames[f])
        out[f] = (F, np.repeat(np.arange(F, dtype=np.int64), vals[head[f] + 1:head_end[f]]),
                  body[body_at[f]:body_at[f + 1]] - first_line[f])
    return out


def _small_ints(b: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int = 9) -> Tuple[np.ndarray, np.ndarray]:
    """Non-negative integers written as 1-9 plain digits at ``b[starts:ends]``: ``(values, ok)``,
    ``ok`` false (and the value 0) where a token is anything else.

    Shapes: ``(N,)`` -> ``(N,)`` int64, ``(N,)`` bool.
    """
    n = ends - starts
    ok = (n >= 1) & (n <= width)
    pos = ends[:, None] - width + np.arange(width)  # right-aligned windows
    inside = pos >= starts[:, None]
    d = b[np.maximum(pos, 0)].astype(np.int64) - 48
    d *= inside  # 0 before the token
    ok &= ((d >= 0) & (d <= 9)).all(axis=1)
    vals = d @ 10 ** np.arange(width - 1, -1, -1)
    vals[~ok] = 0
    return vals, ok


class _SpaceBits:
    """The file's spaces as a bit set (bit ``i`` of byte ``k``: character ``8k + i``), which
    answers the per-line questions without listing the file's ~50,000 space offsets (listing
    them was the largest single cost of the parse)."""

    _WINDOW = 57  # characters a 64-bit read covers from any bit offset

    def __init__(self, b: np.ndarray):
        bits = np.packbits(b == 32, bitorder="little")
        self.bits = np.concatenate([bits, np.zeros(16 - bits.size % 8, np.uint8)])  # whole words + 8
        self.words = self.bits.view(_U8)
        # spaces before character 64k (a running count per word: numpy's cumsum is slow per element)
        self.before = np.concatenate([[0], np.cumsum(np.bitwise_count(self.words), dtype=np.int64)])

    def doubled(self) -> bool:
        """Whether two spaces are adjacent anywhere."""
        w = self.words
        return bool((w & ((w >> _ONE) | np.concatenate([w[1:], w[:1] & 0]) << np.uint64(63))).any())

    def count(self, pos: np.ndarray) -> np.ndarray:
        """Spaces before each character offset ``pos``. Shapes: ``(N,)`` -> ``(N,)`` int64."""
        k = pos >> 6
        low = self.words[k] & ((_ONE << (pos & 63).astype(np.uint64)) - _ONE)
        return self.before[k] + np.bitwise_count(low)

    def first(self, pos: np.ndarray, n: int) -> Optional[np.ndarray]:
        """Offsets of the first ``n`` spaces at or after each offset ``pos`` within
        :attr:`_WINDOW` characters, or ``None`` when one is further away.
        Shapes: ``(N,)`` -> ``(N, n)`` int64."""
        words = np.ndarray((self.bits.size - 7,), _U8, self.bits, strides=(1,))  # at every byte
        w = words[pos >> 3] >> (pos & 7).astype(np.uint64)
        out = np.empty((pos.size, n), np.int64)
        for i in range(n):
            if i:
                w &= w - _ONE  # drop the lowest set bit
            out[:, i] = np.bitwise_count(~w & (w - _ONE))  # trailing zeros (64 for none)
        if pos.size and out[:, -1].max() >= self._WINDOW:
            return None
        return out + pos[:, None]


def _body_ids(raw: bytes, starts: np.ndarray, ends: np.ndarray) -> Optional[np.ndarray]:
    """The body ids (first value of each body line) as uint64, ``int()`` as the exact path does,
    or ``None`` when one is not an integer in the uint64 range. One ``int`` per body, not per value."""
    try:
        ids = [int(raw[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
    except ValueError:
        return None
    if ids and not (0 <= min(ids) and max(ids) < 2 ** 64):
        return None
    return np.array(ids, dtype=np.uint64)


# -------------------------------------------------------------------------------------------
# decimal tokens, 16 bytes at a time

_W = 16  # window bytes: two little-endian 64-bit words
_U8 = np.dtype("<u8")
_H80, _L7F, _L76, _L30, _L1E = (np.uint64(0x0101010101010101 * c) for c in (0x80, 0x7F, 0x76, 0x30, 0x1E))
_U16 = np.dtype("V16")  # a 16-byte record: two words
# _KEEP[n]: mask of the last n bytes of a 16-byte window
_KEEP = np.tril(np.full((_W + 1, _W), 0xFF, np.uint8), -1)[:, ::-1].copy().view(_U16).ravel()
_POW10 = np.concatenate([10.0 ** np.arange(_W + 1), -(10.0 ** np.arange(_W + 1))])  # then the signed divisors
_POW10_INT = np.array([10 ** k for k in range(_W + 1)], np.uint64)
_MAX_DIGITS = 15  # mantissas below 2**53: one exact division gives the correctly rounded value
_ONE, _SEVEN, _EIGHT, _TEN = (np.uint64(k) for k in (1, 7, 8, 10))
_M1, _M2, _M3 = (np.uint64(m) for m in (0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 10 ** 8))


def _digit_words(d: np.ndarray) -> np.ndarray:
    """8 digit values (0-9) per word, first byte most significant -> their value (Lemire's SWAR;
    the digits are already 0-9, so the first mask is not needed), in place."""
    d *= np.uint64(2561)
    d >>= _EIGHT
    d &= _M1
    d *= np.uint64(6553601)
    d >>= np.uint64(16)
    d &= _M2
    d *= np.uint64(42949672960001)
    d >>= np.uint64(32)
    return d


def parse_decimals(raw: bytes, starts: np.ndarray, ends: np.ndarray) -> Optional[np.ndarray]:
    """Vectorised ``float()`` of the tokens ``raw[starts[k]:ends[k]]`` (any shape of offsets).

    Plain decimals (``-0.2702398``, ``3.561895``, ``5.``, ``.5``) of at most 16 bytes after
    a minus sign and 15 digits: each token's last 16 bytes are read as two 64-bit words and XORed
    with ``"0"``, so digits become 0-9, the dot 0x1E and the bytes before the token (masked) 0;
    SWAR masks check every byte, the digits combine into an exact integer mantissa that is
    divided once by a power of ten, which equals ``float()`` exactly (Clinger's fast path).
    Others (a ``+`` sign, an exponent, more digits) go through ``float()`` one by one. ``None``
    when a token is not a number (the caller's exact path then names the line). Hand-written
    because numpy has no C routine that parses selected tokens of a buffer (``np.fromstring`` and
    the string casts parse every token, at several times the cost).

    Shapes: ``starts``, ``ends``: ``(...)`` -> ``(...)`` float64.
    """
    b = np.frombuffer(raw, np.uint8)
    shape = np.shape(starts)
    starts, ends = np.ravel(starts).astype(np.int64), np.ravel(ends).astype(np.int64)
    if starts.size == 0:
        return np.zeros(shape)
    if b.size == 0 or (ends <= starts).any() or starts.min() < 0 or ends.max() > b.size:
        return None
    val = _decimals(raw, b, starts, ends)
    return None if val is None else val.reshape(shape)


def _decimals(raw: bytes, b: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Optional[np.ndarray]:
    """:func:`parse_decimals` of ``(N,)`` int64 offsets already known to be non-empty tokens
    inside ``b`` (the bytes of ``raw``). Shapes: ``(N,)`` -> ``(N,)`` float64."""
    if starts.size == 0:
        return np.zeros(0)
    neg = b[starts] == 45
    nb = ends - starts - neg  # bytes after a "-" (a "+" stays in the window: float() takes it)
    wend = ends
    if ends.min() < _W:  # room for the window before the first token
        b, wend = np.concatenate([np.zeros(_W, np.uint8), b]), ends + _W
    # the 16 bytes before each token end: one gather of 16-byte records at every byte offset,
    # viewed as (N, 2) words (first, second); the steps then reuse three buffers in place (with a
    # fresh array per step the temporaries outgrow the cache)
    rec = np.ndarray((b.size - _W + 1,), _U16, b, strides=(1,))[wend - _W]
    t = rec.view(_U8).reshape(-1, 2)
    t ^= _L30
    t &= _KEEP[np.minimum(nb, _W)].view(_U8).reshape(-1, 2)  # digits 0-9, "." 0x1E, before the token 0
    dot = np.bitwise_xor(t, _L1E)
    dot += _L7F
    np.invert(dot, out=dot)
    dot &= _H80  # high bit of each "." byte (ASCII: no carries)
    tmp = t & _H80  # bytes from 0x80: the masks assume ASCII
    bad = np.add(t, _L76)
    bad &= _H80
    bad ^= dot
    bad |= tmp  # high bit of each byte above 9 that is not a dot
    ndot = np.bitwise_count(dot)
    ndot = ndot[:, 0].astype(np.int64) + ndot[:, 1]
    slow = ((bad[:, 0] | bad[:, 1]) != 0) | (nb > _W) | (nb - ndot > _MAX_DIGITS)
    if ((ndot > 1) | (nb - ndot < 1))[~slow].any():
        return None
    np.right_shift(dot, _SEVEN, out=tmp)
    tmp *= np.uint64(0x1E)
    t -= tmp  # the dot read as a 0 digit, taken out below
    a = _digit_words(t)
    a = a[:, 0] * _M3 + a[:, 1]
    np.subtract(dot, _ONE, out=tmp)
    tmp |= dot
    np.invert(tmp, out=tmp)
    after = np.bitwise_count(tmp) >> 3  # bytes after the dot in its word (0: none)
    frac = after[:, 1].astype(np.intp)
    frac += np.where(dot[:, 0] != 0, after[:, 0] + 8, 0)  # digits after the dot
    r = a % _POW10_INT[frac]
    mant = np.where(ndot == 1, (a - r) // _TEN + r, a)
    val = mant.astype(np.float64) / _POW10[frac + neg * (_W + 1)]  # "-0" gives -0.0, as float() does
    for k in np.flatnonzero(slow).tolist():
        try:
            val[k] = float(raw[starts[k]:ends[k]])
        except ValueError:
            return None
    return val
