"""UTD-MHAD (``d_skel`` .mat via scipy): SDK reorder checked by bones and motion, counts, split, errors, prepare."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.kinect_v1 import read_utd_mhad
from asma.data.readers.matlab import read_mat_v5
from asma.data.readers.utd_mhad import SOURCE, UTD_MHAD_CLASS_NAMES
from asma.graph.layouts import KINECT20_EDGES

EDGES = np.array(KINECT20_EDGES) - 1


@functools.lru_cache(maxsize=1)
def _all(folder: str):
    items = SOURCE.list_items(Path(folder), [])
    clips = [SOURCE.read_item(it, 1)[0][0] for it in items]
    return clips


@pytest.fixture
def utd(realdata):
    return realdata / "utd_mhad_skeleton"


def _joints(c):
    return c.data[..., 0].transpose(1, 2, 0).astype(np.float64)


def test_counts_and_cross_subject_split_equal_the_provenance(utd):
    clips = _all(str(utd))
    assert len(clips) == 861 and len(UTD_MHAD_CLASS_NAMES) == 27
    names = {c.name for c in clips}
    assert {"a8_s1_t4_skeleton", "a23_s6_t4_skeleton", "a27_s8_t4_skeleton"}.isdisjoint(names)
    assert np.bincount([c.label for c in clips]).tolist() == [32] * 7 + [31] + [32] * 14 + [31] + [32] * 3 + [31]
    meta = {"subject": np.array([c.meta["subject"] for c in clips])}
    train, info = SOURCE.train_mask("xsub", meta)
    assert (int(train.sum()), int((~train).sum())) == (431, 430) and set(meta["subject"][train]) == {1, 3, 5, 7}
    lengths = [c.meta["length"] for c in clips]
    assert (min(lengths), max(lengths)) == (41, 125)


def test_reordered_to_sdk_bones_and_right_hand_actions(utd):
    clips = _all(str(utd))
    L = np.median([np.linalg.norm(_joints(c)[:, EDGES[:, 0]] - _joints(c)[:, EDGES[:, 1]], axis=-1).mean(0)
                   for c in clips], axis=0)
    cv = np.median([(lambda b: b.std(0) / b.mean(0))(np.linalg.norm(
        _joints(c)[:, EDGES[:, 0]] - _joints(c)[:, EDGES[:, 1]], axis=-1)) for c in clips], axis=0)
    assert (cv[[0, 1, 2, 4, 5, 8, 9, 12, 13, 16, 17]] < 0.1).all(), cv  # trunk and limbs
    assert 0.2 < L[4] < 0.3 and 0.4 < L[12] < 0.5 and abs(L[12] - L[16]) < 0.02  # upper arm, thighs
    # without the trunk reversal, "HipCenter-HipLeft" would join the head to a hip (~0.8 m)
    assert L[11] < 0.15
    raw = scipy.io.loadmat(str(utd / "a1_s1_t1_skeleton.mat"))["d_skel"].transpose(2, 0, 1)
    assert np.linalg.norm(raw[:, 0] - raw[:, 12], axis=-1).mean() > 0.6
    for a in (1, 3, 5):  # swipe left, wave, throw: right-hand actions
        for c in (c for c in clips if c.label == a - 1):
            J = _joints(c)
            travel = np.linalg.norm(np.diff(J, axis=0), axis=-1).sum(0)
            assert travel[11] > 3 * travel[7], c.name  # HandRight vs HandLeft


def test_scipy_reader_matches_the_file_and_corrupt_copies_are_named(utd, tmp_path):
    src = utd / "a3_s2_t1_skeleton.mat"
    d = scipy.io.loadmat(str(src))["d_skel"]
    np.testing.assert_array_equal(read_mat_v5(src)["d_skel"], d)
    J = read_utd_mhad(src)
    np.testing.assert_array_equal(J[:, 3], d[0].T)  # UTD joint 1 (head) -> SDK Head
    raw = src.read_bytes()
    p = tmp_path / "a3_s2_t1_skeleton.mat"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match=r"a3_s2_t1_skeleton.mat: corrupt MAT-file"):
        read_utd_mhad(p)
    scipy.io.savemat(str(p), {"d_skel": d[:19]})
    with pytest.raises(DataFormatError, match=r"a3_s2_t1_skeleton.mat: d_skel must be 20 x 3 x T"):
        read_utd_mhad(p)
    scipy.io.savemat(str(p), {"skel": d})
    with pytest.raises(DataFormatError, match="no numeric variable 'd_skel' \\(found: skel\\)"):
        read_utd_mhad(p)


def test_prepare_subset_end_to_end_and_skip_bad(utd, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    names = [f"a{a}_s{s}_t1_skeleton.mat" for a in (3, 27) for s in (1, 2, 3)]
    for n in names:
        (raw / n).symlink_to(utd / n)
    s = prepare_dataset("utd-mhad", raw, tmp_path / "out", workers=1)
    assert s.stores == {"utd-mhad-xsub": {"train": 4, "test": 2}}
    train, test = load_prepared("utd-mhad-xsub", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="asma data prepare utd-mhad --raw RAW_DIR"):
        load_prepared("utd-mhad-xsub", tmp_path / "elsewhere")
    assert train.data.shape == (4, 3, 50, 20, 1) and train.layout == "kinect20"
    assert [train.class_names[y] for y in test.labels] == ["wave", "squat"]
    assert test.meta["subject"].tolist() == [2, 2]
    (raw / names[0]).unlink()
    (raw / names[0]).write_bytes(b"MATLAB 5.0 MAT-file".ljust(128, b" "))
    with pytest.raises(DataFormatError, match=names[0]):
        prepare_dataset("utd-mhad", raw, tmp_path / "out2", workers=1)
    s = prepare_dataset("utd-mhad", raw, tmp_path / "out2", workers=1, skip_bad=True)
    assert [Path(b["file"]).name for b in s.bad] == [names[0]] and s.samples == 5
