import json

import pytest

from asma.train.config import make_config, parse_set


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
    with pytest.raises(ValueError, match="known presets: paper, quick, tiny"):
        make_config("huge")
