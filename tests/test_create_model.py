"""``asma.create_model`` / ``asma.list_models`` on backbone names; bad names; ``import asma`` stays light.
(Folders, Hub names and aliases: tests/zoo/test_zoo_model.py; run directories: tests/zoo/test_export.py.)"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import asma
from asma.zoo.registry import UnknownModelError, ZooError


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_backbones_by_name_with_paper_sizes():
    stgcn = asma.create_model("stgcn")
    assert _params(stgcn) == 821_380 and stgcn.training  # a fresh backbone, not a pretrained one
    assert _params(asma.create_model("stgcn-student")) == 178_557
    assert _params(asma.create_model("gin")) == 828_102 and _params(asma.create_model("dgcnn")) == 776_726
    assert not hasattr(stgcn, "pretrained_cfg")


def test_overrides_go_to_the_constructor():
    m = asma.create_model("stgcn", layout="kinect20", in_channels=2, hidden_channels=4, out_channels=16)
    assert (m.layout.num_joints, m.in_channels, m.out_dim) == (20, 2, 16)
    pooled, tokens = m(torch.zeros(2, 2, 20, 20, 1))
    assert pooled.shape == (2, 16) and tokens.shape == (2, 5, 16)
    assert asma.create_model("stgcn-student", num_layers=3).channels == [24, 48, 96]
    with pytest.raises(ValueError, match="invalid options for backbone 'stgcn'.*no_such_option"):
        asma.create_model("stgcn", no_such_option=1)


def test_list_models():
    names = asma.list_models()
    assert {"stgcn", "stgcn-student", "gin", "dgcnn"} <= set(names) and names == sorted(names)
    assert asma.list_models("stgcn*") == [n for n in names if n.startswith("stgcn")]
    assert "stgcn" not in asma.list_models(pretrained=True)  # a bare backbone has no weights


def test_bad_names_list_close_matches():
    with pytest.raises(UnknownModelError, match=r"unknown model 'stgcm'.*did you mean stgcn") as e:
        asma.create_model("stgcm")
    assert "known names:" in str(e.value) and "dgcnn" in str(e.value)
    with pytest.raises(UnknownModelError, match="'./no/such/folder'.*hf-hub:org/name"):
        asma.create_model("./no/such/folder")
    with pytest.raises(ZooError, match="backbone 'stgcn' has no pretrained weights of its own"):
        asma.create_model("stgcn", pretrained=True)


def test_import_asma_is_light():
    code = "import sys, asma; print('torch' in sys.modules, 'create_model' in dir(asma))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]  # the factory (and torch) is imported on first use only
