import numpy as np
import pytest
import torch

from asma.data.arrays import SkeletonArrays
from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.train import make_config, pretrain


def _small():
    cfg = make_config("tiny")
    cfg.pretrain.epochs = 4
    cfg.pretrain.batch_size = 16
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.5}
    cfg.model.projector = [32, 32]
    data = make_synthetic(SyntheticConfig(num_classes=4, clips_per_class=12, num_frames=16, num_persons=1))
    return cfg, data


def test_resume_reproduces_uninterrupted_losses(tmp_path):
    cfg, data = _small()
    full = pretrain(cfg, data, tmp_path / "a", progress=False)
    pretrain(cfg, data, tmp_path / "b", progress=False, max_epochs=2)
    resumed = pretrain(cfg, data, tmp_path / "b", progress=False, resume=True)
    losses_full = [h["loss"] for h in full.history]
    assert [h["epoch"] for h in resumed.history] == [2, 3]
    assert [h["loss"] for h in resumed.history] == pytest.approx(losses_full[2:], rel=1e-5)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_resume_without_checkpoint_is_clear(tmp_path):
    cfg, data = _small()
    with pytest.raises(ValueError, match="no pretrain checkpoint in .*pretrain"):
        pretrain(cfg, data, tmp_path / "none", progress=False, resume=True)


@pytest.mark.parametrize("field,value,msg", [
    ("batch_size", 1, "at least 2 samples"),
    ("batch_size", 1000, "fewer than pretrain.batch_size=1000"),
])
def test_invalid_batch_fails_early(tmp_path, field, value, msg):
    cfg, data = _small()
    setattr(cfg.pretrain, field, value)
    with pytest.raises(ValueError, match=msg):
        pretrain(cfg, data, None, progress=False)


def test_mask_counts_checked_against_data(tmp_path):
    cfg, data = _small()
    cfg.model.n_frames = 16
    with pytest.raises(ValueError, match="n_frames=16 must be smaller than the clip length T=16"):
        pretrain(cfg, data, None, progress=False)
    cfg.model.n_frames = 4
    cfg.model.n_joints = 25
    with pytest.raises(ValueError, match="n_joints=25"):
        pretrain(cfg, data, None, progress=False)


def test_layout_mismatch_in_arrays_is_clear():
    with pytest.raises(ValueError, match="V=17 joints but layout 'ntu25' has V=25"):
        SkeletonArrays(np.zeros((2, 3, 4, 17, 1), np.float32), np.zeros(2), layout="ntu25")


def test_resume_from_config_json_like_the_cli(tmp_path):
    # `asma train --resume` rebuilds the config from config.json: the encoder order (and so the
    # optimizer's parameter order) must survive the JSON round trip.
    from dataclasses import asdict

    from asma.io import atomic_write_json, read_json
    from asma.train.config import apply_overrides
    cfg, data = _small()
    full = pretrain(cfg, data, tmp_path / "a", progress=False)
    pretrain(cfg, data, tmp_path / "b", progress=False, max_epochs=2)
    atomic_write_json(tmp_path / "b" / "config.json", asdict(cfg))
    reloaded = apply_overrides(make_config("paper"), read_json(tmp_path / "b" / "config.json"))
    assert list(reloaded.model.encoders) == ["theta", "phi"]
    resumed = pretrain(reloaded, data, tmp_path / "b", progress=False, resume=True)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history][2:], rel=1e-5)
