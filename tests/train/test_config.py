import json

import pytest

from asma.train.config import DataConfig, make_config, parse_set


def test_presets_and_overrides_from_cli_and_files(tmp_path):
    cfg = make_config("paper")
    assert cfg.model.projector == [6144, 6144, 6144] and cfg.pretrain.epochs == 150
    assert cfg.model.lambda_bt == 2e-4 and cfg.model.n_joints == 9 and cfg.model.n_frames == 10
    y = tmp_path / "o.yaml"
    y.write_text("pretrain:\n  epochs: 3\nmodel:\n  backbone_cfg:\n    dropout: 0.1\n")
    j = tmp_path / "o.json"
    j.write_text(json.dumps({"pretrain": {"epochs": 4}}))
    cfg = make_config("quick", [str(y), str(j)], parse_set(["probe.lr=0.5", "bf16=true",
                                                              "model.projector=[64, 64]"]))
    assert cfg.pretrain.epochs == 4  # later file wins
    assert cfg.model.backbone_cfg == {"out_channels": 128, "dropout": 0.1}  # merged into the preset's
    assert cfg.probe.lr == 0.5 and cfg.bf16 is True and cfg.model.projector == [64, 64]


@pytest.mark.parametrize("sets,msg", [
    (["pretrain.epoch=3"], "unknown config key 'pretrain.epoch'.*epochs"),
    (["pretrain.epochs=three"], "pretrain.epochs: cannot use 'three' as int"),
    (["pretrain=3"], "pretrain is a section"),
    (["nokey"], "KEY=VALUE"),
])
def test_bad_overrides_are_clear(sets, msg):
    with pytest.raises(ValueError, match=msg):
        make_config("paper", None, parse_set(sets))


def test_unknown_preset():
    with pytest.raises(ValueError, match="known presets: paper, quick, small, tiny"):
        make_config("huge")


def _numeric_fields(obj, prefix=""):
    import dataclasses
    import typing
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numeric_fields(value, f"{prefix}{f.name}.")
        elif hints[f.name] in (int, float, typing.Optional[float], typing.Optional[int]):
            yield prefix + f.name


def test_every_numeric_field_is_bounded_and_the_presets_pass():
    from asma.train.validation import CHOICES, FLOAT_BOUNDS, INT_BOUNDS, OPTION_MAX, check_config
    cfg = make_config("paper")
    assert sorted(_numeric_fields(cfg)) == sorted([*INT_BOUNDS, *FLOAT_BOUNDS])  # a new field needs a bound
    for key in [*CHOICES, *OPTION_MAX]:
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
    for preset in ("paper", "quick", "small", "tiny"):
        assert check_config(make_config(preset)).preset == preset


@pytest.mark.parametrize("sets,msg", [
    (["pretrain.lr=0"], r"pretrain.lr=0.0: must be a finite number in \(0, 1\]"),
    (["probe.weight_decay=-1e-5"], r"probe.weight_decay=-1e-05: must be a finite number in \[0, 1\]"),
    (["finetune.warmup_epochs=200"], "finetune.warmup_epochs=200: must not exceed finetune.epochs=150"),
    (["distill.mode=soft"], "distill.mode='soft': expected one of logits, features"),
    (["augment.rotate=720"], r"augment.rotate=720.0: must be a finite number in \[0, 180\]"),
    (['distill.student_cfg={"channels": [8, 0]}'], r"distill.student_cfg.channels\[1\]=0: must be an integer"),
    (['model.encoders={"theta": ["high"]}'], "model.encoders=.*expected name -> \\[spatial, temporal\\]"),
    (["seed=-1"], "seed=-1: must be an integer in 0.."),
])
def test_check_config_names_the_key_and_the_bound(sets, msg):
    from asma.train.validation import check_config
    with pytest.raises(ValueError, match=msg):
        check_config(make_config("paper", None, parse_set(sets)))


@pytest.mark.parametrize("sets,msg", [
    (["model.backbone_cfg=[1,2]"], r"model.backbone_cfg: expected a JSON object, got \[1, 2\]"),
    (['model.projector=["a"]'], r"model.projector\[0\]: cannot use 'a' as int"),
    (['fusion_weights={"joint": "x"}'], "fusion_weights.joint: cannot use 'x' as float"),
    (['model.encoders={"theta": "high"}'], "model.encoders.theta: expected a JSON list, got 'high'"),
    (["model.projector=" + "[" * 100_000 + "]" * 100_000],
     r"expected a JSON list, got '\[\[\[.*\.\.\. \(200,002 characters\)$"),
    (["pretrain.epochs=1e999"], "pretrain.epochs: cannot use '1e999' as int"),
])
def test_container_fields_check_their_elements(sets, msg):
    with pytest.raises(ValueError, match=msg):
        make_config("paper", None, parse_set(sets))


def test_a_non_finite_integer_in_a_config_file_is_refused(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"pretrain": {"epochs": 1e999}}')  # json reads inf
    with pytest.raises(ValueError, match="pretrain.epochs: cannot use inf as int"):
        make_config("paper", [str(p)])
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        make_config("paper", [str(p)])


def test_distill_lr_may_stay_unset():
    from asma.train.validation import check_config, check_section
    cfg = check_config(make_config("paper", None, parse_set(["distill.lr=none"])))
    assert cfg.distill.lr is None
    cfg.finetune.align_lr = float("nan")
    with pytest.raises(ValueError, match="finetune.align_lr=nan"):
        check_section(cfg.finetune, "finetune.")
    check_section(cfg.distill, "distill.")


def test_data_label_names_the_split_only_for_the_synthetic_data():
    # a prepared dataset's name holds its split; data.protocol (default "xsub") applies to synthetic only
    assert DataConfig(dataset="nwucla-xview").label == "nwucla-xview"
    assert DataConfig(dataset="synthetic", protocol="xview").label == "synthetic (xview)"
