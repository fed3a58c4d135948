"""The 3-stream ensemble as one module: fused logits, save/load, one ONNX graph."""
import pytest
import torch

from asma.data.streams import to_stream
from asma.deploy.ensemble import StreamEnsemble, is_ensemble, load_ensemble, save_ensemble
from asma.deploy.onnx import PARITY_TOL, export_onnx
from asma.pretrained.architectures import config_for_model

from conftest import small_classifier


def _ensemble(weights=None):
    models = {s: small_classifier(seed=i) for i, s in enumerate(("joint", "bone", "motion"))}
    configs = {s: config_for_model(m, kind="classifier", class_names=list("abcde"), stream=s, num_frames=20,
                                   num_persons=2) for s, m in models.items()}
    return StreamEnsemble(models, configs, weights).eval(), models, configs


def test_fused_logits_are_the_weighted_sum_of_the_streams():
    ens, models, configs = _ensemble()
    x = torch.randn(2, 3, 20, 25, 2)
    skel = configs["joint"].skeleton()
    with torch.no_grad():
        ref = sum(w * models[s](to_stream(x, s, skel)) for s, w in (("joint", 0.6), ("bone", 0.6), ("motion", 0.4)))
        torch.testing.assert_close(ens(x), ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="no ensemble weight for stream"):
        _ensemble({"joint": 1.0})


def test_save_load_and_onnx_of_the_ensemble(tmp_path):
    ens, _, _ = _ensemble({"joint": 1.0, "bone": 0.5, "motion": 0.25})
    save_ensemble(ens, tmp_path / "ens")
    assert is_ensemble(tmp_path / "ens") and not is_ensemble(tmp_path)
    back, configs = load_ensemble(tmp_path / "ens")
    assert back.weights == {"joint": 1.0, "bone": 0.5, "motion": 0.25} and configs["bone"].stream == "bone"
    x = torch.randn(1, 3, 20, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(back(x), ens(x), rtol=0, atol=0)
    assert export_onnx(ens, tmp_path / "ens.onnx", (2, 3, 20, 25, 2)) < PARITY_TOL
