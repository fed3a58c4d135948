"""Penn Action (2D, 13 joints + visibility): layout order, counts, official split, errors, prepare."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.penn_action import PENN_CLASS_NAMES, SOURCE, read_penn_action
from asma.graph import get_layout

COUNTS = {"baseball_pitch": 167, "baseball_swing": 173, "bench_press": 140, "bowl": 220, "clean_and_jerk": 88,
          "golf_swing": 166, "jump_rope": 82, "jumping_jacks": 112, "pullup": 199, "pushup": 211, "situp": 100,
          "squat": 231, "strum_guitar": 94, "tennis_forehand": 157, "tennis_serve": 186}


@functools.lru_cache(maxsize=1)
def _all(folder: str):
    return [SOURCE.read_item(it, 1)[0][0] for it in SOURCE.list_items(Path(folder), [])]


def _median_length(clips, a, b):
    """Median over clips of the median 2D distance between joints a and b, in pixels."""
    return np.median([np.median(np.linalg.norm(c.data[:2, :, a, 0] - c.data[:2, :, b, 0], axis=0)
                                * max(c.meta["height"], c.meta["width"])) for c in clips])


@pytest.fixture
def penn(realdata):
    return realdata / "penn_action_labels" / "labels"


def test_counts_classes_and_official_split(penn):
    clips = _all(str(penn))
    assert len(clips) == 2326
    counts = np.bincount([c.label for c in clips], minlength=15)
    assert dict(zip(PENN_CLASS_NAMES, counts.tolist())) == COUNTS
    train, _ = SOURCE.train_mask("official", {"train": np.array([c.meta["train"] for c in clips])})
    assert (int(train.sum()), int((~train).sum())) == (1258, 1068)
    assert np.bincount([c.meta["view"] for c in clips]).tolist() == [612, 604, 513, 597]  # front back left right
    assert min(c.meta["length"] for c in clips) == 18 and max(c.meta["length"] for c in clips) == 663


def test_penn13_order_head_on_top_and_left_right_pairs(penn):
    clips = _all(str(penn))
    skel = get_layout("penn13")
    assert skel.joint_names[:3] == ["head", "left_shoulder", "right_shoulder"] and skel.num_joints == 13
    assert skel.flip_perm.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    # image y points down: the head is above both shoulders in (nearly) every clip
    above = [np.mean((c.data[1, :, 0, 0] < c.data[1, :, 1, 0]) & (c.data[1, :, 0, 0] < c.data[1, :, 2, 0]))
             for c in clips]
    assert np.median(above) == 1.0
    seg = {name: (a, b) for name, a, b in [("l_upper", 1, 3), ("r_upper", 2, 4), ("l_fore", 3, 5),
                                           ("r_fore", 4, 6), ("l_thigh", 7, 9), ("r_thigh", 8, 10),
                                           ("l_shin", 9, 11), ("r_shin", 10, 12)]}
    med = {k: _median_length(clips, a, b) for k, (a, b) in seg.items()}
    for part, lo, hi in [("upper", 25, 35), ("fore", 22, 32), ("thigh", 42, 52), ("shin", 39, 48)]:
        assert lo < med["l_" + part] < hi and abs(med["l_" + part] - med["r_" + part]) < 0.06 * med["l_" + part]
    # read in a "left side first" order instead (l_sh l_el l_wr r_sh r_el r_wr ...), the pairs break
    for (a, b), (c, d) in [((1, 2), (4, 5)), ((7, 8), (10, 11)), ((8, 9), (11, 12))]:
        ab, cd = _median_length(clips, a, b), _median_length(clips, c, d)
        assert abs(ab - cd) > 0.4 * min(ab, cd)


def test_normalised_coordinates_visibility_channel_and_bbox_quirk(penn):
    m = scipy.io.loadmat(str(penn / "0001.mat"))
    r = read_penn_action(penn / "0001.mat")
    H, W = 360, 480
    np.testing.assert_allclose(r["joints"][..., 0], (m["x"] - W / 2) / W)
    np.testing.assert_allclose(r["joints"][..., 1], (m["y"] - H / 2) / W)
    np.testing.assert_array_equal(r["joints"][..., 2], m["visibility"])
    assert PENN_CLASS_NAMES[r["label"]] == "baseball_pitch" and r["train"] is False
    for name, n in (("1154.mat", 72), ("1865.mat", 73)):  # one bbox row short: bbox is not used
        assert read_penn_action(penn / name)["joints"].shape == (n, 13, 3)


def _mutate(src: Path, dst: Path, **changes):
    m = {k: v for k, v in scipy.io.loadmat(str(src)).items() if not k.startswith("__")}
    m.update(changes)
    scipy.io.savemat(str(dst), m)


def test_corrupt_copies_name_the_file_and_variable(penn, tmp_path):
    src = penn / "0001.mat"
    p = tmp_path / "0001.mat"
    m = scipy.io.loadmat(str(src))
    _mutate(src, p, x=m["x"][:, :12])
    with pytest.raises(DataFormatError, match=r"0001.mat: variable 'x' must be N x 13, got 151 x 12"):
        read_penn_action(p)
    _mutate(src, p, action="curling")
    with pytest.raises(DataFormatError, match="0001.mat: action 'curling' is not one of the 15"):
        read_penn_action(p)
    bad = m["y"].copy()
    bad[3, 4] = np.nan
    _mutate(src, p, y=bad)
    with pytest.raises(DataFormatError, match="variable 'y' has a non-finite value"):
        read_penn_action(p)
    _mutate(src, p, nframes=np.array([[150]]))
    with pytest.raises(DataFormatError, match="nframes is 150 but x has 151 rows"):
        read_penn_action(p)
    p.write_bytes(src.read_bytes()[:300])
    with pytest.raises(DataFormatError, match="0001.mat: corrupt MAT-file"):
        read_penn_action(p)


def test_prepare_subset_end_to_end_2d_with_confidence(penn, tmp_path):
    raw = tmp_path / "labels"
    raw.mkdir()
    for i in range(1, 13):
        (raw / f"{i:04d}.mat").symlink_to(penn / f"{i:04d}.mat")
    s = prepare_dataset("penn-action", raw, tmp_path / "out", workers=1)
    tr = [read_penn_action(raw / f"{i:04d}.mat")["train"] for i in range(1, 13)]
    assert s.stores == {"penn-action-official": {"train": sum(tr), "test": 12 - sum(tr)}}
    train, test = load_prepared("penn-action-official", tmp_path / "out")
    assert test.data.shape[1:] == (3, 50, 13, 1) and test.layout == "penn13" and test.num_coords == 2
    # no centring or rotation for 2D: frame 0 of clip 0001 equals the normalised annotation
    r = read_penn_action(raw / "0001.mat")
    first = test.names.index("0001")
    assert 0 <= test.data[:, 2].min() and test.data[:, 2].max() <= 1  # visibility, linearly resampled
    np.testing.assert_allclose(test.data[first, :2, 0, :, 0].T, r["joints"][0, :, :2], atol=0.02)
