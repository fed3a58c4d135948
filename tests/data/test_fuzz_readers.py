"""Fuzzing the readers with hypothesis: any input either parses or raises DataFormatError.

Inputs are random bytes and random edits (truncation, byte flips, inserted junk, deleted or
replaced lines, NaN/inf tokens) of valid files, so most examples stay close to the real format
and reach deep into the parsers. No reader may raise anything else (IndexError, struct.error,
UnicodeDecodeError, ...), hang, or return non-finite coordinates.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asma.data.errors import DataFormatError
from asma.data.preprocess import preprocess_clip
from asma.data.readers.kinect_v1 import read_msr_skeleton, read_utkinect_joints, read_utkinect_labels
from asma.data.readers.matlab import read_mat_v5
from asma.data.readers.ntu import ntu_to_array, read_ntu_skeleton
from asma.data.readers.ntu_files import format_ntu_skeleton
from asma.data.readers.pkummd import read_pku_labels, read_pku_sequence
from asma.data.readers.coco import read_coco_keypoints_json
from asma.data.readers.kinetics import read_kinetics_json
from asma.data.readers.mediapipe import read_mediapipe_json
from asma.data.readers.pose_json import pose_to_clip
from asma.data.splits import read_pku_split_file

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
JUNK_LINES = [b"", b"nan nan nan", b"inf", b"-", b"24", b"3", b"1e999 1 2", b"0 0 0 0 0 0 0 0 0 0 0 0",
              b"null", b"{", b"\xff\xfe", b"1,2", b"\x00"]


@st.composite
def edited(draw, base: bytes):
    """A random sequence of edits of ``base``."""
    b = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "cut", "line", "dropline"]))
        n = len(b)
        if n == 0:
            b = bytearray(draw(st.binary(max_size=20)))
            continue
        i = draw(st.integers(0, n - 1))
        if op == "truncate":
            b = b[:i]
        elif op == "flip":
            b[i] = draw(st.integers(0, 255))
        elif op == "insert":
            b = b[:i] + draw(st.binary(min_size=1, max_size=8)) + b[i:]
        elif op == "cut":
            b = b[:i] + b[i + draw(st.integers(1, 200)):]
        else:
            lines = bytes(b).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            if op == "line":
                lines[k] = draw(st.sampled_from(JUNK_LINES))
            else:
                del lines[k]
            b = bytearray(b"\n".join(lines))
    return bytes(b)


def _must_parse_or_raise(fn, data: bytes):
    try:
        out = fn(data)
    except DataFormatError:
        return
    for arr in out if isinstance(out, tuple) else (out,):
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
            assert np.isfinite(arr).all()


_rng = np.random.default_rng(0)
NTU = format_ntu_skeleton([[(5, _rng.normal(size=(25, 3)))], [],
                           [(5, _rng.normal(size=(25, 3))), (7, _rng.normal(size=(25, 3)))]]).encode()


def _ntu(b):
    rec = read_ntu_skeleton(b, name="S001C001P001R001A001.skeleton")
    x = ntu_to_array(rec)
    return preprocess_clip(x) if len(rec.frame) else x


PKU = b"\n".join(b" ".join(b"%.4f" % v for v in _rng.uniform(-1, 3, 150)) for _ in range(4))
PKU_LABELS = b"1,1,2,1\n51,2,4,2\n"
UTK = b"\n".join(b"%d " % (10 + 3 * k) + b" ".join(b"%.5f" % v for v in _rng.normal(size=60)) for k in range(3))
UTK_LABELS = b"s01_e01\nwalk: 10 20\ncarry:  NaN NaN\ns02_e01\npush: 1 3\n"
MSR = b"2 20\n" + b"\n".join(b"40\n" + b"\n".join(b"%.4f %.4f %.4f 1" % tuple(_rng.normal(size=3)) for _ in range(40))
                             for _ in range(2))
KINETICS = json.dumps({"data": [{"frame_index": i + 1, "skeleton": [
    {"pose": _rng.uniform(0, 1, 36).round(3).tolist(), "score": _rng.uniform(0, 1, 18).round(3).tolist()}]}
    for i in range(3)], "label": "x", "label_index": 1}).encode()
COCO = json.dumps([{"image_id": k, "keypoints": _rng.uniform(0, 100, 51).round(2).tolist(), "score": 0.9}
                   for k in range(3)]).encode()
MEDIAPIPE = json.dumps([[{"x": 0.5, "y": 0.5, "z": 0.0, "visibility": 0.9}] * 33, None, []]).encode()
SPLIT = b"Training videos:\n0002-L, 0002-M,\nValidation videos:\n0003-L\n"


def _mat() -> bytes:
    import struct
    import zlib

    header = b"MATLAB 5.0 MAT-file, fuzz".ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
    vals = np.arange(6, dtype="<f8").tobytes()
    name = b"d_skel"
    body = (struct.pack("<II", 6, 8) + struct.pack("<II", 6, 0)  # flags: double class
            + struct.pack("<II", 5, 8) + struct.pack("<ii", 2, 3)  # dims 2 x 3
            + struct.pack("<II", 1, len(name)) + name + b"\x00" * 2  # name, padded
            + struct.pack("<II", 9, len(vals)) + vals)
    matrix = struct.pack("<II", 14, len(body)) + body
    comp = zlib.compress(matrix)
    return header + struct.pack("<II", 15, len(comp)) + comp


MAT = _mat()

def _ntu_xyz(b):
    rec = read_ntu_skeleton(b, name="S001C001P001R001A001.skeleton", values="xyz")
    assert rec.joints.shape[2] == 3
    return ntu_to_array(rec)


CASES = {
    "ntu": (NTU, _ntu),
    "ntu_xyz": (NTU, _ntu_xyz),
    "pku": (PKU, lambda b: read_pku_sequence(b, name="0002-L.txt")),
    "pku_labels": (PKU_LABELS, lambda b: read_pku_labels(b, name="0002-L.txt")),
    "utkinect": (UTK, lambda b: read_utkinect_joints(b, name="joints_s01_e01.txt")),
    "utkinect_labels": (UTK_LABELS, lambda b: read_utkinect_labels(b, name="actionLabel.txt")),
    "msr": (MSR, lambda b: read_msr_skeleton(b, name="a01_s01_e01_skeleton.txt")),
    "mat": (MAT, lambda b: read_mat_v5(b, name="a.mat")),
    "kinetics": (KINETICS, lambda b: pose_to_clip(read_kinetics_json(b, name="k.json"), 2)),
    "coco": (COCO, lambda b: pose_to_clip(read_coco_keypoints_json(b, name="c.json"), 2)),
    "mediapipe": (MEDIAPIPE, lambda b: pose_to_clip(read_mediapipe_json(b, name="m.json"), 1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_base_parses(case):
    base, fn = CASES[case]
    fn(base)  # the unedited input is valid


def test_mat_base_is_read_correctly():
    np.testing.assert_array_equal(read_mat_v5(MAT)["d_skel"], np.arange(6.0).reshape(2, 3, order="F"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_edited_inputs_parse_or_raise_data_format_error(case):
    base, fn = CASES[case]

    @FUZZ
    @given(edited(base))
    def run(data):
        _must_parse_or_raise(fn, data)

    run()


@pytest.mark.parametrize("case", ["ntu", "ntu_xyz", "pku", "utkinect", "msr", "mat", "kinetics", "coco"])
def test_random_bytes_parse_or_raise_data_format_error(case):
    _, fn = CASES[case]

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(st.binary(max_size=300))
    def run(data):
        _must_parse_or_raise(fn, data)

    run()


def test_split_file_fuzz(tmp_path):
    @FUZZ
    @given(edited(SPLIT))
    def run(data):
        p = tmp_path / "cross_view.txt"
        p.write_bytes(data)
        try:
            train, test = read_pku_split_file(p)
        except DataFormatError:
            return
        assert not set(train) & set(test)

    run()
