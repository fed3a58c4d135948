"""Every registered backbone works in every trainer (pretrain, linear probe, fine-tune, distil)."""
import math

import pytest
import torch

from asma.data.synthetic import SyntheticConfig, make_synthetic, split
from asma.models import list_backbones
from asma.train import make_config, pretrain
from asma.train.config import DistillConfig
from asma.train.distill import distill
from asma.train.config import FinetuneConfig
from asma.train.finetune import finetune
from asma.train.probe import linear_evaluation


@pytest.fixture(scope="module")
def data():
    return split(make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=12, num_frames=16, num_persons=1)))


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_through_all_trainers(name, data):
    train, test = data
    cfg = make_config("tiny")
    cfg.model.backbone = name
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.0}
    cfg.model.projector = [32, 32]
    cfg.model.n_frames = 3
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 8
    cfg.probe.epochs = 2
    model = pretrain(cfg, train, None, progress=False)
    assert math.isfinite(model.history[0]["loss"])
    rows = linear_evaluation(dict(model.encoders.items()), train, test, cfg.probe)
    assert len(rows) == 4 and all(0 <= r.top1 <= 100 for r in rows)
    clf, res = finetune(model.encoders["theta"], train, test, FinetuneConfig(epochs=1, batch_size=8))
    assert res.logits.shape == (len(test), train.num_classes)
    student, sres = distill(lambda x: clf(x), train, test,
                            DistillConfig(epochs=1, batch_size=8, student_cfg={"width": 4}))
    assert sres.logits.shape == (len(test), train.num_classes) and torch.isfinite(sres.logits).all()
