"""Fuzzing the NW-UCLA, Penn Action, HDM05 and MSRC-12 readers: random edits of small valid files
either parse or raise DataFormatError (never IndexError, KeyError, struct.error, ...)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asma.data.errors import DataFormatError
from asma.data.readers.hdm05 import read_amc, read_asf
from asma.data.readers.msrc12 import read_msrc12_csv, read_msrc12_tags
from asma.data.readers.nwucla import read_nwucla_json
from asma.data.readers.penn_action import read_penn_action

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

UCLA = json.dumps({"file_name": "a01_s01_e00_v01", "label": 1,
                   "skeletons": np.round(np.random.default_rng(0).normal(size=(3, 20, 3)), 3).tolist()}).encode()
ASF = b"""# test
:version 1.10
:units
  mass 1.0
  length 0.45
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name lfemur
     direction 0.34202 -0.939693 0
     length 7.3
     axis 0 0 20  XYZ
    dof rx ry rz
  end
  begin
     id 2
     name ltibia
     direction 0 -1 0
     length 7.0
     axis 0 0 20  XYZ
    dof rx
  end
:hierarchy
  begin
    root lfemur
    lfemur ltibia
  end
"""
AMC = b":FULLY-SPECIFIED\r\n:DEGREES\r\n1\nroot 1 17 -4 10 20 30\r\nlfemur 5 0 1\r\nltibia 30\r\n" \
      b"2\nroot 1 17 -4 11 21 31\r\nlfemur 6 0 1\r\nltibia 31\r\n"
MSRC = b"\n".join(b"%d " % (1000 + 33 * t) + b" ".join(b"%.3f 0.5 2.0 1" % (0.01 * j) for j in range(20))
                  for t in range(4))
TAGS = b"XQPCTick;Tag\r\n54986068250;G3  Push right\r\n55095463082;G3  Push right\r\n"


def _penn() -> bytes:
    buf = io.BytesIO()
    x = np.arange(26, dtype=float).reshape(2, 13)
    scipy.io.savemat(buf, {"action": "squat", "pose": "front", "x": x, "y": x + 1, "visibility": np.ones((2, 13)),
                           "train": np.array([[1]]), "bbox": np.zeros((2, 4)), "dimensions": np.array([[360, 480, 2]]),
                           "nframes": np.array([[2]])})
    return buf.getvalue()


_ASF_SKEL = read_asf(ASF, name="HDM_xx.asf")
CASES = {
    "nwucla": (UCLA, lambda b: read_nwucla_json(b, name="a01_s01_e00_v01.json")),
    "penn": (_penn(), lambda b: read_penn_action(b, name="0001.mat")),
    "asf": (ASF, lambda b: read_asf(b, name="HDM_xx.asf")),
    "amc": (AMC, lambda b: read_amc(b, _ASF_SKEL, name="HDM_xx_squat1Reps_001_120.amc")),
    "msrc_csv": (MSRC, lambda b: read_msrc12_csv(b, name="P1_1_3_p01.csv")),
    "msrc_tags": (TAGS, lambda b: read_msrc12_tags(b, name="P1_1_3_p01.tagstream")),
}


@st.composite
def edited(draw, base: bytes):
    b = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "cut"]))
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        if op == "truncate":
            b = b[:i]
        elif op == "flip":
            b[i] = draw(st.integers(0, 255))
        elif op == "insert":
            b = b[:i] + draw(st.sampled_from([b"nan", b" ", b"\n", b"-", b"1e999", b"x", b"[", b"}", b"\x00"])) + b[i:]
        else:
            b = b[:i] + b[i + draw(st.integers(1, 40)):]
    return bytes(b)


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_base_parses(case):
    base, fn = CASES[case]
    fn(base)


@pytest.mark.parametrize("case", sorted(CASES))
def test_edits_parse_or_raise_data_format_error(case):
    base, fn = CASES[case]

    @FUZZ
    @given(edited(base))
    def run(data):
        try:
            out = fn(data)
        except DataFormatError:
            return
        arrays = out if isinstance(out, tuple) else out.values() if isinstance(out, dict) else [out]
        for a in arrays:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                assert np.isfinite(a).all()

    run()
