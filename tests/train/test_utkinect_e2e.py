"""ASMa on real recorded data: UTKinect-Action3D (Kinect v1, 20 joints), cross-subject split."""
import pytest

from asma.data.readers.kinect_v1 import load_utkinect, utkinect_cross_subject
from asma.models import create_backbone
from asma.train import linear_evaluation, make_config, pretrain


@pytest.mark.slow
def test_utkinect_pretraining_beats_chance_and_random_init(realdata):
    data = load_utkinect(realdata / "utkinect_action3d")
    train, test = utkinect_cross_subject(data)
    assert train.skeleton.name == "kinect20" and train.num_classes == 10
    cfg = make_config("tiny")
    cfg.model.n_joints = 5          # of 20 joints
    cfg.model.n_frames = 10         # of 50 frames
    cfg.pretrain.epochs = 12
    cfg.pretrain.batch_size = 25
    rows = linear_evaluation(
        dict(pretrain(cfg, train, None, progress=False).encoders.items()), train, test, cfg.probe,
        random_encoders=[create_backbone("stgcn", train.skeleton, 3, **cfg.model.backbone_cfg)], seed=0)
    acc = {r.name: r.top1 for r in rows}
    best = max(acc["theta probe"], acc["phi probe"], acc["theta+phi aligned"])
    assert best > 10.0 + 25, acc                      # clearly above chance (10 classes)
    assert best > acc["random-init probe"] + 5, acc   # and above a random-init encoder
