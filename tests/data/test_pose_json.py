"""Pose-estimator inputs: Kinetics-skeleton (real), OpenPose, COCO-17 and MediaPipe JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.readers.coco import read_coco_keypoints_json
from asma.data.readers.kinetics import load_kinetics_skeleton, read_kinetics_json, read_openpose_frames
from asma.data.readers.mediapipe import mediapipe_to_sequence, read_mediapipe_json
from asma.data.readers.pose_json import pose_to_clip


@pytest.fixture
def kin(realdata):
    return realdata / "kinetics_skeleton_samples"


def test_kinetics_real_clip_values(kin):
    seq = read_kinetics_json(kin / "kinetics_val" / "__NrybzYzUg.json")
    assert seq.layout == "openpose18" and seq.label == "abseiling" and seq.label_index == 0
    assert seq.num_frames == 299 and seq.frame_index[0] == 1
    clip = pose_to_clip(seq, 2, center=True)
    assert clip.shape == (3, 299, 18, 2)
    assert (clip[:, [0, 1, 3]] == 0).all()  # frames 1, 2 and 4 have an empty skeleton list
    # frame 3, the only person: joint 5 (LShoulder) x=1.007 y=0.361 score 0.215; joint 0 missing
    np.testing.assert_allclose(clip[:, 2, 5, 0], [1.007 - 0.5, 0.361 - 0.5, 0.215], rtol=1e-5)
    np.testing.assert_allclose(clip[:, 2, 17, 0], [1.021 - 0.5, 0.288 - 0.5, 0.099], rtol=1e-5)
    assert (clip[:, 2, 0, 0] == 0).all() and (clip[:, 2, :, 1] == 0).all()
    raw = pose_to_clip(seq, 2)  # no centring: coordinates as stored
    np.testing.assert_allclose(raw[:2, 2, 5, 0], [1.007, 0.361], rtol=1e-5)


def test_kinetics_top2_by_score_per_frame(kin):
    seq = read_kinetics_json(kin / "kinetics_val" / "__PYrzYbzKE.json")
    assert seq.max_people > 2 and seq.label == "jumpstyle dancing" and seq.label_index == 173
    clip = pose_to_clip(seq, 2)
    total = seq.scores.sum(axis=2)  # (T, P)
    best2 = -np.sort(-total, axis=1)[:, :2]
    np.testing.assert_allclose(clip[2].sum(axis=1), best2, rtol=1e-5)  # slots hold the two best, in order
    assert (clip[2].sum(axis=1)[:, 0] >= clip[2].sum(axis=1)[:, 1]).all()
    st = pose_to_clip(seq, 2, candidates=5)  # ST-GCN looks at the first 5 people only
    assert st.shape == clip.shape


def test_all_real_kinetics_files_and_loader(kin):
    files = sorted(kin.glob("kinetics_*/*.json"))
    assert len(files) == 12
    for f in files:
        seq = read_kinetics_json(f)
        clip = pose_to_clip(seq, 2, center=True)
        assert clip.shape[0] == 3 and clip.shape[2:] == (18, 2) and 164 <= clip.shape[1] <= 300
        assert np.isfinite(clip).all()
        assert ((clip[2] == 0) <= (clip[0] == 0)).all()  # missing joints are all-zero
    names = (kin / "label_name.txt").read_text().splitlines()
    arr = load_kinetics_skeleton(kin / "kinetics_train", kin / "kinetics_train_label.json", label_names=names)
    assert arr.data.shape == (5, 3, 300, 18, 2) and arr.layout == "openpose18"
    # the train files' label_index was remapped by the uploader: labels come from the names
    assert arr.class_names[arr.labels[arr.names.index("___dTOdxzXY")]] == "jumping into pool"
    assert arr.labels[arr.names.index("___dTOdxzXY")] == names.index("jumping into pool")


def test_kinetics_errors():
    good = {"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 36, "score": [0.9] * 18}]}]}
    assert pose_to_clip(read_kinetics_json(json.dumps(good).encode())).shape == (3, 1, 18, 2)
    bad = json.loads(json.dumps(good))
    bad["data"][0]["skeleton"][0]["pose"] = [0.5] * 34
    with pytest.raises(DataFormatError, match=r"c.json: frame 1 person 0 pose: expected 18 x 2 = 36 values, got 34"):
        read_kinetics_json(json.dumps(bad).encode(), name="c.json")
    bad["data"][0]["skeleton"][0]["pose"] = [0.5] * 35 + ["x"]
    with pytest.raises(DataFormatError, match="expected a number, got str"):
        read_kinetics_json(json.dumps(bad).encode(), name="c.json")
    nan = json.dumps(good).replace("0.9", "NaN", 1).replace("0.5, ", "Infinity, ", 1)
    with pytest.raises(DataFormatError, match="non-finite value"):
        read_kinetics_json(nan.encode(), name="c.json")
    with pytest.raises(DataFormatError, match=r"c.json line 1: invalid JSON"):
        read_kinetics_json(b'{"data": [', name="c.json")
    with pytest.raises(EmptySequenceError):
        read_kinetics_json(b'{"data": []}', name="c.json")
    # a null keypoint is missing, not an error
    ok = json.loads(json.dumps(good))
    ok["data"][0]["skeleton"][0]["pose"][0] = None
    clip = pose_to_clip(read_kinetics_json(ok))
    assert (clip[:, 0, 0, 0] == 0).all() and clip[2, 0, 1, 0] == pytest.approx(0.9)


def test_openpose_per_frame_body25_and_coco18(tmp_path):
    d = tmp_path / "op"
    d.mkdir()
    kp25 = np.arange(75, dtype=float).reshape(25, 3)
    kp25[:, 2] = 0.5
    kp25[8, 2] = 0.99  # MidHip: dropped by the 18-joint mapping
    for fi, people in [(0, [kp25]), (2, [kp25 * 0, kp25]), (3, [])]:
        (d / f"vid_{fi:012d}_keypoints.json").write_text(json.dumps(
            {"version": 1.3, "people": [{"pose_keypoints_2d": p.ravel().tolist()} for p in people]}))
    seq = read_openpose_frames(d)
    assert seq.frame_index.tolist() == [0, 2, 3] and seq.coords.shape[2] == 18
    clip = pose_to_clip(seq, 2)
    assert clip.shape == (3, 4, 18, 2)
    np.testing.assert_allclose(clip[:2, 0, 8, 0], kp25[9, :2])  # RHip (18-order 8) = BODY_25 9
    assert (clip[:, 1] == 0).all() and (clip[:, 3] == 0).all()  # frame 1 absent, frame 3 empty
    np.testing.assert_allclose(clip[:2, 2, 0, 0], kp25[0, :2])  # the all-zero person ranks last
    (d / "vid_000000000004_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1] * 50}]}))
    with pytest.raises(DataFormatError, match="vid_000000000004_keypoints.json: person 0: pose_keypoints_2d"):
        read_openpose_frames(d)


def _coco_kp(scale):
    kp = np.zeros((17, 3))
    kp[:, 0] = np.arange(17) * scale
    kp[:, 1] = 100 + np.arange(17)
    kp[:, 2] = 0.8
    return kp


def test_coco_results_and_mmpose_formats():
    dets = [{"image_id": "frame_000010.jpg", "category_id": 1, "keypoints": _coco_kp(1).ravel().tolist(), "score": 0.9},
            {"image_id": "frame_000010.jpg", "category_id": 1, "keypoints": _coco_kp(2).ravel().tolist(), "score": 0.5},
            {"image_id": "frame_000012.jpg", "category_id": 1, "keypoints": _coco_kp(3).ravel().tolist(), "score": 0.7}]
    dets[1]["keypoints"][2] = 0.0  # nose missing (score 0)
    seq = read_coco_keypoints_json(json.dumps(dets).encode(), name="res.json")
    assert seq.layout == "coco17" and seq.frame_index.tolist() == [10, 12]
    clip = pose_to_clip(seq, 2)
    assert clip.shape == (3, 3, 17, 2)
    np.testing.assert_allclose(clip[0, 0, 16], [16, 32])
    assert (clip[:, 0, 0, 1] == 0).all()  # missing nose of person 2 is all-zero
    assert (clip[:, 1] == 0).all()  # frame 11 had nobody
    frames = [{"frame_id": 0, "instances": [{"keypoints": _coco_kp(1)[:, :2].tolist(),
                                              "keypoint_scores": [0.3] * 17}]},
              {"frame_id": 1, "instances": []}]
    seq2 = read_coco_keypoints_json(json.dumps(frames).encode())
    c2 = pose_to_clip(seq2, 1)
    assert c2.shape == (3, 2, 17, 1) and c2[2, 0, 0, 0] == pytest.approx(0.3) and (c2[:, 1] == 0).all()
    gt = {"annotations": [{"image_id": 5, "keypoints": [10, 20, 2] + [0, 0, 0] * 15 + [30, 40, 1]}]}
    c3 = pose_to_clip(read_coco_keypoints_json(json.dumps(gt).encode()), 1)
    assert c3[2, 0, :, 0].tolist() == [1.0] + [0.0] * 15 + [1.0]  # COCO visibility flags -> 0/1
    with pytest.raises(DataFormatError, match=r"res.json: frame 10 person 0: expected 17 x 3"):
        read_coco_keypoints_json(json.dumps([{"image_id": 10, "keypoints": [1] * 50}]).encode(), name="res.json")
    with pytest.raises(DataFormatError, match="non-finite"):
        read_coco_keypoints_json(json.dumps([{"image_id": 1, "keypoints": [1e400] + [1] * 50}]).encode())


def _mp(offset, vis=0.9):
    return [{"x": 0.01 * j + offset, "y": 0.5, "z": -0.1, "visibility": vis} for j in range(33)]


def test_mediapipe_json_and_array():
    frames = [_mp(0.0), None, {"landmarks": _mp(0.1)}, {"pose_landmarks": [_mp(0.2, 0.2), _mp(0.3, 0.8), _mp(0.4, 0.5)]}]
    seq = read_mediapipe_json(json.dumps(frames).encode())
    assert seq.layout == "mediapipe33" and seq.coords.shape == (4, 3, 33, 2)
    clip = pose_to_clip(seq, 2)
    assert clip.shape == (3, 4, 33, 2) and (clip[:, 1] == 0).all()
    np.testing.assert_allclose(clip[0, 3, 0], [0.3, 0.4])  # top-2 by visibility: 0.8 then 0.5
    np.testing.assert_allclose(clip[2, 0, :, 0], 0.9, rtol=1e-6)
    z = pose_to_clip(read_mediapipe_json(json.dumps(frames).encode(), with_z=True), 1)
    assert z.shape == (4, 4, 33, 1) and z[2, 0, 0, 0] == pytest.approx(-0.1)
    arr = np.random.default_rng(0).uniform(size=(5, 33, 4))
    arr[2, 7] = np.nan  # a missing landmark
    seq = mediapipe_to_sequence(arr)
    c = pose_to_clip(seq, 1)
    assert c.shape == (3, 5, 33, 1) and (c[:, 2, 7, 0] == 0).all()
    np.testing.assert_allclose(c[:, 0, 0, 0], [arr[0, 0, 0], arr[0, 0, 1], arr[0, 0, 3]], rtol=1e-6)
    arr[1, 1, 0] = np.inf
    with pytest.raises(DataFormatError, match="frame 1 person 0 landmark 1: infinite"):
        mediapipe_to_sequence(arr)
    with pytest.raises(DataFormatError, match="expected 33 landmarks, got 32"):
        read_mediapipe_json(json.dumps([_mp(0)[:32]]).encode())
