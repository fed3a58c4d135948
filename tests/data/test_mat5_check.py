"""The MAT-file structure check that keeps corrupt files from crashing scipy's reader."""
import io
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import scipy.io

from asma.data.errors import DataFormatError
from asma.data.readers.mat5_check import MatStructureError, check_mat5
from asma.data.readers.matlab import read_mat_v5


def _mat(**variables) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    return buf.getvalue()


def test_unknown_type_code_in_a_char_array_is_an_error_not_a_crash():
    raw = bytearray(_mat(action="squat", pose="front"))
    # 'pose' starts at byte 200; its character data tag is at 248: type miUTF8 (16) -> 0xc410
    assert raw[248] == 16 and raw[249] == 0
    raw[249] = 0xC4
    with pytest.raises(MatStructureError, match="unknown data type 50192 at byte 248"):
        check_mat5(bytes(raw))
    with pytest.raises(DataFormatError, match="bad.mat.*corrupt MAT-file"):
        read_mat_v5(bytes(raw), name="bad.mat")


def test_well_formed_files_pass_including_compressed_ones():
    x = np.arange(26, dtype=float).reshape(2, 13)
    plain = _mat(x=x, action="squat", cell=np.array([[1, 2]], dtype=object), s={"a": 1.0})
    check_mat5(plain)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"x": x}, do_compression=True)
    check_mat5(buf.getvalue())
    np.testing.assert_array_equal(read_mat_v5(buf.getvalue(), name="c.mat")["x"], x)


def test_sizes_and_headers_are_bounded():
    raw = bytearray(_mat(x=np.zeros((2, 3))))
    raw[132:136] = (10 ** 6).to_bytes(4, "little")  # first element claims 1 MB
    with pytest.raises(MatStructureError, match="declares 1000000 bytes"):
        check_mat5(bytes(raw))
    with pytest.raises(MatStructureError, match="endian"):
        check_mat5(bytes(128))
    bomb = zlib.compress(bytes(4096))
    tag = (15).to_bytes(4, "little") + len(bomb).to_bytes(4, "little")
    with pytest.raises(MatStructureError, match="expands beyond 1024"):
        check_mat5(_mat()[:128] + tag + bomb, max_decompressed=1024)


def test_real_mat_files_pass(realdata):
    files = sorted((realdata / "utd_mhad_skeleton").glob("*.mat"))[:40]
    files += sorted((realdata / "penn_action_labels" / "labels").glob("*.mat"))[:40]
    assert files
    for f in files:
        check_mat5(f.read_bytes())


def test_mutated_files_never_crash_the_interpreter():
    # In a child process, so a crash of scipy's C reader fails this test instead of killing pytest.
    code = textwrap.dedent("""
        import io, random, numpy as np, scipy.io
        from asma.data.errors import DataFormatError
        from asma.data.readers.matlab import read_mat_v5
        buf = io.BytesIO()
        x = np.arange(26, dtype=float).reshape(2, 13)
        scipy.io.savemat(buf, {"action": "squat", "pose": "front", "x": x, "y": x + 1, "train": np.array([[1]])})
        base, rng, n = buf.getvalue(), random.Random(0), 0
        for _ in range(1500):
            b = bytearray(base)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(b))
                op = rng.choice("tfic")
                if op == "t": b = b[:i]
                elif op == "f": b[i] = rng.randrange(256)
                elif op == "i": b = b[:i] + rng.choice([b"\\x00", b"x", b"\\xff"]) + b[i:]
                else: b = b[:i] + b[i + rng.randint(1, 40):]
                if not b: break
            try:
                read_mat_v5(bytes(b), name="m.mat")
            except DataFormatError:
                n += 1
        print("refused", n)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) > 100  # most mutations are caught, none crashes
