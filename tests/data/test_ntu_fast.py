"""The ``values="xyz"`` fast path of the NTU reader (issue 14.6, :mod:`asma.data.readers.ntu_fast`)
gives exactly the exact path's x, y, z, structure and errors; anything unusual falls back to the
exact path."""
from __future__ import annotations

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.readers import ntu as ntu_module
from asma.data.readers.ntu import _read_xyz_fast, read_ntu_skeleton
from asma.data.readers.ntu_files import format_ntu_skeleton, iter_ntu_files
from asma.data.readers.ntu_fast import _SpaceBits, parse_decimals, read_xyz_fast, read_xyz_fast_many

NAME = "S001C001P001R001A001.skeleton"


@pytest.fixture
def real_files(realdata):
    return iter_ntu_files(realdata / "ntu60_raw_skeleton")


def _float_reference(raw: bytes) -> np.ndarray:
    """x, y, z of every joint line with Python's ``float()``, walking the counts (the lineage's
    ``read_skeleton_filter`` logic, independent of both asma paths). Shapes: ``(K, 25, 3)``."""
    lines = raw.decode().splitlines()
    out, i = [], 1
    for _ in range(int(lines[0])):
        nb, i = int(lines[i]), i + 1
        for _ in range(nb):
            nj = int(lines[i + 1])
            out.append([[float(v) for v in lines[i + 2 + j].split()[:3]] for j in range(nj)])
            i += 2 + nj
    return np.array(out).reshape(-1, 25, 3)


def test_fast_path_equals_exact_path_on_real_files(real_files):
    assert len(real_files) == 13
    for f in real_files:
        raw = open(f, "rb").read()
        fast = _read_xyz_fast(raw, f)
        assert fast is not None, f  # real files take the fast path (CRLF, exponents like 7.257856E-05)
        full = read_ntu_skeleton(f)
        np.testing.assert_array_equal(fast.joints, full.joints[..., :3])  # bit-identical values
        np.testing.assert_array_equal(fast.joints, _float_reference(raw))
        for key in ("frame", "body_id", "line"):
            np.testing.assert_array_equal(getattr(fast, key), getattr(full, key))
        assert fast.num_frames == full.num_frames and fast.body_info.shape == (len(full.frame), 0)
        lf = _read_xyz_fast(raw.replace(b"\r\n", b"\n"), f)
        np.testing.assert_array_equal(lf.joints, fast.joints)


def _lines(realdata):
    return (realdata / "ntu60_raw_skeleton" / "gardiens" / NAME).read_bytes().split(b"\r\n")


@pytest.mark.parametrize("line, replacement, message", [
    (4, b"24", "line 4: expected 25 joints, got 24"),
    (1240, b"0.1 0.2 0.3 1 2 3 4 5 6 7 8", "line 1240: expected 12 values on the joint line, got 11"),
    (1240, b"0.1 0.2 0.3 1 2 3 4 5 6 7 8 2 9", "line 1240: expected 12 values on the joint line, got 13"),
    (1240, b"0.1 0.2 nan 1 2 3 4 5 6 7 8 2", "line 1240: non-finite coordinate 'nan'"),
    (1240, b"0.1 0.2 1e40 1 2 3 4 5 6 7 8 2", "line 1240: non-finite coordinate '1e40'"),
    (1240, b"0.1 0.2- 0.3 1 2 3 4 5 6 7 8 2", "line 1240: not a number: '0.2-'"),
    (1240, b"0.1 1.2.3 0.3 1 2 3 4 5 6 7 8 2", "line 1240: not a number: '1.2.3'"),
])
def test_xyz_errors_match_the_exact_path(realdata, line, replacement, message):
    lines = _lines(realdata)
    lines[line - 1] = replacement
    raw = b"\r\n".join(lines)
    assert _read_xyz_fast(raw, NAME) is None
    with pytest.raises(DataFormatError) as info:
        read_ntu_skeleton(raw, name=NAME, values="xyz")
    assert str(info.value).startswith(f"{NAME} {message}") and info.value.line == line


@pytest.mark.parametrize("replacement", [b"0.1\t0.2 0.3 1 2 3 4 5 6 7 8 2", b"0.1  0.2 0.3 1 2 3 4 5 6 7 8 2",
                                         b" 0.1 0.2 0.3 1 2 3 4 5 6 7 8 2", b"1.0e-1 0.2 0.3 1 2 3 4 5 6 7 8 2",
                                         b"0.100000000000000000001 0.2 0.3 1 2 3 4 5 6 7 8 2"])
def test_unusual_but_valid_lines_parse_the_same(realdata, replacement):
    lines = _lines(realdata)
    lines[1239] = replacement
    raw = b"\r\n".join(lines)
    xyz = read_ntu_skeleton(raw, name=NAME, values="xyz").joints
    np.testing.assert_array_equal(xyz, read_ntu_skeleton(raw, name=NAME).joints[..., :3])
    assert (xyz.reshape(-1, 3) == (0.1, 0.2, 0.3)).all(axis=1).sum() == 1


def test_xyz_mode_does_not_parse_the_other_columns(realdata):
    lines = _lines(realdata)
    lines[1239] = b"0.1 0.2 0.3 x 2 3 4 5 6 7 8 2"  # colour/orientation values are not read
    raw = b"\r\n".join(lines)
    assert read_ntu_skeleton(raw, name=NAME, values="xyz").joints.shape[2] == 3
    with pytest.raises(DataFormatError, match="line 1240: not a number: 'x'"):
        read_ntu_skeleton(raw, name=NAME)
    with pytest.raises(ValueError, match="values must be 'all' or 'xyz'"):
        read_ntu_skeleton(raw, values="xy")


def test_parse_decimals_equals_float():
    rng = np.random.default_rng(0)
    toks = [f"{v:.7g}".encode() for v in rng.normal(scale=[1, 100, 1e-4], size=(3000, 3)).ravel()]
    toks += [b"-0", b"5.", b".5", b"+3", b"7.257856E-05", b"123456789012345678", b"-0.0000001"]
    raw = b" ".join(toks)
    starts = np.cumsum([0] + [len(t) + 1 for t in toks[:-1]])
    ends = starts + np.array([len(t) for t in toks])
    got = parse_decimals(raw, starts, ends)
    ref = np.array([float(t) for t in toks])
    assert np.array_equal(got, ref) and np.array_equal(np.signbit(got), np.signbit(ref))
    for bad in (b"1-2", b"1.2.3", b"-", b".", b"abc", b"1e", b"+-1"):
        assert parse_decimals(bad, np.array([0]), np.array([len(bad)])) is None


def test_parse_decimals_every_length_and_dot_position():
    """Every token length 1-17 after the sign, the dot at every position (or none), signs and
    leading zeros: equal to ``float()``, bit for bit; the longer ones take ``float()`` itself."""
    rng = np.random.default_rng(3)
    toks = []
    for n in range(1, 18):
        for dot in range(-1, n):
            for sign in (b"", b"-", b"+"):
                d = bytearray(rng.integers(48, 58, n).astype(np.uint8).tobytes())
                if dot >= 0:
                    d[dot] = 46
                if dot != 0 or n > 1:  # "." alone is not a number
                    toks.append(sign + bytes(d))
    raw = b"x" * 3 + b" ".join(toks)  # tokens start past offset 0: the window reads the bytes before
    lens = np.array([len(t) for t in toks])
    starts = 3 + np.cumsum(np.r_[0, lens[:-1] + 1])
    got = parse_decimals(raw, starts, starts + lens)
    ref = np.array([float(t) for t in toks])
    assert np.array_equal(got, ref) and np.array_equal(np.signbit(got), np.signbit(ref))
    for bad in (b"1..2", b"12.3.", b"9\xb5", b"0x10", b"1 2"):
        assert parse_decimals(b"0 " + bad, np.array([2]), np.array([2 + len(bad)])) is None, bad


def test_space_bits_answer_like_the_space_offsets():
    """Per-line space counts, adjacent spaces and the first spaces after an offset, against the
    plain list of space offsets on random text (crossing 64-bit word boundaries)."""
    rng = np.random.default_rng(4)
    for size in (1, 7, 64, 65, 1000, 5003):
        b = np.where(rng.random(size) < 0.3, 32, 65).astype(np.uint8)
        sp = np.flatnonzero(b == 32)
        bits = _SpaceBits(b)
        pos = np.sort(rng.integers(0, size + 1, 50))
        np.testing.assert_array_equal(bits.count(pos), np.searchsorted(sp, pos))
        assert bits.doubled() == bool((np.diff(sp) == 1).any())
        pos = pos[pos < size]
        k = np.searchsorted(sp, pos)[:, None] + np.arange(2)
        near = (k < sp.size).all(axis=1)
        near[near] = sp[k[near, 1]] - pos[near] < _SpaceBits._WINDOW
        got = bits.first(pos[near], 2)
        if near.any():
            np.testing.assert_array_equal(got, sp[k[near]])
        if not near.all():
            assert bits.first(pos, 2) is None


def test_tokens_far_from_the_line_start_fall_back():
    """An x token longer than the space window: the fast path declines, the exact path reads it."""
    joints = np.random.default_rng(5).normal(size=(25, 3))
    raw = format_ntu_skeleton([[(1, joints)]]).encode()
    lines = raw.split(b"\r\n")
    long_x = b"0." + b"0" * 60 + b"1"
    cols = lines[4].split(b" ")
    bad = b"\r\n".join(lines[:4] + [b" ".join([long_x] + cols[1:])] + lines[5:])
    assert read_xyz_fast(raw) is not None and read_xyz_fast(bad) is None
    got = read_ntu_skeleton(bad, values="xyz").joints
    assert got[0, 0, 0] == float(long_x) and np.array_equal(got[0, 1:], read_xyz_fast(raw).xyz[0, 1:])


def test_files_without_bodies():
    from asma.data.readers.ntu_files import format_ntu_skeleton

    rec = _read_xyz_fast(format_ntu_skeleton([[], [], []]).encode(), NAME)
    assert rec is not None and rec.num_frames == 3 and rec.joints.shape == (0, 25, 3)
    assert parse_decimals(b"1 2", np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0,)


def test_structure_variants_take_the_fast_path_or_fall_back():
    rng = np.random.default_rng(1)
    def j():
        return rng.normal(size=(25, 3))

    frames = [[], [(5, j())], [(5, j()), (2 ** 64 - 1, j())], [(7, j()) for _ in range(3)], []]
    raw = format_ntu_skeleton(frames).encode()
    rec = read_xyz_fast(raw)
    assert rec is not None and rec.num_frames == 5 and rec.frame.tolist() == [1, 2, 2, 3, 3, 3]
    assert rec.body_id.tolist() == [5, 5, 2 ** 64 - 1, 7, 7, 7] and rec.line.tolist() == [4, 32, 59, 87, 114, 141]
    np.testing.assert_array_equal(rec.xyz, read_ntu_skeleton(raw).joints[..., :3])
    assert read_xyz_fast(raw + b"\r\n\r\n") is not None  # trailing blank lines
    lines = raw.split(b"\r\n")
    tab = lines[3].replace(b" ", b"\t", 1)
    for k, repl in [(0, b"+5"), (0, b" 5"), (1, b"-0"), (2, b"1 "), (0, b"0_5"), (3, tab), (4, b" 25")]:
        bad = b"\r\n".join(lines[:k] + [repl] + lines[k + 1:])
        assert read_xyz_fast(bad) is None, repl  # valid for int(): the exact path reads these
        np.testing.assert_array_equal(read_ntu_skeleton(bad, values="xyz").joints, rec.xyz)
    assert read_xyz_fast(b"\r\n".join(lines[:4] + [b"025"] + lines[5:])) is None  # joint counts: "25" only
    for k, repl in [(1, b"00"), (2, b"01")]:  # leading zeros in the frame and body counts are plain digits
        ok = read_xyz_fast(b"\r\n".join(lines[:k] + [repl] + lines[k + 1:]))
        np.testing.assert_array_equal(ok.xyz, rec.xyz)
    assert read_xyz_fast(b"") is None and read_xyz_fast(b"0\n").num_frames == 0
    assert read_xyz_fast(b"1\r1\n") is None  # a lone CR


def test_hostile_mutations_agree_with_the_exact_path(realdata, monkeypatch):
    """Random byte edits of a real two-person file: the fast path either declines or returns
    what the exact path returns; every failure is a DataFormatError naming a line."""
    src = realdata / "ntu60_raw_skeleton" / "levelca" / "S001C003P008R002A058.skeleton"
    lines = src.read_bytes().split(b"\r\n")
    head = b"\r\n".join([b"4"] + lines[1:1 + 4 * 55]) + b"\r\n"  # its first 4 frames (2 bodies each)
    rng = np.random.default_rng(0)
    alphabet = list(b"0123456789.-+ eE\r\n\tx") + [0, 255]
    seen = {"fast": 0, "fallback": 0, "error": 0}
    for _ in range(300):
        raw = bytearray(head)
        for _ in range(int(rng.integers(1, 4))):
            pos, op = int(rng.integers(len(raw))), int(rng.integers(3))
            if op == 0:
                raw[pos] = alphabet[int(rng.integers(len(alphabet)))]
            elif op == 1:
                del raw[pos]
            else:
                raw.insert(pos, alphabet[int(rng.integers(len(alphabet)))])
        raw = bytes(raw)
        fast = read_xyz_fast(raw)
        with monkeypatch.context() as m:
            m.setattr(ntu_module, "read_xyz_fast", lambda _raw: None)
            try:
                exact = read_ntu_skeleton(raw, name=NAME, values="xyz")
            except DataFormatError as exc:
                exact = exc
        if isinstance(exact, DataFormatError):
            assert exact.line is not None or "empty file" in str(exact), str(exact)
            # the fast path checks only x, y, z of the 12 joint values, like before (the exact
            # path falls back to parsing all 12 once a row fails its C parser)
            assert fast is None or ("not a number" in str(exact) and "(value 1)" not in str(exact)
                                    and "(value 2)" not in str(exact) and "(value 3)" not in str(exact)), str(exact)
            seen["error"] += 1
            continue
        if fast is None:
            seen["fallback"] += 1
        else:
            seen["fast"] += 1
            np.testing.assert_array_equal(fast.xyz, exact.joints)
            for key in ("frame", "body_id", "line"):
                np.testing.assert_array_equal(getattr(fast, key), getattr(exact, key))
            assert fast.num_frames == exact.num_frames
    assert min(seen.values()) >= 10, seen  # all three outcomes exercised


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a.num_frames == b.num_frames and all(np.array_equal(x, y) and x.dtype == y.dtype
                                                for x, y in zip(a[1:], b[1:]))


def _structural_variants(rng) -> list:
    """Well-formed files and line-level edits of them (counts, lost/extra lines, endings)."""
    def j():
        return rng.normal(size=(25, 3))

    out = []
    for _ in range(40):
        frames = [[(int(rng.integers(1, 9)), j()) for _ in range(int(rng.integers(0, 3)))]
                  for _ in range(int(rng.integers(0, 5)))]
        raw = format_ntu_skeleton(frames, newline="\r\n" if rng.random() < 0.5 else "\n").encode()
        out.append(raw)
        sep = b"\r\n" if b"\r\n" in raw else b"\n"
        lines = raw.split(sep)
        k = int(rng.integers(len(lines)))
        edits = [lines[:k] + lines[k + 1:], lines[:k] + [lines[k]] + lines[k:], lines + [b"1"],
                 lines[:k] + [str(int(rng.integers(0, 4))).encode()] + lines[k + 1:], lines[:-1], lines + [b"", b""]]
        if b"25" in lines:  # a joint count other than "25"; a file that starts with a body
            c = lines.index(b"25")
            edits.append(lines[:c] + [[b"24", b"26", b"025", b"5"][int(rng.integers(4))]] + lines[c + 1:])
            edits.append(lines[c - 1:c + 26] + [b"0"])
        out += [sep.join(e) for e in edits]
        out.append(raw.rstrip(b"\r\n"))  # no final newline
        out.append(raw[:-1])  # a lone CR at the end
    return out + [b"", b"\n", b"0", b"0\n", b"0\r\n\r\n", b"1\n0\n", b"2\n0\n", b"x\n"]


def _structure_only(raw: bytes) -> bool:
    """Whether only the frame/body structure is wrong: each line alone looks fine (ASCII digits,
    single inner spaces), so every pass over the bytes and tokens accepts it."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    return all(not ln or (ln.strip() == ln and b"  " not in ln and set(ln) <= set(b"0123456789.- ")) for ln in lines)


def test_batches_equal_one_file_at_a_time(realdata, monkeypatch):
    """:func:`read_xyz_fast_many` on random batches of well-formed files, line-level edits of
    them and byte-level mutations of a real file: each record equals :func:`read_xyz_fast`'s
    (whose records equal the exact path's),
    and a file with a wrong structure does not make the batch parse file by file."""
    import asma.data.readers.ntu_fast as nf

    rng = np.random.default_rng(7)
    files = _structural_variants(rng)
    head = (realdata / "ntu60_raw_skeleton" / "levelca" / "S001C003P008R002A058.skeleton").read_bytes()
    head = b"\r\n".join([b"3"] + head.split(b"\r\n")[1:1 + 3 * 55]) + b"\r\n"
    for _ in range(150):
        raw = bytearray(head)
        pos = int(rng.integers(len(raw)))
        raw[pos:pos + 1] = bytes([rng.choice(list(b"0123456789.- \r\nx"))]) if rng.random() < 0.7 else b""
        files.append(bytes(raw))
    files += [head] * 20
    ref = [read_xyz_fast(r) for r in files]
    assert sum(r is None for r in ref) > 50 and sum(r is not None for r in ref) > 100
    with monkeypatch.context() as m:  # what the fast path accepts, the exact path reads the same
        m.setattr(ntu_module, "read_xyz_fast", lambda _raw: None)
        for raw, r in zip(files, ref):
            if r is not None:
                try:
                    exact = read_ntu_skeleton(raw, name=NAME, values="xyz")
                except DataFormatError as exc:  # in one of the 9 values the fast path does not read
                    assert "not a number" in str(exc) and not any(f"(value {v})" in str(exc) for v in (1, 2, 3))
                    continue
                assert r.num_frames == exact.num_frames and np.array_equal(r.xyz, exact.joints), raw[:60]
                assert all(np.array_equal(getattr(r, k), getattr(exact, k)) for k in ("frame", "body_id", "line"))
    for _ in range(3):  # every file, in batches of 2-11 random neighbours
        order = rng.permutation(len(files))
        cuts = np.cumsum(rng.integers(2, 12, len(files)))
        for pick in np.split(order, cuts[cuts < len(files)]):
            for i, g in zip(pick, read_xyz_fast_many([files[i] for i in pick])):
                assert _same(g, ref[i]), files[i][:60]
    # a file with a wrong structure is None in the batch; the others are not parsed again
    wrong = [i for i, r in enumerate(ref) if r is None and _structure_only(files[i])]
    assert len(wrong) > 20
    monkeypatch.setattr(nf, "read_xyz_fast", lambda raw: pytest.fail("the batch was parsed file by file"))
    pick = [i for pair in zip(wrong, range(len(files) - 20, len(files))) for i in pair]  # next to the real head
    assert all(_same(g, ref[i]) for g, i in zip(read_xyz_fast_many([files[i] for i in pick]), pick))


def test_read_ntu_skeletons(real_files, tmp_path):
    """Several files in one call: the records of :func:`read_ntu_skeleton`; a bad or missing
    file raises (the first one) or takes its place with ``return_exceptions``."""
    from asma.data.readers.ntu import read_ntu_skeletons

    recs = read_ntu_skeletons(real_files)
    for f, rec in zip(real_files, recs):
        one = read_ntu_skeleton(f, values="xyz")
        assert rec.path == f and rec.num_frames == one.num_frames
        for key in ("frame", "body_id", "line", "joints"):
            np.testing.assert_array_equal(getattr(rec, key), getattr(one, key))
    lines = open(real_files[0], "rb").read().split(b"\r\n")
    lines[3] = b"24"
    bad = tmp_path / NAME
    bad.write_bytes(b"\r\n".join(lines))
    srcs = [real_files[1], str(bad), str(tmp_path / "missing.skeleton"), real_files[2]]
    out = read_ntu_skeletons(srcs, return_exceptions=True)
    assert isinstance(out[1], DataFormatError) and out[1].line == 4 and out[1].path == str(bad)
    assert isinstance(out[2], FileNotFoundError)
    np.testing.assert_array_equal(out[3].joints, recs[2].joints)
    with pytest.raises(DataFormatError, match="line 4: expected 25 joints, got 24"):
        read_ntu_skeletons(srcs)
    for batch_bytes in (1, 700_000, None):  # one file per call, a few, all at once
        again = read_ntu_skeletons(real_files, batch_bytes=batch_bytes)
        assert all(np.array_equal(a.joints, b.joints) and np.array_equal(a.frame, b.frame) for a, b in zip(again, recs))
    full = read_ntu_skeletons(real_files[:2], values="all")
    assert full[0].joints.shape[2] == 12
    with pytest.raises(ValueError, match="values must be"):
        read_ntu_skeletons(real_files, values="x")
