"""``asma data check`` detects pose-estimator JSON by content (issue 12.6) and exposes the limits."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asma.cli.data import data
from asma.data.errors import DataFormatError
from asma.data.readers.pose_json import guess_pose_format

COCO = [{"image_id": 3, "category_id": 1, "keypoints": [10.0, 20.0, 0.9] * 17, "score": 0.8},
        {"image_id": 4, "category_id": 1, "keypoints": [11.0, 21.0, 0.9] * 17, "score": 0.7}]
MP = [[{"x": 0.5, "y": 0.5, "z": 0.0, "visibility": 0.9}] * 33, None]


def test_check_detects_json_formats_by_content(realdata, tmp_path):
    coco = tmp_path / "person_keypoints_val2017_results.json"  # a COCO keypoint results file
    coco.write_text(json.dumps(COCO))
    mp = tmp_path / "clip.json"
    mp.write_text(json.dumps(MP))
    op = tmp_path / "vid_000000000012_keypoints.json"
    op.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0, 2.0, 0.5] * 25}]}))
    kin = realdata / "kinetics_skeleton_samples" / "kinetics_val" / "__NrybzYzUg.json"
    r = CliRunner().invoke(data, ["check", str(coco), str(mp), str(op), str(kin)])
    assert r.exit_code == 0, r.output
    assert f"{coco}  (coco) 2 frames, up to 1 people, layout coco17" in r.output
    assert f"{mp}  (mediapipe) 2 frames" in r.output and f"{op}  (openpose) 1 frames" in r.output
    assert f"{kin}  (kinetics) 299 frames, up to 2 people" in r.output
    odd = tmp_path / "odd.json"
    odd.write_text('{"foo": 1}')
    r = CliRunner().invoke(data, ["check", str(odd), str(coco)])
    assert r.exit_code == 1 and "odd.json: JSON of no known pose format" in r.output and "1 of 2 files" in r.output


def test_check_limits_options(tmp_path):
    crowd = tmp_path / "crowd.json"
    crowd.write_text(json.dumps({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 36,
                                                                            "score": [0.9] * 18}] * 70}]}))
    r = CliRunner().invoke(data, ["check", str(crowd)])
    assert r.exit_code == 1 and "crowd.json: frame 1: 70 people, over the limit of 64" in r.output
    assert "--max-people" in r.output
    r = CliRunner().invoke(data, ["check", str(crowd), "--max-people", "70"])
    assert r.exit_code == 0 and "up to 70 people" in r.output
    r = CliRunner().invoke(data, ["check", str(crowd), "--max-file-mb", "1", "--max-frames", "1"])
    assert r.exit_code == 1 and "70 people" in r.output


@pytest.mark.parametrize("obj, fmt", [
    ({"data": []}, "kinetics"), ({"people": []}, "openpose"), ({"annotations": []}, "coco"), (COCO, "coco"),
    ([{"frame_id": 0, "instances": []}], "coco"), ([[{"keypoints": [], "keypoint_scores": []}]], "coco"),
    (MP, "mediapipe"), ([None, {"pose_landmarks": None}], "mediapipe"), ({"frames": MP}, "mediapipe"),
    ([[[0.1, 0.2, 0.0, 0.9]] * 33], "mediapipe"),
])
def test_guess_pose_format(obj, fmt):
    assert guess_pose_format(obj) == fmt


@pytest.mark.parametrize("obj", [{"foo": 1}, [1, 2], [], [[1] * 33], {"frames": [3]}])
def test_guess_pose_format_refuses_unknown(obj):
    with pytest.raises(DataFormatError, match="no known pose format"):
        guess_pose_format(obj, name="f.json")
