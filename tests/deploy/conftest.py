"""Shared models for the deploy tests: small classifiers with a recorded preprocessing, saved as
zoo folders, and one trained in the test on the real NTU files (memorised, so its predicted
classes are known)."""
import functools
import glob
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from asma.data.preprocess import PreprocessConfig, preprocess_clip
from asma.models import EncoderClassifier, create_backbone
from asma.pretrained.architectures import config_for_model
from asma.zoo.model import save_pretrained

NTU_PREPROCESS = PreprocessConfig(center_joint=20, shoulders=(4, 8))


def small_classifier(layout="ntu25", num_classes=5, width=8, seed=0):
    """An untrained ``stgcn-student`` classifier (width ``width``)."""
    torch.manual_seed(seed)
    return EncoderClassifier.linear(create_backbone("stgcn-student", layout, 3, width=width), num_classes).eval()


def save_classifier(model, directory, class_names, preprocess=NTU_PREPROCESS, num_frames=50, num_persons=2):
    """Save ``model`` as a zoo folder whose config records ``preprocess``; returns the folder."""
    cfg = config_for_model(model, kind="classifier", class_names=list(class_names), num_frames=num_frames,
                           num_persons=num_persons, preprocessing=preprocess.to_dict())
    return save_pretrained(model, cfg, directory, card=False)


@pytest.fixture
def classifier_dir(tmp_path):
    """A 5-class untrained ntu25 classifier folder (preprocessing recorded)."""
    return save_classifier(small_classifier(), tmp_path / "clf", [f"class{i}" for i in range(5)])


@functools.lru_cache(maxsize=None)
def _memorised_ntu(root: str, out: str):
    from asma.data.readers import NTU60_CLASS_NAMES, parse_ntu_name, read_ntu_clip
    files = sorted(glob.glob(os.path.join(root, "ntu60_raw_skeleton", "*", "*.skeleton")))
    x = np.stack([preprocess_clip(read_ntu_clip(f), NTU_PREPROCESS) for f in files])
    y = torch.tensor([parse_ntu_name(os.path.basename(f))["action"] - 1 for f in files])
    # A frozen random encoder and a head fitted to its pooled features: memorises the clips in
    # well under a second (training the encoder too takes minutes on a loaded CPU).
    model = small_classifier(num_classes=60, width=8)
    with torch.no_grad():
        feats = model.features(torch.from_numpy(x))
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    head = torch.nn.Linear(feats.shape[1], 60)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(500):
        loss = torch.nn.functional.cross_entropy(head(feats), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # fold the standardisation into the head: logits = W (f - mu) / sd + b
        raw = model.features(torch.from_numpy(x))
        mu, sd = raw.mean(0), raw.std(0) + 1e-6
        model.head.fc.weight.copy_(head.weight / sd)
        model.head.fc.bias.copy_(head.bias - (head.weight / sd) @ mu)
    model.eval()
    with torch.no_grad():
        assert (model(torch.from_numpy(x)).argmax(1) == y).all(), "the tiny NTU classifier did not memorise its clips"
    save_classifier(model, out, NTU60_CLASS_NAMES)
    return files, [NTU60_CLASS_NAMES[i] for i in y.tolist()]


@pytest.fixture
def ntu_model(realdata, tmp_path_factory):
    """``(folder, files, true class names)``: a classifier trained here on the real NTU files."""
    out = Path(str(tmp_path_factory.getbasetemp())) / "ntu-memorised"
    files, names = _memorised_ntu(str(realdata), str(out))
    return out, files, names
