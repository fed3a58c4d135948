"""The ``values="xyz"`` fast path of the NTU reader (issue 14.6) gives exactly the exact path's
x, y, z, structure and errors; anything unusual falls back to the exact path."""
from __future__ import annotations

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.readers._text import ByteLines, parse_decimals
from asma.data.readers.ntu import _read_xyz_fast, iter_ntu_files, read_ntu_skeleton

NAME = "S001C001P001R001A001.skeleton"


@pytest.fixture
def real_files(realdata):
    return iter_ntu_files(realdata / "ntu60_raw_skeleton")


def test_fast_path_equals_exact_path_on_real_files(real_files):
    assert len(real_files) == 13
    for f in real_files:
        raw = open(f, "rb").read()
        fast = _read_xyz_fast(raw, f)
        assert fast is not None, f  # real files take the fast path (CRLF, exponents like 7.257856E-05)
        full = read_ntu_skeleton(f)
        np.testing.assert_array_equal(fast.joints, full.joints[..., :3])  # bit-identical values
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


def test_files_without_bodies():
    from asma.data.readers.ntu import format_ntu_skeleton

    rec = _read_xyz_fast(format_ntu_skeleton([[], [], []]).encode(), NAME)
    assert rec is not None and rec.num_frames == 3 and rec.joints.shape == (0, 25, 3)
    assert parse_decimals(b"1 2", np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0,)


def test_byte_lines():
    lines = ByteLines.of(b"3\r\n1 2\r\n\r\nx")
    assert [lines[i] for i in range(len(lines))] == [b"3", b"1 2", b"", b"x"]
    assert len(ByteLines.of(b"1\n2\n")) == 2 and ByteLines.of(b"1\r2\n") is None
