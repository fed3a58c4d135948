"""PretrainedConfig: JSON round trip, validation errors naming file and field, transforms."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asma.data.streams import to_stream
from asma.graph import get_layout
from asma.pretrained.config import PretrainedConfig
from asma.pretrained.schema import ConfigError


def _minimal(**kw):
    base = {"kind": "encoder", "backbone": {"name": "stgcn", "hidden_channels": 4}, "layout": get_layout("ntu25").to_dict(),
            "in_channels": 3}
    base.update(kw)
    return base


def test_json_round_trip(tmp_path, classifier_config):
    path = classifier_config.to_json(tmp_path / "config.json")
    back = PretrainedConfig.from_json(path)
    assert back == classifier_config
    assert PretrainedConfig.from_json(tmp_path) == classifier_config  # a directory works too
    data = json.loads(path.read_text())
    assert data["kind"] == "classifier" and data["num_classes"] == 5 and data["head"] == {"type": "linear"}
    assert data["backbone"] == {"name": "stgcn", "hidden_channels": 4, "out_channels": 16}
    assert data["layout"]["num_joints"] == 25 and data["format_version"] == 2 and "origin" not in data
    assert back.skeleton().same_as(get_layout("ntu25"))


def test_costs_are_measured(classifier, classifier_config):
    from asma.models import count_flops
    assert classifier_config.num_params == sum(p.numel() for p in classifier.parameters())
    flops = count_flops(classifier, torch.zeros(1, 3, 16, 25, 2))
    assert classifier_config.gflops == round(flops / 1e9, 4) and classifier_config.gflops > 0
    assert classifier_config.input_spec == {"C": 3, "T": 16, "V": 25, "M": 2}


def test_format_1_files_still_load(tmp_path, classifier_config):
    data = classifier_config.to_dict()
    for k in ("num_params", "gflops", "source"):
        del data[k]
    data["format_version"] = 1
    back = PretrainedConfig.from_dict(data)
    assert back.num_params is None and back.gflops is None and back.source == {} and back.format_version == 1


def test_defaults_are_derived():
    cfg = PretrainedConfig.from_dict(_minimal(in_channels=2))
    assert cfg.num_coords == 2 and cfg.stream == "joint" and cfg.head == {} and cfg.license == "unknown"
    t = PretrainedConfig.from_dict(_minimal(kind="teacher", class_names=["a", "b"]))
    assert t.num_classes == 2 and t.head == {"type": "alignment", "num_heads": 4, "dropout": 0.0}
    # the backbone's own in_channels (as in Backbone.config) is folded into the top-level field
    assert PretrainedConfig.from_dict(_minimal(backbone={"name": "stgcn", "in_channels": 3})).backbone == {"name": "stgcn"}


@pytest.mark.parametrize("field, value, expect", [
    ("kind", "detector", "expected one of encoder, classifier, teacher, student"),
    ("stream", "rgb", "expected one of joint, bone, motion"),
    ("in_channels", 0, "positive integer"),
    ("in_channels", True, "positive integer"),
    ("num_coords", 4, "1..in_channels=3"),
    ("num_frames", -1, "positive integer"),
    ("backbone", {"hidden_channels": 4}, "backbone 'name'"),
    ("metrics", {"ntu60-xsub": {"top1": 180}}, "percentage in [0, 100]"),
    ("metrics", {"ntu60-xsub": 80.0}, "must be an object"),
    ("base_model", "teacher", "'org/name'"),
    ("class_names", ["a", "a"], "unique"),
    ("format_version", 7, "upgrade asma"),
])
def test_invalid_field_names_file_and_field(tmp_path, field, value, expect):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_minimal(**{field: value})))
    with pytest.raises(ConfigError) as e:
        PretrainedConfig.from_json(path)
    msg = str(e.value)
    assert str(path) in msg and f"field {field!r}" in msg and expect in msg, msg


def test_structural_errors(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_minimal(colour="red")))
    with pytest.raises(ConfigError, match=r"config.json: unknown field\(s\) 'colour'"):
        PretrainedConfig.from_json(path)
    d = _minimal()
    del d["layout"]
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=r"config.json: field 'layout': missing"):
        PretrainedConfig.from_json(path)
    bad = _minimal()
    bad["layout"] = dict(bad["layout"], center=99)
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"field 'layout': not a valid skeleton"):
        PretrainedConfig.from_json(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json line 1: invalid JSON"):
        PretrainedConfig.from_json(path)
    with pytest.raises(FileNotFoundError, match="missing file"):
        PretrainedConfig.from_json(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="a classifier has a classification head: give class_names"):
        PretrainedConfig(**_minimal(kind="classifier"))
    with pytest.raises(ConfigError, match="5 classes but 2 class_names"):
        PretrainedConfig(**_minimal(kind="classifier", class_names=["a", "b"], num_classes=5))


def test_the_old_run_encoder_format_is_refused(tmp_path):
    # runs write their encoders as zoo folders (asma.train.rundir.save_encoders); the earlier run
    # format (no kind, top-level masking) is not converted
    layout = get_layout("ntu25").to_dict()
    (tmp_path / "config.json").write_text(json.dumps({
        "backbone": {"name": "stgcn", "in_channels": 3, "hidden_channels": 4}, "layout": layout, "in_channels": 3,
        "stream": "motion", "num_frames": 50, "masking": ["high", "low"], "class_names": ["a", "b"]}))
    with pytest.raises(ConfigError, match=r"config.json: unknown field\(s\) 'masking'$"):
        PretrainedConfig.from_json(tmp_path)


def test_transforms_convert_stream_and_check_shapes(classifier_config, clips):
    cfg = classifier_config
    t = cfg.transforms()
    out = t(clips)
    assert torch.equal(out, to_stream(clips, "bone", get_layout("ntu25"), 3))
    assert torch.equal(cfg.preprocess(clips[0]), out[:1])  # (C, T, V, M) gets a batch dim
    with pytest.raises(ValueError, match=r"V=17 joints but the checkpoint was built for layout 'ntu25' with V=25"):
        t(torch.zeros(1, 3, 16, 17, 2))
    with pytest.raises(ValueError, match=r"C=2 channels but the checkpoint was built for in_channels=3"):
        t(torch.zeros(1, 2, 16, 25, 2))


def test_prepare_clip_applies_recorded_preprocessing(classifier_config):
    from asma.data.preprocess import PreprocessConfig, preprocess_clip
    t = classifier_config.transforms()
    assert t.preprocess_config() == PreprocessConfig(length=16)
    raw = np.random.default_rng(0).normal(size=(3, 40, 25, 2)).astype(np.float32)
    got = t.prepare_clip(raw)
    want = to_stream(torch.from_numpy(preprocess_clip(raw, PreprocessConfig(length=16)))[None], "bone",
                     get_layout("ntu25"), 3)
    assert got.shape == (1, 3, 16, 25, 2) and torch.allclose(got, want)
    free = PretrainedConfig(**_minimal(preprocessing={"note": "normalised with tool X"}))
    with pytest.raises(ValueError, match="free-form key"):
        free.transforms().preprocess_config()
