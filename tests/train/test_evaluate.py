from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from asma.data.arrays import SkeletonArrays
from asma.data.streams import to_stream
from asma.train.evaluate import (AIMCLR_WEIGHTS, evaluate, evaluate_logits, fuse_streams, read_logits,
                                 write_eval)


def _hand_example():
    # 6 clips, 3 classes; true labels and the logits' argmax:
    #   clip: 0 1 2 3 4 5
    #   true: 0 0 0 1 1 2
    #   pred: 0 1 0 1 2 2      (clip 1: class 0 is the runner-up; clip 4: class 1 is 2nd)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    logits = torch.tensor([[3.0, 1.0, 0.0],
                           [2.0, 5.0, 0.0],
                           [1.0, 0.0, -1.0],
                           [0.0, 2.0, 1.0],
                           [-1.0, 1.0, 4.0],
                           [0.0, 0.5, 1.0]])
    return logits, labels


def test_confusion_and_per_class_by_hand():
    logits, labels = _hand_example()
    r = evaluate_logits(logits, labels, ["a", "b", "c"], name="hand")
    expected = torch.tensor([[2, 1, 0],
                             [0, 1, 1],
                             [0, 0, 1]])
    assert torch.equal(r.confusion, expected)
    assert int(r.confusion.sum()) == 6 and r.confusion.sum(1).tolist() == [3, 2, 1]
    assert r.per_class == pytest.approx([200 / 3, 50.0, 100.0])
    assert r.top1 == pytest.approx(400 / 6)  # 4 of 6 correct
    assert r.top5 == pytest.approx(100.0)  # k > K counts all classes
    assert r.mean_class == pytest.approx((200 / 3 + 50 + 100) / 3)
    d = r.as_dict()
    assert d["per_class"]["b"] == 50.0 and d["class_counts"] == {"a": 3, "b": 2, "c": 1}
    assert d["confusion"] == expected.tolist()
    p = r.to_probe_result()
    assert p.name == "hand" and p.top1 == r.top1 and p.logits is r.logits


def test_absent_class_is_none_and_excluded_from_mean():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    r = evaluate_logits(logits, torch.tensor([0, 0]))
    assert r.per_class == [50.0, None, None]
    assert r.mean_class == 50.0
    assert r.class_names == ["class_0", "class_1", "class_2"]
    with pytest.raises(ValueError, match="labels must lie in"):
        evaluate_logits(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="do not match"):
        evaluate_logits(logits, torch.tensor([0, 0, 1]))


def test_write_eval_files_round_trip(tmp_path):
    logits, labels = _hand_example()
    r = evaluate_logits(logits, labels, ["a", "b", "c"], name="hand")
    paths = write_eval(r, tmp_path / "res" / "joint-test")
    assert paths["json"].name == "joint-test.json"
    d = json.loads(paths["json"].read_text())
    assert d["top1"] == pytest.approx(66.6667, abs=1e-3) and d["num_clips"] == 6
    rows = list(csv.reader(paths["confusion"].open()))
    assert rows[0] == ["true\\pred", "a", "b", "c"]
    assert rows[1:] == [["a", "2", "1", "0"], ["b", "0", "1", "1"], ["c", "0", "0", "1"]]
    z, y = read_logits(paths["json"])
    assert torch.equal(z, logits) and torch.equal(y, labels)
    assert not [p for p in (tmp_path / "res").iterdir() if p.name.startswith(".")]  # no temp files


class _Recorder(nn.Module):
    """Logits = the per-clip mean of the first 3 channels (records its inputs and mode)."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(1)
        self.inputs, self.modes = [], []

    def forward(self, x):
        self.inputs.append(x.clone())
        self.modes.append(self.training)
        return x.mean(dim=(2, 3, 4))


def test_evaluate_uses_stream_eval_mode_and_batches():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(5, 3, 4, 25, 1, generator=g).numpy()
    arrays = SkeletonArrays(data, np.array([0, 1, 2, 0, 1]), layout="ntu25")
    model = _Recorder().train()
    r = evaluate(model, arrays, stream="bone", batch_size=2)
    assert model.training and model.modes == [False, False, False]  # eval during, restored after
    seen = torch.cat(model.inputs)
    bone = to_stream(torch.from_numpy(data), "bone", arrays.skeleton)
    assert torch.allclose(seen, bone)
    assert torch.allclose(r.logits, bone.mean(dim=(2, 3, 4)))
    assert int(r.confusion.sum()) == 5
    with pytest.raises(ValueError, match="not a bare backbone"):
        evaluate(lambda x: (x, x), arrays)


def test_fuse_streams_by_hand():
    j = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    m = torch.tensor([[2.0, 2.0], [4.0, 0.0]])
    fused = fuse_streams({"joint": j, "bone": b, "motion": m})  # AimCLR weights, raw logits
    assert AIMCLR_WEIGHTS == {"joint": 0.6, "bone": 0.6, "motion": 0.4}
    assert torch.allclose(fused, torch.tensor([[0.6 + 0.8, 0.6 + 0.8], [0.6 + 1.6, 1.2 + 0.6]]))
    two = fuse_streams({"joint": j, "bone": b}, {"joint": 1.0, "bone": 2.0})
    assert torch.allclose(two, torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    soft = fuse_streams({"joint": j, "bone": b}, {"joint": 1.0, "bone": 1.0}, mode="softmax")
    s = 1 / (1 + math.e)  # softmax([0, 1])[0]
    e2 = 1 / (1 + math.e ** 2)  # softmax([2, 0])[1]
    assert torch.allclose(soft, torch.tensor([[(1 - s) + s, s + (1 - s)], [e2 + 0.5, (1 - e2) + 0.5]]))
    with pytest.raises(ValueError, match="no fusion weight"):
        fuse_streams({"joint": j, "velocity": b})
    with pytest.raises(ValueError, match="same"):
        fuse_streams({"joint": j, "bone": b[:1]})
    with pytest.raises(ValueError, match="unknown fusion mode"):
        fuse_streams({"joint": j}, mode="vote")
