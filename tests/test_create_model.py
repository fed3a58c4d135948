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


def test_student_inference_imports_neither_torch_geometric_nor_sympy(tmp_path):
    from asma.models import EncoderClassifier, create_backbone
    from asma.pretrained.architectures import config_for_model
    from asma.zoo.model import save_pretrained
    student = EncoderClassifier.linear(create_backbone("stgcn-student"), 5).eval()
    cfg = config_for_model(student, kind="student", class_names=list("abcde"), num_frames=20, num_persons=2)
    save_pretrained(student, cfg, tmp_path / "student", card=False)
    x = torch.randn(1, 3, 20, 25, 2, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(student(x), tmp_path / "ref.pt")
    code = (f"import sys, torch, asma; torch.set_num_threads(1); m = asma.create_model({str(tmp_path / 'student')!r}, "
            f"pretrained=True); x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)\n"
            f"with torch.no_grad(): y = m(m.pretrained_cfg.preprocess(x))\n"
            f"print(torch.equal(y, torch.load({str(tmp_path / 'ref.pt')!r}, weights_only=True)), "
            "[k for k in ('torch_geometric', 'sympy') if k in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []"
    # a backbone by name is just as light; GIN is the one that needs torch_geometric
    code = ("import sys, asma; asma.create_model('stgcn'); print('torch_geometric' in sys.modules); "
            "asma.create_model('gin'); print('torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_zoo_aliases_of_the_built_in_manifest():
    from asma.zoo.registry import NotBuiltError, list_entries
    with_weights = {e.alias for e in list_entries() if e.has_weights}
    recipes = {e.alias for e in list_entries() if not e.has_weights}
    assert "ntu60-student" in recipes and set(asma.list_models(pretrained=True)) == with_weights
    assert recipes <= set(asma.list_models()) and not recipes & set(asma.list_models(pretrained=True))
    with pytest.raises(NotBuiltError, match="asma zoo build ntu60-student"):
        asma.create_model("ntu60-student", pretrained=True)


def test_the_raw_readers_import_without_torch():
    """`asma data prepare` lists and parses with numpy only (torch costs seconds to import)."""
    import subprocess
    import sys
    code = "import sys, asma.data.readers, asma.data.readers.hdm05; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
