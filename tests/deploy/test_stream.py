"""Streaming: the Recognizer's windows equal the model on the same clip; asma predict --stream in
a shell pipe."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import asma
from asma.data.errors import DataFormatError
from asma.deploy.classify import model_input, softmax
from asma.deploy.stream import Recognizer, stream_predictions


def _frames(n=23, persons=1, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((1, persons, 25, 3)).astype(np.float32)
    return base + 0.05 * rng.standard_normal((n, persons, 25, 3)).astype(np.float32).cumsum(0)


def test_recognizer_windows_equal_the_model_on_the_clip(classifier_dir):
    model = asma.create_model(str(classifier_dir), pretrained=True)
    cfg = model.pretrained_cfg
    rec = Recognizer(model, window=10, stride=3)
    frames = _frames()
    got = {i: p for i, f in enumerate(frames, 1) if (p := rec.push(f[0])) is not None}  # (V, C) frames
    assert sorted(got) == [10, 13, 16, 19, 22]
    for end, p in got.items():
        clip = frames[end - 10:end].transpose(3, 0, 2, 1)  # (C, T, V, M=1)
        clip = np.concatenate([clip, np.zeros_like(clip)], axis=3)  # the model's 2 person slots
        with torch.no_grad():
            ref = softmax(model(torch.from_numpy(model_input(cfg, clip))).numpy())[0]
        np.testing.assert_allclose(p, ref, rtol=0, atol=1e-12)
    assert p.shape == (5,) and p.sum() == pytest.approx(1.0)
    rec.reset()
    assert rec.push(frames[0][0]) is None and rec.frames_seen == 1


def test_recognizer_refuses_wrong_frames(classifier_dir):
    rec = Recognizer(asma.create_model(str(classifier_dir), pretrained=True), window=4)
    with pytest.raises(ValueError, match=r"expected \(V, C\) = \(25, 3\).*got shape \(20, 3\)"):
        rec.push(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="needs the model's config"):
        Recognizer(torch.nn.Linear(2, 2))
    lines = ["[[0, 0, 0]]", "not json"]
    with pytest.raises(DataFormatError, match=r"<stdin> line 1: .*\(25, 3\)"):
        list(stream_predictions(rec, lines))
    rec.reset()
    with pytest.raises(DataFormatError, match=r"<stdin> line 2: not JSON"):
        list(stream_predictions(rec, [json.dumps(np.zeros((25, 3)).tolist()), "not json"]))


@pytest.mark.slow
def test_predict_stream_in_a_shell_pipe(classifier_dir):
    frames = _frames(12, persons=2, seed=1)
    lines = "".join(json.dumps({"joints": f.tolist()}) + "\n" for f in frames)
    proc = subprocess.run([sys.executable, "-m", "asma.cli.main", "predict", str(classifier_dir), "--stream",
                           "--window", "8", "--stride", "2", "--json", "--topk", "2"],
                          input=lines, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["frame"] for o in out] == [8, 10, 12]
    rec = Recognizer(asma.create_model(str(classifier_dir), pretrained=True), window=8, stride=2)
    ref = [p for f in frames if (p := rec.push(f)) is not None]
    for o, p in zip(out, ref):
        top = np.argsort(-p)[:2]
        assert [t["class"] for t in o["top"]] == [f"class{i}" for i in top]
        assert [t["prob"] for t in o["top"]] == pytest.approx(p[top], abs=1e-6)
