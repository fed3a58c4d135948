"""asma export: ONNX parity for every backbone, the student, the aligned teacher and the
classifiers; int8; the missing-dependency message."""
import builtins

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from asma.deploy.onnx import PARITY_TOL, _TraceableAttention, export_onnx, quantize_int8, traceable
from asma.deploy.runtime import MissingDependencyError, OnnxRunner, require
from asma.models import AlignedClassifier, EncoderClassifier, FeatureAlignment, create_backbone, list_backbones

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _check_file(path, n_outputs):
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2] == "frames" and dims[4] == "persons" and dims[1] == dims[3] == ""
    assert len(proto.graph.output) == n_outputs


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_exports_with_parity(name, tmp_path):
    model = create_backbone(name, "ntu25", 3).eval()
    diff = export_onnx(model, tmp_path / "m.onnx", (2, 3, 16, 25, 2))
    assert diff < PARITY_TOL
    _check_file(tmp_path / "m.onnx", 2)  # pooled and tokens


def test_attention_rewrite_equals_torch_mha():
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    q, kv = torch.randn(3, 7, 32), torch.randn(3, 5, 32)
    with torch.no_grad():
        ref = mha(q, kv, kv, need_weights=False)[0]
        got = _TraceableAttention(mha)(q, kv, kv, need_weights=False)[0]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    teacher = _teacher("ntu25", 5)
    copy = traceable(teacher)
    assert copy is not teacher and isinstance(copy.align.theta_to_phi, _TraceableAttention)
    assert isinstance(teacher.align.theta_to_phi, torch.nn.MultiheadAttention)  # the original is untouched


def _teacher(layout, k):
    enc = [create_backbone("stgcn-student", layout, 3) for _ in range(2)]
    stats = {f"{w}_{e}": torch.rand(enc[0].out_dim) + (0.5 if w == "std" else 0) for w in ("mean", "std")
             for e in ("theta", "phi")}
    return AlignedClassifier(*enc, FeatureAlignment(enc[0].out_dim, k, num_heads=4), stats)


def _kinect_clips(realdata, n=3):
    """Real UTKinect clips, normalised as the lineage does, (n, 3, 50, 20, 1)."""
    from asma.data.readers import load_utkinect
    return torch.from_numpy(load_utkinect(realdata / "utkinect_action3d").data[:n])


@pytest.mark.parametrize("kind", ["classifier", "student", "teacher"])
def test_classifiers_student_teacher_parity_on_real_clips(kind, tmp_path, realdata):
    torch.manual_seed(0)
    bb = (lambda: create_backbone("stgcn", "kinect20", 3, hidden_channels=16)) if kind == "classifier" else \
        (lambda: create_backbone("stgcn-student", "kinect20", 3))
    model = _teacher("kinect20", 10) if kind == "teacher" else EncoderClassifier.linear(bb(), 10)
    real = _kinect_clips(realdata)
    diff = export_onnx(model.eval(), tmp_path / "m.onnx", (2, 3, 50, 20, 1), check_clips=[real])
    assert diff < PARITY_TOL
    _check_file(tmp_path / "m.onnx", 1)
    got = OnnxRunner(tmp_path / "m.onnx")(real.numpy())
    with torch.no_grad():
        ref = model(real).numpy()
    assert got.shape == (3, 10) and np.abs(got - ref).max() <= PARITY_TOL * max(1.0, np.abs(ref).max())


def test_int8_static_quantisation_tracks_fp32(tmp_path, realdata):
    torch.manual_seed(0)
    model = EncoderClassifier.linear(create_backbone("stgcn-student", "kinect20", 3), 10).eval()
    real = _kinect_clips(realdata, 12)
    export_onnx(model, tmp_path / "fp32.onnx", (2, 3, 50, 20, 1))
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", calibration=[c[None] for c in real.numpy()])
    ref, q = OnnxRunner(tmp_path / "fp32.onnx")(real.numpy()), OnnxRunner(tmp_path / "int8.onnx")(real.numpy())
    err = np.abs(q - ref).max() / np.abs(ref).max()
    assert 0 < err < 0.1  # int8 changes the numbers, but only a little
    assert (tmp_path / "int8.onnx").stat().st_size < 0.6 * (tmp_path / "fp32.onnx").stat().st_size


def test_missing_onnxruntime_is_one_clear_message(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("onnxruntime"):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.delitem(__import__("sys").modules, "onnxruntime")
    with pytest.raises(MissingDependencyError, match=r"pip install 'asma\[onnx\]'"):
        require("onnxruntime")


def test_export_cli_writes_a_checked_file(tmp_path, classifier_dir):
    from asma.cli.main import main
    out = tmp_path / "clf.onnx"
    res = CliRunner().invoke(main, ["export", str(classifier_dir), "--onnx", str(out)])
    assert res.exit_code == 0, res.output
    assert "onnxruntime = PyTorch within" in res.output and "wrote" in res.output
    _check_file(out, 1)
    res = CliRunner().invoke(main, ["export", "stgcn-student", "--onnx", str(tmp_path / "e.onnx"), "--opset", "16"])
    assert res.exit_code == 2 and "16" in res.output
