"""Hostile pose-estimator JSON (issue 13.1): every example of the issue is a regression test, and a
hypothesis fuzz per reader checks that any input parses or raises DataFormatError, with bounded
memory (the larger run with >= 10,000 inputs per reader is benchmarks/fuzz_readers.py)."""
from __future__ import annotations

import copy
import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.readers.coco import read_coco_keypoints_json
from asma.data.readers.kinetics import read_kinetics_json, read_openpose_frames
from asma.data.readers.mediapipe import read_mediapipe_json
from asma.data.readers.pose_json import PoseLimits, pose_to_clip

PERSON = {"pose": [0.5] * 36, "score": [0.9] * 18}
KIN = {"data": [{"frame_index": i + 1, "skeleton": [copy.deepcopy(PERSON)]} for i in range(3)],
       "label": "x", "label_index": 1}
COCO = [{"image_id": k, "keypoints": [10.0, 20.0, 0.8] * 17, "score": 0.9} for k in range(3)]
MP = [[{"x": 0.5, "y": 0.5, "z": 0.0, "visibility": 0.9}] * 33, None, []]


def _b(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("text, match", [
    ('{"data":[{"frame_index":Infinity}]}', "k.json: frame entry 0 frame_index: inf is not an integer"),
    ('{"data":[{"frame_index":NaN}]}', "frame_index: nan is not an integer"),
    ('{"data":[{"skeleton":2147483648}]}', "frame 1 skeleton: expected a list, got int 2147483648"),
    ('{"data":[{},{"frame_index":2000000000}]}', "span 2000000000 frames, over the limit of 100000"),
    ('{"data":[{"frame_index":1e300}]}', "frame_index: 1e\\+300 is out of range"),
    ('{"data":[{"frame_index":1},{"frame_index":1}]}', "frame index 1 is listed twice"),
    ('{"data":[{"frame_index":"3"}]}', "expected an integer, got str"),
    ('{"data":[{"skeleton":[{"pose":[1e999],"score":[1]}]}]}', "pose: expected 18 x 2 = 36 values, got 1"),
    ('{"data":[], "label_index": Infinity}', "no frames"),
])
def test_kinetics_issue_examples(text, match):
    with pytest.raises(DataFormatError, match=match):
        read_kinetics_json(text.encode(), name="k.json")


def test_kinetics_values_and_label_index():
    big = copy.deepcopy(KIN)
    big["data"][0]["skeleton"][0]["pose"][3] = 10 ** 400  # an integer keypoint above 1e308
    with pytest.raises(DataFormatError, match=r"k.json: frame 1 person 0 pose: value 1000.* out of the float32"):
        read_kinetics_json(_b(big), name="k.json")
    f32 = copy.deepcopy(KIN)
    f32["data"][1]["skeleton"][0]["score"][4] = 3.4e38 * 2  # finite float64, inf as float32
    with pytest.raises(DataFormatError, match="frame 2 person 0 score: non-finite value 6.8e\\+38"):
        read_kinetics_json(_b(f32), name="k.json")
    lab = copy.deepcopy(KIN)
    lab["label_index"] = float("inf")
    with pytest.raises(DataFormatError, match="label_index: inf is not an integer"):
        read_kinetics_json(lab, name="k.json")
    lab["label_index"], lab["label"] = 7.0, ["not", "a", "name"]
    seq = read_kinetics_json(lab)
    assert seq.label_index == 7 and seq.label is None


def test_people_per_frame_limit_before_allocating():
    many = {"data": [{"frame_index": 1, "skeleton": [PERSON] * 3000}]}
    with pytest.raises(DataFormatError, match="frame 1: 3000 people, over the limit of 64"):
        read_kinetics_json(many, name="k.json")
    seq = read_kinetics_json(many, limits=PoseLimits(max_people=3000))  # raised on request
    assert seq.max_people == 3000 and pose_to_clip(seq, 2).shape == (3, 1, 18, 2)


def test_limits_are_raised_by_argument():
    far = {"data": [{"frame_index": 0, "skeleton": [PERSON]}, {"frame_index": 200_000, "skeleton": []}]}
    with pytest.raises(DataFormatError, match="span 200001 frames"):
        read_kinetics_json(far)
    seq = read_kinetics_json(far, limits=PoseLimits(max_frames=300_000))
    assert pose_to_clip(seq, 1).shape == (3, 200_001, 18, 1)
    with pytest.raises(DataFormatError, match="the clip of 200001 frames x 1 people x 18 joints needs 41 MiB, over the limit of 1 MiB"):
        pose_to_clip(read_kinetics_json(far, limits=PoseLimits(max_frames=300_000, max_array_bytes=1 << 20)), 1)
    with pytest.raises(DataFormatError, match="bytes is over the limit of 100"):
        read_kinetics_json(_b(KIN), limits=PoseLimits(max_file_bytes=100))
    with pytest.raises(ValueError, match="max_people must be a positive integer"):
        PoseLimits(max_people=0)


def test_file_size_limit_on_paths(tmp_path):
    p = tmp_path / "clip.json"
    p.write_bytes(_b(KIN))
    assert read_kinetics_json(p).num_frames == 3
    with pytest.raises(DataFormatError, match="clip.json: .* over the limit of 50"):
        read_kinetics_json(p, limits=PoseLimits(max_file_bytes=50))


def test_deep_json_is_a_clear_error():
    deep = b'{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(DataFormatError, match="k.json: JSON nested too deeply"):
        read_kinetics_json(deep, name="k.json")
    nested = {"data": [{"skeleton": [json.loads("[" * 500 + "]" * 500)]}]}  # parses, then must not recurse
    with pytest.raises(DataFormatError, match="expected an object with 'pose' and 'score', got list"):
        read_kinetics_json(nested, name="k.json")


@pytest.mark.parametrize("text, match", [
    ('[{"image_id":NaN,"keypoints":[]}]', "entry 0 image_id: nan is not an integer"),
    ('[{"image_id":Infinity,"keypoints":[]}]', "entry 0 image_id: inf is not an integer"),
    ('[{"image_id":"abc.jpg","keypoints":[]}]', "'abc.jpg' holds no frame number"),
    ('[{"image_id":99999999999999999999,"keypoints":[]}]', "out of range"),
    ('[{"image_id":true,"keypoints":[]}]', "expected an integer, got bool"),
    ('{"frames":[{"frame_id":0,"instances":[5]}]}', "frame 0 person 0: expected an object, got 5"),
])
def test_coco_issue_examples(text, match):
    with pytest.raises(DataFormatError, match=match):
        read_coco_keypoints_json(text.encode(), name="c.json")


def test_coco_duplicate_frames_merge_deliberately():
    two = [dict(COCO[0]), dict(COCO[0], keypoints=[30.0, 40.0, 0.5] * 17)]  # two detections, image 0
    seq = read_coco_keypoints_json(two)
    assert seq.frame_index.tolist() == [0] and seq.max_people == 2
    frames = [{"frame_id": 3, "instances": [{"keypoints": [[1, 2]] * 17, "keypoint_scores": [0.5] * 17}]},
              {"frame_id": 3, "instances": [{"keypoints": [[5, 6]] * 17, "keypoint_scores": [0.7] * 17}]}]
    clip = pose_to_clip(read_coco_keypoints_json(frames), 2)
    assert clip.shape == (3, 1, 17, 2) and clip[0, 0, 0].tolist() == [5.0, 1.0]  # higher score first
    flood = [dict(COCO[0]) for _ in range(65)]
    with pytest.raises(DataFormatError, match="frame 0: 65 people, over the limit of 64"):
        read_coco_keypoints_json(flood, name="c.json")
    spread = [dict(COCO[0], image_id=0), dict(COCO[0], image_id=10 ** 9)]
    with pytest.raises(DataFormatError, match="span 1000000001 frames"):
        read_coco_keypoints_json(spread, name="c.json")


@pytest.mark.parametrize("obj, match", [
    ([{"foo": 1}], "frame entry 0: an object needs 'landmarks' or 'pose_landmarks'"),
    ([0], "frame entry 0: expected a list of landmarks, an object or null, got 0"),
    (["abc"], "got 'abc'"),
    ([[{"a": 1}] * 33], "frame 0 person 0 landmark 0: a landmark object needs 'x' and 'y'"),
    ([[{"x": 0.1, "y": 0.2, "visibility": 5}] * 33], "landmark 0: visibility 5 is not in \\[0, 1\\]"),
    ([[{"x": "1", "y": 0.2}] * 33], "landmark 0: expected a number, got str"),
    ([[[0.1, 0.2]] * 33], "landmark 0: expected an object or \\[x, y, z, visibility\\], got list"),
    ([{"frame_index": 2, "landmarks": None}, {"frame_index": 2, "landmarks": []}], "frame index 2 is listed twice"),
    ({"frames": 3}, "expected a list of frames"),
    ([None, [], {"pose_landmarks": None}], "nobody detected in any of the 3 frames"),
])
def test_mediapipe_garbage_rejected(obj, match):
    with pytest.raises(DataFormatError, match=match):
        read_mediapipe_json(obj, name="m.json")


def test_mediapipe_null_visibility_is_missing():
    frame = [{"x": 0.5, "y": 0.5, "visibility": 0.9}] * 33
    frame[3] = {"x": 0.1, "y": 0.2, "visibility": None}
    clip = pose_to_clip(read_mediapipe_json([frame]), 1)
    assert (clip[:, 0, 3, 0] == 0).all() and clip[2, 0, 4, 0] == pytest.approx(0.9)


def test_empty_everywhere_is_empty_sequence():
    with pytest.raises(EmptySequenceError, match="nobody detected in any of the 2 frames"):
        read_kinetics_json({"data": [{"skeleton": []}, {}]}, name="k.json")


# ------------------------------------------------------------------------------------------
# hypothesis: structure-aware mutations of valid files

HOSTILE = [math.nan, math.inf, -math.inf, 10 ** 400, -(10 ** 40), 2 ** 31, 2 ** 63, -1, 0, 2_000_000_000, 1e300,
           3.5e38, True, None, "x", "000012.jpg", [], {}, [[[[[]]]]], [0.5] * 36, [0.9] * 18, {"x": 1}]


def _nodes(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k in list(obj)[:8]:
            yield from _nodes(obj[k], path + (k,))
    elif isinstance(obj, list):
        for i in range(min(len(obj), 6)):
            yield from _nodes(obj[i], path + (i,))


def _set(obj, path, value):
    if not path:
        return value
    ref = obj
    for p in path[:-1]:
        ref = ref[p]
    ref[path[-1]] = value
    return obj


@st.composite
def mutated(draw, base):
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_nodes(obj))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        op = draw(st.sampled_from(["hostile", "duplicate", "flood", "drop"]))
        ref = obj
        for p in path:
            ref = ref[p]
        if op == "hostile":
            obj = _set(obj, path, copy.deepcopy(draw(st.sampled_from(HOSTILE))))
        elif op == "duplicate" and isinstance(ref, list) and ref:
            ref.append(copy.deepcopy(ref[draw(st.integers(0, len(ref) - 1))]))
        elif op == "flood" and isinstance(ref, list) and ref:
            ref.extend([ref[0]] * draw(st.sampled_from([10, 100, 3000])))
        elif op == "drop" and path:
            obj = _set(obj, path, None)
    text = json.dumps(obj)
    if draw(st.booleans()):  # and sometimes a byte-level cut
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


OPENPOSE = {"version": 1.3, "people": [{"pose_keypoints_2d": [100.0, 200.0, 0.8] * 25},
                                      {"pose_keypoints_2d": [10.0, 20.0, 0.5] * 18}]}


def _openpose(b: bytes):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "vid_000000000003_keypoints.json")
        with open(p, "wb") as fh:
            fh.write(b)
        return pose_to_clip(read_openpose_frames([p]), 2)


READERS = {
    "kinetics": (KIN, lambda b: pose_to_clip(read_kinetics_json(b, name="k.json"), 2)),
    "openpose": (OPENPOSE, _openpose),
    "coco": (COCO, lambda b: pose_to_clip(read_coco_keypoints_json(b, name="c.json"), 2)),
    "mediapipe": (MP, lambda b: pose_to_clip(read_mediapipe_json(b, name="m.json"), 1)),
}
PEAK_BYTES = 64 << 20  # inputs are < 1 MB: anything near this is a blow-up


@pytest.mark.parametrize("reader", sorted(READERS))
def test_fuzz_pose_readers_only_raise_data_format_error_and_stay_small(reader):
    base, fn = READERS[reader]
    fn(_b(base))

    @settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(base))
    def run(data):
        tracemalloc.start()
        try:
            out = fn(data)
            assert np.isfinite(out).all()
        except DataFormatError:
            pass
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MiB for a {len(data)}-byte input"

    run()
