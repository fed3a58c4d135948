"""Kinect v1 (20 joints): UTKinect-Action3D, MSR Action3D / DailyActivity3D, UTD-MHAD."""
from __future__ import annotations

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.readers.kinect_v1 import (MSR_ACTION3D_TO_SDK, UTKINECT_CLASSES, joints_to_clip, load_utkinect,
                                         read_msr_skeleton, read_utd_mhad, read_utkinect_joints,
                                         read_utkinect_labels, utkinect_clips, utkinect_cross_subject)
from asma.data.readers.matlab import read_mat_v5
from asma.graph.layouts import KINECT20_EDGES


@pytest.fixture
def utk(realdata):
    return realdata / "utkinect_action3d"


def _bones(j):
    """(F, 20, 3) -> mean length of each kinect20 bone."""
    return np.array([np.linalg.norm(j[:, a - 1] - j[:, b - 1], axis=1).mean() for a, b in KINECT20_EDGES])


def test_utkinect_joints_non_contiguous_frames(utk):
    fn, j = read_utkinect_joints(utk / "joints_s01_e01.txt")
    assert j.shape == (560, 20, 3) and fn.shape == (560,)
    assert fn[:3].tolist() == [190, 190, 194]  # repeated and skipped frame numbers
    assert (np.diff(fn) >= 0).all() and (np.diff(fn) > 1).any()
    # the row with frame number 252: first and last joint
    k = int(np.flatnonzero(fn == 252)[0])
    np.testing.assert_allclose(j[k, 0], [0.746392, -0.118030, 2.015845])
    np.testing.assert_allclose(j[k, 19], [0.871816, -0.901856, 2.062167])
    b = _bones(j)  # plausible bones in the SDK order (upper arm ~0.26 m, thigh ~0.45 m)
    assert 0.15 < b[4] < 0.4 and 0.3 < b[12] < 0.6


def test_utkinect_labels_and_segments(utk):
    segs = read_utkinect_labels(utk / "actionLabel.txt")
    assert len(segs) == 200
    assert (segs[0].sequence, segs[0].action, segs[0].start, segs[0].end) == ("s01_e01", "walk", 252, 390)
    nan = [s for s in segs if s.start is None]
    assert len(nan) == 1 and (nan[0].sequence, nan[0].action, nan[0].line) == ("s10_e02", "carry", 215)
    clips, skipped = utkinect_clips(utk)
    assert len(clips) == 199 and len(skipped) == 1 and "NaN NaN" in skipped[0]["reason"]
    first = clips[0]
    assert first.name == "s01_e01_walk" and first.clip.shape == (3, 46, 20, 1)  # 46 rows numbered 252..390
    np.testing.assert_allclose(first.clip[:, 0, 0, 0], [0.746392, -0.118030, 2.015845], rtol=1e-6)
    counts = np.bincount([c.label for c in clips], minlength=10)
    assert counts.tolist() == [20, 20, 20, 20, 19, 20, 20, 20, 20, 20]
    # the corrected label file changes s01_e02 walk from 154-192 (12 rows) to 154-270 (36 rows)
    a = {c.name: c for c in utkinect_clips(utk)[0]}["s01_e02_walk"]
    b = {c.name: c for c in utkinect_clips(utk, "actionLabel_modified.txt")[0]}["s01_e02_walk"]
    assert a.clip.shape[1] == 12 and b.clip.shape[1] == 36


def test_load_utkinect_and_cross_subject(utk):
    arrays = load_utkinect(utk)
    assert arrays.data.shape == (199, 3, 50, 20, 1) and arrays.layout == "kinect20"
    assert arrays.class_names == UTKINECT_CLASSES
    assert np.abs(arrays.data[:, :, :, 2]).max() < 1e-6  # centred on ShoulderCenter
    assert arrays.meta["length"][0] == 46 and arrays.meta["start"][0] == 252
    train, test = utkinect_cross_subject(arrays)
    assert (len(train), len(test)) == (100, 99)
    assert set(train.meta["subject"]) == {1, 3, 5, 7, 9} and set(test.meta["subject"]) == {2, 4, 6, 8, 10}
    raw = load_utkinect(utk, preprocess=False)
    assert raw.data.shape[2] == int(raw.meta["length"].max())


def test_utkinect_errors_name_line(tmp_path, utk):
    lines = (utk / "joints_s01_e01.txt").read_bytes().split(b"\n")
    lines[6] = b" ".join(lines[6].split()[:-1])
    with pytest.raises(DataFormatError, match=r"joints_s01_e01.txt line 7: expected 61 values"):
        read_utkinect_joints(b"\n".join(lines), name="joints_s01_e01.txt")
    lines = (utk / "joints_s01_e01.txt").read_bytes().split(b"\n")
    lines[2] = b"194.5" + lines[2][3:]
    with pytest.raises(DataFormatError, match=r"line 3: frame number 194.5 is not an integer"):
        read_utkinect_joints(b"\n".join(lines), name="joints_s01_e01.txt")
    with pytest.raises(DataFormatError, match=r"line 2: unknown action 'jump'"):
        read_utkinect_labels(b"s01_e01\njump: 1 2\n", name="actionLabel.txt")
    with pytest.raises(DataFormatError, match=r"line 1: action line before the first"):
        read_utkinect_labels(b"walk: 1 2\n", name="actionLabel.txt")
    with pytest.raises(DataFormatError, match=r"line 2: end frame 1 before start frame 5"):
        read_utkinect_labels(b"s01_e01\nwalk: 5 1\n", name="actionLabel.txt")


def test_msr_daily_activity_sample(realdata):
    p = realdata / "kinect_v1_format_samples" / "MSRDailyAction3D" / "a03_s01_e01_skeleton.txt"
    j = read_msr_skeleton(p)
    assert j.shape == (311, 20, 4)
    np.testing.assert_allclose(j[0, 0], [-0.044125, -0.39809, 2.34933, 1])  # line 3 (world row of joint 1)
    b = _bones(j[..., :3])  # SDK order: plausible upper arm / thigh lengths
    assert 0.15 < b[4] < 0.35 and 0.25 < b[12] < 0.5
    lines = p.read_bytes().split(b"\n")
    lines[42] = b"39"
    with pytest.raises(DataFormatError, match=r"line 43: expected 40 rows per frame, got 39"):
        read_msr_skeleton(b"\n".join(lines), name=p.name)


def test_msr_action3d_reorders_to_sdk():
    rng = np.random.default_rng(0)
    msr = rng.normal(size=(3, 20, 4))
    text = "\n".join(" ".join(f"{v:.6f}" for v in row) for frame in msr for row in frame)
    j = read_msr_skeleton(text.encode(), name="a01_s01_e01_skeleton3D.txt")
    assert j.shape == (3, 20, 4)
    np.testing.assert_allclose(j[:, 0], msr[:, 6], atol=1e-6)  # HipCenter = MSR joint 7
    np.testing.assert_allclose(j[:, 3], msr[:, 19], atol=1e-6)  # Head = MSR joint 20
    np.testing.assert_allclose(j, msr[:, MSR_ACTION3D_TO_SDK], atol=1e-6)
    np.testing.assert_allclose(read_msr_skeleton(text.encode(), order="sdk"), msr, atol=1e-6)
    with pytest.raises(DataFormatError, match="59 joint lines is not a multiple of 20"):
        read_msr_skeleton("\n".join(text.split("\n")[:59]).encode(), name="a.txt")


def test_utd_mhad_mat_and_csv(realdata):
    d = realdata / "kinect_v1_format_samples" / "UTD-MHAD"
    mats = read_mat_v5(d / "a1_s1_t2_skeleton.mat")
    assert list(mats) == ["d_skel"] and mats["d_skel"].shape == (20, 3, 52)
    a = read_utd_mhad(d / "a1_s1_t2_skeleton.mat")
    b = read_utd_mhad(d / "a1_s1_t2_skeleton.csv")
    assert a.shape == b.shape == (52, 20, 3)
    np.testing.assert_allclose(a, b, atol=1e-4)  # the CSV is rounded to 5 significant digits
    # UTD row 1 is the head -> SDK slot 4 (index 3); CSV row 1 starts -0.047672,0.47898,2.8249
    np.testing.assert_allclose(b[0, 3], [-0.047672, 0.47898, 2.8249])
    np.testing.assert_allclose(a[:, 4:], mats["d_skel"].transpose(2, 0, 1)[:, 4:])
    bones = _bones(a)
    assert 0.15 < bones[4] < 0.4
    clip = joints_to_clip(a, max_persons=2)
    assert clip.shape == (3, 52, 20, 2) and (clip[..., 1] == 0).all()
    with pytest.raises(DataFormatError, match="not a MATLAB Level-5 MAT-file"):
        read_mat_v5(b"hello" * 40, name="x.mat")
