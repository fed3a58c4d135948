"""NTU RGB+D raw .skeleton parser: real files (../shared/realdata) and synthetic edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.readers.ntu import (body_activity, ntu_sample_name, ntu_to_array, parse_ntu_name, rank_bodies,
                                   read_ntu_clip, read_ntu_skeleton)
from asma.data.readers.ntu_files import (NTU60_CLASS_NAMES, NTU120_CLASS_NAMES, format_ntu_skeleton,
                                         iter_ntu_files, read_missing_list)

# (frames, bodies per frame, distinct body ids) from the folder's PROVENANCE.md
EXPECTED = {
    "S001C001P001R001A001": (103, 1), "S001C001P001R001A011": (82, 1), "S002C001P003R001A003": (100, 1),
    "S003C001P015R001A034": (71, 1), "S004C002P003R001A017": (124, 1), "S001C001P001R001A050": (74, 2),
    "S001C003P008R002A058": (70, 2), "S017C003P020R002A054": (42, 2), "S017C003P020R002A055": (66, 2),
    "S017C003P020R002A056": (80, 2), "S017C003P020R002A057": (76, 2), "S017C003P020R002A058": (65, 2),
}


@pytest.fixture
def ntu_dir(realdata):
    return realdata / "ntu60_raw_skeleton"


def test_all_real_files_parse_with_expected_shapes(ntu_dir):
    files = iter_ntu_files(ntu_dir)
    assert len(files) == 13
    for f in files:
        rec = read_ntu_skeleton(f)
        frames, bodies = EXPECTED[rec.name]
        assert rec.num_frames == frames
        assert (rec.bodies_per_frame == bodies).all()
        assert len(rec.body_ids) == bodies
        assert rec.joints.shape == (frames * bodies, 25, 12)
        assert set(np.unique(rec.joints[:, :, 11])) <= {0.0, 1.0, 2.0}  # tracking state
        clip = read_ntu_clip(f)
        assert clip.shape == (3, frames, 25, 2) and clip.dtype == np.float32
        assert (clip[..., 1] == 0).all() == (bodies == 1)


def test_known_lines_levelca(ntu_dir):
    rec = read_ntu_skeleton(ntu_dir / "levelca" / "S001C003P008R002A058.skeleton")
    # line 3: "72057594037944738 0 1 1 1 1 0 0.01119184 -0.256052 2" (uint64 id kept exactly)
    assert int(rec.body_id[0]) == 72057594037944738
    assert rec.line[0] == 3
    np.testing.assert_allclose(rec.body_info[0], [0, 1, 1, 1, 1, 0, 0.01119184, -0.256052, 2])
    # line 5: first joint of the first body
    np.testing.assert_allclose(rec.joints[0, 0], [0.7201789, 0.1647426, 3.561895, 336.5812, 192.8021, 1184.537,
                                                  489.4118, -0.2218947, 0.03421978, 0.968875, -0.1042736, 2])
    clip = ntu_to_array(rec, body_rule="file-order")
    np.testing.assert_allclose(clip[:, 0, 0, 0], [0.7201789, 0.1647426, 3.561895], rtol=1e-6)


def test_known_lines_deep_in_files(ntu_dir):
    rec = read_ntu_skeleton(ntu_dir / "photonictree" / "S001C001P001R001A001.skeleton")
    # line 2885 (the last line): joint 25 (ThumbRight) of frame 103
    np.testing.assert_allclose(rec.joints[-1, 24, :7], [0.1140334, 0.7601054, 3.444, 268.4992, 127.5008,
                                                        1012.275, 334.0016])
    np.testing.assert_allclose(rec.joints[0, 0, :3], [0.2181153, 0.1725972, 3.785547])
    rec = read_ntu_skeleton(ntu_dir / "photonictree" / "S017C003P020R002A056.skeleton")
    # line 2000: frame 37 (0-based 36), first body (its info is on line 1983), joint 16 (FootLeft)
    k = 72
    assert rec.frame[k] == 36 and rec.line[k] == 1983 and int(rec.body_id[k]) == 72057594037937917
    np.testing.assert_allclose(rec.joints[k, 15], [0.5923531, -0.6483575, 3.708737, 314.9861, 272.6775, 1143.854,
                                                   752.2577, 0, 0, 0, 0, 2])


def test_crlf_copy_equals_lf_copy(ntu_dir):
    crlf = ntu_dir / "gardiens" / "S001C001P001R001A001.skeleton"
    lf = ntu_dir / "photonictree" / "S001C001P001R001A001.skeleton"
    assert b"\r\n" in crlf.read_bytes() and b"\r\n" not in lf.read_bytes()
    a, b = read_ntu_skeleton(crlf), read_ntu_skeleton(lf)
    assert a.num_frames == b.num_frames
    for field in ("frame", "body_id", "body_info", "joints", "line"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(read_ntu_clip(crlf), read_ntu_clip(lf))
    # old-Mac CR-only endings as well
    cr = lf.read_bytes().replace(b"\n", b"\r")
    np.testing.assert_array_equal(read_ntu_skeleton(cr, name="x.skeleton").joints, b.joints)


def test_body_rules_on_real_two_person_file(ntu_dir):
    rec = read_ntu_skeleton(ntu_dir / "photonictree" / "S001C001P001R001A050.skeleton")
    first, second = rec.body_ids  # listed first / second in every frame
    act = body_activity(rec)
    assert act[second] > 10 * act[first]  # the punching person moves far more
    by_order = ntu_to_array(rec, body_rule="file-order")
    by_activity = ntu_to_array(rec, body_rule="activity")
    # file order: slot 0 = the first listed body; activity: the most active body in slot 0
    np.testing.assert_array_equal(by_order[..., 0], by_activity[..., 1])
    np.testing.assert_array_equal(by_order[..., 1], by_activity[..., 0])
    sel = rec.body_id == np.uint64(second)
    np.testing.assert_allclose(by_activity[..., 0][:, rec.frame[sel]], rec.joints[sel, :, :3].transpose(2, 0, 1),
                               rtol=1e-6)


def _body(seed, scale=0.01, shift=0.0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(25, 3)) * 0.2 + [0, 0, 3.0]
    return lambda t: base + shift + scale * np.sin(t + np.arange(25)[:, None])


def test_zero_one_two_three_bodies_and_slot_assignment():
    still, mover, ghost = _body(0, 0.01), _body(1, 0.3, 1.0), _body(2, 0.2, -1.0)
    frames = [[]]  # frame 0: no body
    frames += [[(10, still(t)), (20, mover(t))] for t in range(1, 20)]
    frames += [[(20, mover(t)), (10, still(t)), (30, ghost(t))] for t in range(20, 23)]  # 3 bodies, order swapped
    frames += [[(20, mover(23))]]
    text = format_ntu_skeleton(frames, newline="\n")
    rec = read_ntu_skeleton(text.encode(), name="S001C001P001R001A050.skeleton")
    assert rec.num_frames == 24
    np.testing.assert_array_equal(rec.bodies_per_frame, [0] + [2] * 19 + [3] * 3 + [1])
    assert rec.body_ids == [10, 20, 30]
    act = body_activity(rec)
    assert act[30] > act[10]  # the short ghost moves more than the still person ...
    assert rank_bodies(rec) == [20, 10, 30]  # ... but short tracks (<= 11 frames) rank last
    x = ntu_to_array(rec, max_bodies=2, body_rule="activity")
    assert (x[:, 0] == 0).all()  # the empty frame stays zero
    for t in range(1, 23):  # mover always in slot 0, the still person in slot 1, the ghost dropped
        np.testing.assert_allclose(x[:, t, :, 0], mover(t).T, atol=1e-6)
        np.testing.assert_allclose(x[:, t, :, 1], still(t).T, atol=1e-6)
    assert (x[:, 23, :, 1] == 0).all()
    order = ntu_to_array(rec, max_bodies=2, body_rule="file-order")
    np.testing.assert_allclose(order[:, 1, :, 0], still(1).T, atol=1e-6)  # listed first
    np.testing.assert_allclose(order[:, 20, :, 0], mover(20).T, atol=1e-6)  # order swapped in frame 20
    three = ntu_to_array(rec, max_bodies=3, body_rule="file-order")
    np.testing.assert_allclose(three[:, 21, :, 2], ghost(21).T, atol=1e-6)


def test_all_frames_empty_is_empty_sequence():
    text = format_ntu_skeleton([[], [], []])
    rec = read_ntu_skeleton(text.encode(), name="S001C001P001R001A001.skeleton")
    assert rec.num_frames == 3 and rec.joints.shape == (0, 25, 12)
    assert (ntu_to_array(rec) == 0).all()
    with pytest.raises(EmptySequenceError, match="S001C001P001R001A001.skeleton: no skeleton in any of the 3 frames"):
        read_ntu_clip(text.encode(), name="S001C001P001R001A001.skeleton")
    with pytest.raises(DataFormatError, match="empty file"):
        read_ntu_skeleton(b"", name="a.skeleton")


def _real_lines(ntu_dir):
    return (ntu_dir / "gardiens" / "S001C001P001R001A001.skeleton").read_bytes().split(b"\r\n")


@pytest.mark.parametrize("line,replacement,message", [
    (4, b"24", "line 4: expected 25 joints, got 24"),
    (1, b"x103", "line 1: expected an integer frame count, got 'x103'"),
    (2, b"-1", "line 2: negative body count -1"),
    (3, b"72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083", "line 3: expected 10 values on the body line, got 9"),
    (1240, b"0.1 0.2 0.3 1 2 3 4 5 6 7 8", "line 1240: expected 12 values on the joint line, got 11"),
    (1240, b"0.1 0.2 nan 1 2 3 4 5 6 7 8 2", "line 1240: non-finite coordinate 'nan'"),
    (1240, b"0.1 0.2 inf 1 2 3 4 5 6 7 8 2", "line 1240: non-finite coordinate 'inf'"),
    (1240, b"0.1 0.2 1e40 1 2 3 4 5 6 7 8 2", "line 1240: non-finite coordinate '1e40'"),
    (1240, b"0.1 0.2 0,3 1 2 3 4 5 6 7 8 2", "line 1240: not a number: '0,3'"),
])
def test_corrupt_real_file_names_file_and_line(ntu_dir, line, replacement, message):
    lines = _real_lines(ntu_dir)
    lines[line - 1] = replacement
    with pytest.raises(DataFormatError) as info:
        read_ntu_skeleton(b"\r\n".join(lines), name="S001C001P001R001A001.skeleton")
    assert str(info.value).startswith(f"S001C001P001R001A001.skeleton {message}")
    assert info.value.line == line


def test_truncated_and_trailing_data(ntu_dir):
    raw = (ntu_dir / "gardiens" / "S001C001P001R001A001.skeleton").read_bytes()
    with pytest.raises(DataFormatError, match=r"line 1500: file ends early: expected joint"):
        read_ntu_skeleton(b"\r\n".join(raw.split(b"\r\n")[:1500]), name="S001C001P001R001A001.skeleton")
    with pytest.raises(DataFormatError, match=r"file ends early: expected the body count of frame 103"):
        read_ntu_skeleton(b"\r\n".join(raw.split(b"\r\n")[:2857]), name="x.skeleton")
    with pytest.raises(DataFormatError, match=r"line 2886: unexpected data after the last frame"):
        read_ntu_skeleton(raw + b"1\r\n", name="x.skeleton")
    # a truncated last line (cut inside a number) is a wrong value count, named
    with pytest.raises(DataFormatError, match=r"line 2885: expected 12 values"):
        read_ntu_skeleton(raw.rstrip(b"\r\n")[:-10], name="x.skeleton")
    # trailing blank lines are fine
    assert read_ntu_skeleton(raw + b"\r\n\r\n", name="x.skeleton").num_frames == 103
    with pytest.raises(DataFormatError, match="not a text file"):
        read_ntu_skeleton(raw[:100] + b"\xff\xfe" + raw[100:], name="x.skeleton")


def test_names_labels_and_missing_lists(realdata):
    assert parse_ntu_name("S017C003P020R002A056.skeleton") == {
        "setup": 17, "camera": 3, "subject": 20, "replication": 2, "action": 56}
    assert parse_ntu_name("/a/b/S032C001P106R002A120") ["action"] == 120
    assert ntu_sample_name("/x/S001C001P001R001A001.skeleton\r") == "S001C001P001R001A001"
    with pytest.raises(DataFormatError, match="does not match the NTU pattern"):
        parse_ntu_name("foo.skeleton")
    assert len(NTU60_CLASS_NAMES) == 60 and len(NTU120_CLASS_NAMES) == 120
    assert NTU120_CLASS_NAMES[0] == "drink water" and NTU120_CLASS_NAMES[57] == "handshaking"
    assert NTU120_CLASS_NAMES[60] == "put on headphone"
    lists = realdata / "ntu_missing_skeleton_lists"
    m60 = read_missing_list(lists / "NTU_RGBD_samples_with_missing_skeletons.txt")
    m120 = read_missing_list(lists / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert len(m60) == 302 and len(m120) == 535 and m60 <= m120
    assert "S001C002P005R002A008" in m60


def test_writer_round_trip_crlf_and_lf():
    rng = np.random.default_rng(0)
    frames = [[(7, rng.normal(size=(25, 3)))], [(7, rng.normal(size=(25, 3))), (9, rng.normal(size=(25, 3)))]]
    for nl in ("\r\n", "\n"):
        rec = read_ntu_skeleton(format_ntu_skeleton(frames, newline=nl).encode(), name="x.skeleton")
        np.testing.assert_allclose(rec.xyz[0], frames[0][0][1], rtol=1e-6)
        np.testing.assert_allclose(rec.xyz[2], frames[1][1][1], rtol=1e-6)
        assert rec.body_ids == [7, 9]


def test_parsing_speed_is_not_pure_python(ntu_dir):
    import time

    files = iter_ntu_files(ntu_dir)
    t = time.perf_counter()
    for f in files:
        read_ntu_clip(f)
    per_file = (time.perf_counter() - t) / len(files)
    assert per_file < 0.1, f"{per_file * 1e3:.1f} ms per file"
