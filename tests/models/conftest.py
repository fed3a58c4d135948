"""Shared checks for the backbone tests."""
import io

import pytest
import torch


@pytest.fixture
def onnx_roundtrip():
    """``check(model, num_joints) -> onnx ModelProto``: export a backbone with dynamic N, T and M
    (legacy TorchScript exporter: the torch.export-based default needs onnxscript), validate the
    graph and compare onnxruntime's pooled features and tokens with PyTorch's on the traced shape
    and on another one."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    def check(model, num_joints: int):
        model = model.eval()
        f = io.BytesIO()
        torch.onnx.export(model, (torch.randn(2, 3, 8, num_joints, 2),), f, input_names=["x"],
                          output_names=["pooled", "tokens"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "n", 2: "t", 4: "m"}, "pooled": {0: "n"},
                                        "tokens": {0: "n", 1: "t_out"}})
        proto = onnx.load_from_string(f.getvalue())
        onnx.checker.check_model(proto)
        sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
        for shape in [(2, 3, 8, num_joints, 2), (3, 3, 11, num_joints, 1)]:
            x = torch.randn(*shape)
            pooled, tokens = sess.run(None, {"x": x.numpy()})
            with torch.no_grad():
                ref_pooled, ref_tokens = model(x)
            torch.testing.assert_close(torch.from_numpy(pooled), ref_pooled, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(torch.from_numpy(tokens), ref_tokens, rtol=1e-4, atol=1e-5)
        return proto

    return check
