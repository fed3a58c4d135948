"""MSRC-12 (csv + tagstream): clips cut at action points, Kinect SDK order by bones and motion, errors, prepare."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.msrc12 import (MAX_HALF_WINDOW, MSRC12_CLASS_NAMES, SOURCE, cut_windows, read_msrc12_csv,
                                      read_msrc12_tags)
from asma.graph.layouts import KINECT20_EDGES

EDGES = np.array(KINECT20_EDGES) - 1


@functools.lru_cache(maxsize=1)
def _all(folder: str):
    return {it[1]: SOURCE.read_item(it, 1) for it in SOURCE.list_items(Path(folder), [])}


@pytest.fixture
def msrc(realdata):
    return realdata / "msrc12_two_subjects" / "data"


def _joints(c):
    return c.data[..., 0].transpose(1, 2, 0).astype(np.float64)


def _travel(c, k):
    return np.linalg.norm(np.diff(_joints(c)[:, k], axis=0), axis=-1).sum()


def test_one_clip_per_action_point_and_split(msrc):
    seqs = _all(str(msrc))
    assert len(seqs) == 24
    clips = [c for cl, notes in seqs.values() for c in cl]
    assert all(not notes for _, notes in seqs.values())
    assert len(clips) == 263 - 24  # tagstream lines minus headers
    assert {k: len(v[0]) for k, v in seqs.items() if len(v[0]) != 10} == {"P3_1_6_p01": 9}
    for subject in (1, 5):  # all 12 gestures for each subject
        assert sorted({c.label for c in clips if c.meta["subject"] == subject}) == list(range(12))
    train, info = SOURCE.train_mask("xsub", {"subject": np.array([c.meta["subject"] for c in clips])})
    assert (int(train.sum()), int((~train).sum())) == (119, 120) and info["train_subjects"] == [1]


def test_windows_hold_their_action_point_and_skip_untracked_frames(msrc):
    ts, joints = read_msrc12_csv(msrc / "P3_1_3A_p01.csv")
    first = int(np.flatnonzero(np.any(joints != 0, axis=(1, 2)))[0])
    assert 20 <= first <= 95 and not joints[:first].any()  # leading untracked frames
    tags = read_msrc12_tags(msrc / "P3_1_3A_p01.tagstream")
    assert tags[0] == ((54986068250 * 1000 + 24937) // 49875, 3, 2)
    clips = _all(str(msrc))["P3_1_3A_p01"][0]
    for c, (t, _, _) in zip(clips, tags):
        m = c.meta
        assert first <= m["start"] <= m["point"] < m["end"] <= len(ts)
        assert m["point"] - m["start"] <= MAX_HALF_WINDOW and m["end"] - m["point"] <= MAX_HALF_WINDOW
        assert abs(int(ts[m["point"]]) - t) < 20_000  # the frame nearest the action point (us, ~30 fps)
    # consecutive windows meet at the midpoint between action points
    assert all(a.meta["end"] == b.meta["start"] for a, b in zip(clips, clips[1:]))
    assert cut_windows(np.array([100, 160]), 0, 1000) == [(70, 130), (130, 190)]
    assert cut_windows(np.array([50]), 20, 80) == [(20, 80)]


def test_sdk_order_bones_and_right_side_gestures(msrc):
    seqs = _all(str(msrc))
    clips = [c for cl, _ in seqs.values() for c in cl]
    cv = np.median([(lambda L: L.std(0) / L.mean(0))(np.linalg.norm(
        _joints(c)[:, EDGES[:, 0]] - _joints(c)[:, EDGES[:, 1]], axis=-1)) for c in clips], axis=0)
    assert (cv[[0, 1, 4, 5, 8, 9, 12, 13, 16, 17]] < 0.12).all(), cv
    for name in ("push right", "kick"):
        sel = [c for c in clips if MSRC12_CLASS_NAMES[c.label] == name]
        right, left = (11, 7) if name == "push right" else (19, 15)  # HandRight/HandLeft, FootRight/FootLeft
        ratio = np.array([_travel(c, right) / _travel(c, left) for c in sel])
        assert (ratio > 1.2).mean() > 0.9 and np.median(ratio) > 2, (name, ratio)


def test_corrupt_copies_name_file_and_line(msrc, tmp_path):
    lines = (msrc / "P3_1_3A_p01.csv").read_text().splitlines()
    lines[199] = " ".join(lines[199].split()[:80])
    p = tmp_path / "P3_1_3A_p01.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"P3_1_3A_p01.csv line 200: expected 81 numbers .*, got 80"):
        read_msrc12_csv(p)
    tag = (msrc / "P3_1_3A_p01.tagstream").read_text().splitlines()
    t = tmp_path / "P3_1_3A_p01.tagstream"
    t.write_text("\n".join(tag[:3] + [tag[3].replace("G3", "G4")] + tag[4:]))
    (tmp_path / "P3_1_3A_p01.csv").write_bytes((msrc / "P3_1_3A_p01.csv").read_bytes())
    with pytest.raises(DataFormatError, match=r"P3_1_3A_p01.tagstream line 4: action point of G4 in a file of gesture 3"):
        SOURCE.read_item((str(p), "P3_1_3A_p01", str(t)), 1)
    t.write_text("\n".join(tag[:5] + ["55474689523 G3 Push right"] + tag[6:]))
    with pytest.raises(DataFormatError, match=r"tagstream line 6: expected '<tick>;G<n> <name>'"):
        read_msrc12_tags(t)


def test_prepare_two_subjects_end_to_end(msrc, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem in ("P3_1_3A_p01", "P3_1_12_p01", "P2_2_3_p05", "P2_2_12A_p05"):
        for ext in (".csv", ".tagstream"):
            (raw / f"{stem}{ext}").symlink_to(msrc / f"{stem}{ext}")
    (raw / "P2_2_9_p05.csv").symlink_to(msrc / "P2_2_9_p05.csv")  # no tagstream: skipped and reported
    s = prepare_dataset("msrc12", raw, tmp_path / "out", workers=1)
    assert s.stores == {"msrc12-xsub": {"train": 20, "test": 20}}
    assert [Path(d["file"]).name for d in s.skipped] == ["P2_2_9_p05.csv"]
    train, test = load_prepared("msrc12-xsub", tmp_path / "out")
    assert train.data.shape == (20, 3, 50, 20, 1) and train.layout == "kinect20"
    assert sorted({train.class_names[y] for y in train.labels}) == ["kick", "push right"]
    assert set(test.meta["subject"].tolist()) == {5} and test.names[0] == "P2_2_12A_p05_00"
    # one file per part: the split still sees both subjects (its rule needs all samples)
    s = prepare_dataset("msrc12", raw, tmp_path / "out1", workers=2, chunk_size=1)
    assert s.stores == {"msrc12-xsub": {"train": 20, "test": 20}}
    train1, test1 = load_prepared("msrc12-xsub", tmp_path / "out1")
    np.testing.assert_array_equal(train1.data[:], train.data[:])
    assert test1.names == test.names
