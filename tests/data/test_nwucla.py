"""NW-UCLA (CTR-GCN ``all_sqe`` JSON): joint order, counts and split on the real files, errors, prepare."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.nwucla import NWUCLA_CLASS_NAMES, load_nwucla, parse_nwucla_name, read_nwucla_json
from asma.data.readers.kinect_v1 import MSR_ACTION3D_TO_SDK
from asma.graph.layouts import KINECT20_EDGES

EDGES = np.array(KINECT20_EDGES) - 1


@functools.lru_cache(maxsize=1)
def _all(folder: str):
    return load_nwucla(folder)


@pytest.fixture
def ucla(realdata):
    return realdata / "nw_ucla_ctrgcn"


def _median_cv(clips, edges):
    cvs = []
    for J in clips:
        if len(J) >= 5:
            L = np.linalg.norm(J[:, edges[:, 0]] - J[:, edges[:, 1]], axis=-1)
            cvs.append(L.std(0) / L.mean(0))
    return np.median(cvs, axis=0)


def test_counts_classes_and_cross_view_split_equal_the_provenance(ucla):
    joints, labels, names = _all(str(ucla / "all_sqe"))
    assert len(joints) == 1484 and len(NWUCLA_CLASS_NAMES) == 10
    counts = np.bincount(labels, minlength=10)
    assert counts.tolist() == [150, 152, 141, 173, 148, 149, 142, 142, 145, 142]
    views = np.array([parse_nwucla_name(n)["view"] for n in names])
    assert np.bincount(views).tolist() == [0, 516, 504, 464]
    train = set((ucla / "split_cross_view_train_v01_v02.txt").read_text().split())
    test = set((ucla / "split_cross_view_test_v03.txt").read_text().split())
    assert {n for n, v in zip(names, views) if v in (1, 2)} == train and len(train) == 1020
    assert {n for n, v in zip(names, views) if v == 3} == test and len(test) == 464
    lengths = [len(J) for J in joints]
    assert max(lengths) == 201  # two 1-frame clips (PROVENANCE.md names one): a loader must cope
    assert [n for n, t in zip(names, lengths) if t == 1] == ["a02_s09_e04_v02", "a02_s09_e04_v03"]


def test_kinect_sdk_order_bone_lengths_and_left_right(ucla):
    joints = _all(str(ucla / "all_sqe"))[0]
    cv = _median_cv(joints, EDGES)
    limbs = [4, 5, 8, 9, 12, 13, 16, 17]  # upper arms, forearms, thighs, shins (edge index)
    assert (cv[limbs] < 0.15).all(), cv
    mean = np.median([np.linalg.norm(J[:, EDGES[:, 0]] - J[:, EDGES[:, 1]], axis=-1).mean(0) for J in joints], axis=0)
    for left, right, lo, hi in [(4, 8, 0.2, 0.3), (12, 16, 0.4, 0.55), (13, 17, 0.3, 0.45)]:
        assert lo < mean[left] < hi and abs(mean[left] - mean[right]) < 0.02
    # read in MSR Action3D's order instead, the same edges give a 1.3 m bone and unequal legs
    msr = np.median([np.linalg.norm(J[:, MSR_ACTION3D_TO_SDK][:, EDGES[:, 0]] - J[:, MSR_ACTION3D_TO_SDK][:, EDGES[:, 1]],
                                    axis=-1).mean(0) for J in joints], axis=0)
    assert msr.max() > 1.0 and abs(msr[12] - msr[16]) > 0.1
    up = np.mean([(J[:, 2, 1] > J[:, 0, 1]).mean() for J in joints])
    assert up > 0.99  # ShoulderCenter above HipCenter
    # left shoulder at smaller camera x, as in UTD-MHAD where left/right is confirmed by motion
    assert np.mean([J[:, 4, 0].mean() < J[:, 8, 0].mean() for J in joints]) > 0.99


def test_throw_moves_the_right_hand_more_in_most_clips(ucla):
    joints, labels, _ = _all(str(ucla / "all_sqe"))

    def travel(J, k):
        return np.linalg.norm(np.diff(J[:, k], axis=0), axis=-1).sum()

    throw = [J for J, y in zip(joints, labels) if NWUCLA_CLASS_NAMES[y] == "throw"]
    # weak on this noisy capture (65% of clips), but a swapped left/right would give 35%
    assert np.mean([travel(J, 11) > travel(J, 7) for J in throw]) > 0.6


def test_corrupt_copies_name_file_and_place(ucla, tmp_path):
    src = ucla / "all_sqe" / "a01_s01_e00_v01.json"
    obj = json.loads(src.read_text())
    bad = dict(obj, skeletons=obj["skeletons"][:3] + [obj["skeletons"][3][:19]] + obj["skeletons"][4:])
    p = tmp_path / "a01_s01_e00_v01.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(DataFormatError, match=r"a01_s01_e00_v01.json: frame 3: expected 20 joints, got 19"):
        read_nwucla_json(p)
    p.write_text(json.dumps(dict(obj, label=4)))
    with pytest.raises(DataFormatError, match="'label' 4 is action a04, but the file is a01_s01_e00_v01"):
        read_nwucla_json(p)
    text = json.dumps(obj, indent=1).splitlines()
    text[7] = "  oops,"
    p.write_text("\n".join(text))
    with pytest.raises(DataFormatError, match=r"a01_s01_e00_v01.json line 8: invalid JSON"):
        read_nwucla_json(p)
    p.write_text(json.dumps(obj).replace("0.328046", "NaN", 1))
    with pytest.raises(DataFormatError, match="frame 0 joint 1: non-finite"):
        read_nwucla_json(p)


def _subset(ucla: Path, dst: Path, names):
    dst.mkdir()
    for n in names:
        (dst / f"{n}.json").symlink_to(ucla / "all_sqe" / f"{n}.json")


def test_prepare_subset_end_to_end_and_skip_bad(ucla, tmp_path):
    names = [f"a{a:02d}_s01_e00_v0{v}" for a in (1, 8, 12) for v in (1, 2, 3)]
    raw = tmp_path / "raw"
    _subset(ucla, raw, names)
    (raw / "README.json").write_text("{}")  # not a clip name: listed as skipped
    s = prepare_dataset("nwucla", raw, tmp_path / "out", workers=1)
    assert s.stores == {"nwucla-xview": {"train": 6, "test": 3}}
    assert [d["file"] for d in s.skipped] == [str(raw / "README.json")]
    train, test = load_prepared("nwucla-xview", tmp_path / "out")
    assert train.data.shape == (6, 3, 50, 20, 1) and train.layout == "kinect20"
    assert train.class_names[test.labels[2]] == "carry" and set(test.meta["view"].tolist()) == {3}
    assert np.allclose(train.data[:, :, :, 2], 0)  # centred on ShoulderCenter
    # a corrupt copy stops the run naming it; --skip-bad records it and goes on
    (raw / names[4]).with_suffix(".json").unlink()
    (raw / f"{names[4]}.json").write_text('{"file_name": "x", "label": 7, "skeletons": [[[1, 2]]]}')
    with pytest.raises(DataFormatError, match=f"{names[4]}.json: frame 0: expected 20 joints, got 1"):
        prepare_dataset("nwucla", raw, tmp_path / "out2", workers=1)
    s = prepare_dataset("nwucla", raw, tmp_path / "out2", workers=1, skip_bad=True)
    assert [Path(b["file"]).name for b in s.bad] == [f"{names[4]}.json"]
    assert s.stores["nwucla-xview"] == {"train": 5, "test": 3}
