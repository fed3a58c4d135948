"""ONNX export, parity check, int8 quantisation and an onnxruntime runner.

:func:`export_onnx` writes any asma model (a bare :class:`~asma.models.Backbone`, a
:class:`~asma.zoo.model.SkeletonClassifier` / student, an :class:`~asma.zoo.model.AlignedTeacher`,
or any module mapping a clip batch to logits) with dynamic batch, frames and persons axes, checks
the graph with ``onnx.checker`` and compares onnxruntime's outputs with PyTorch's.
:func:`quantize_int8` turns the exported fp32 file into an int8 one (onnxruntime.quantization);
:class:`~asma.deploy.runtime.OnnxRunner` runs the result without torch.
"""
from __future__ import annotations

import copy
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .runtime import OnnxRunner, atomic_write_bytes, require

PathLike = Union[str, "os.PathLike[str]"]
#: Lowest opset the exporter writes (LayerNormalization and the attention pattern need >= 17).
MIN_OPSET = 17
#: Largest accepted ``max |onnxruntime - torch|`` relative to the output scale (1e-4).
PARITY_TOL = 1e-4
def output_names(model) -> List[str]:
    """``["pooled", "tokens"]`` for a bare backbone (encoder), else ``["logits"]``."""
    from asma.models.registry import Backbone
    return ["pooled", "tokens"] if isinstance(model, Backbone) else ["logits"]


class _TraceableAttention(nn.Module):
    """The eval-mode forward of a ``batch_first`` :class:`torch.nn.MultiheadAttention` without
    masks, written so the TorchScript tracer keeps the sequence length symbolic (tracing torch's
    own implementation freezes it, so a graph traced on 13 tokens fails on 12). Same parameters,
    same result.

    Shapes:
        - **query**: :math:`(B, L, D)`, **key** / **value**: :math:`(B, S, D)` -> :math:`(B, L, D)`
    """

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if not (mha.batch_first and mha._qkv_same_embed_dim and mha.bias_k is None and not mha.add_zero_attn):
            raise ValueError("only batch_first MultiheadAttention with equal q/k/v widths can be exported")
        self.mha = mha

    def forward(self, query: Tensor, key: Tensor, value: Tensor, need_weights: bool = False,
                **masks) -> Tuple[Tensor, None]:
        if any(m is not None for m in masks.values()):
            raise ValueError("attention masks are not supported by the ONNX export")
        m, d = self.mha, self.mha.embed_dim
        w, b = m.in_proj_weight, m.in_proj_bias
        b = [None] * 3 if b is None else [b[:d], b[d:2 * d], b[2 * d:]]

        def heads(t: Tensor) -> Tensor:  # (B, L, D) -> (B, H, L, D / H)
            return t.reshape(t.shape[0], -1, m.num_heads, d // m.num_heads).transpose(1, 2)

        q, k, v = (heads(F.linear(t, w[i * d:(i + 1) * d], b[i])) for i, t in enumerate((query, key, value)))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        return m.out_proj(out.reshape(out.shape[0], -1, d)), None


def traceable(model: nn.Module) -> nn.Module:
    """``model`` itself, or a copy whose :class:`~torch.nn.MultiheadAttention` modules (the aligned
    teacher's Eqs. 10-12) are wrapped in :class:`_TraceableAttention`."""
    if not any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MultiheadAttention):
                setattr(parent, name, _TraceableAttention(child))
    return model


def onnx_bytes(model, example, opset: int = MIN_OPSET) -> bytes:
    """Serialise ``model`` traced on ``example`` with dynamic batch (0), frames (2) and persons
    (4) axes. Uses the TorchScript exporter (``dynamo=False``): the torch.export-based one needs
    onnxscript, takes 20-45 s per model here and fails on DGCNN.

    Shapes:
        - **example**: :math:`(N, C, T, V, M)`
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    names = output_names(model)
    axes: Dict[str, Dict[int, str]] = {"x": {0: "batch", 2: "frames", 4: "persons"}}
    for n in names:
        axes[n] = {0: "batch", 1: "tokens"} if n == "tokens" else {0: "batch"}
    f = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        # The backbones' input checks (Python ifs on shapes) trace to constants: harmless here;
        # the TorchScript exporter is chosen on purpose (see above), its deprecation is not news.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(traceable(model), (example,), f, input_names=["x"], output_names=names,
                              opset_version=opset, dynamic_axes=axes, dynamo=False)
    finally:
        model.train(was_training)
    return f.getvalue()


def parity(model, runner: "OnnxRunner", clips: Sequence) -> float:
    """Largest ``|onnxruntime - torch| / max(1, |torch|_max)`` over all outputs of ``clips``.

    Shapes:
        - each clip batch: :math:`(N, C, T, V, M)` tensor or array
    """
    worst = 0.0
    model.eval()
    for x in clips:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        with torch.no_grad():
            ref = model(x)
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        got = runner.run_all(x.numpy())
        for r, g in zip(ref, got):
            r = r.numpy()
            if r.shape != g.shape:
                raise ValueError(f"onnxruntime output shape {g.shape} differs from PyTorch's {r.shape}")
            worst = max(worst, float(np.abs(r - g).max() / max(1.0, float(np.abs(r).max()))))
    return worst


def export_onnx(model, path: PathLike, input_shape: Tuple[int, ...], *, opset: int = MIN_OPSET,
                check_clips: Optional[Sequence] = None, tol: float = PARITY_TOL, seed: int = 0) -> float:
    """Export ``model`` to ``path`` (written atomically) and verify it.

    The graph is validated with ``onnx.checker``; onnxruntime's outputs are compared with PyTorch's
    on two random batches of other sizes than the traced one (batch, frames, persons all changed),
    plus ``check_clips`` (e.g. real clips, already in the model's input stream).

    Args:
        model: a backbone, classifier, student, aligned teacher or any ``(N, C, T, V, M) -> logits``
            module.
        input_shape: the traced shape ``(N, C, T, V, M)``.
        tol: largest accepted relative difference (see :func:`parity`).

    Returns:
        the measured parity (largest relative difference).

    Raises:
        MissingDependencyError: onnx / onnxruntime are not installed.
        ValueError: the checker fails or the parity is worse than ``tol``; nothing is written.
    """
    onnx = require("onnx")
    require("onnxruntime")
    n, c, t, v, m = input_shape
    g = torch.Generator().manual_seed(seed)
    data = onnx_bytes(model, torch.randn(*input_shape, generator=g), opset)
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except onnx.checker.ValidationError as e:
        raise ValueError(f"the exported graph fails onnx.checker: {e}") from None
    clips = [torch.randn(n + 1, c, max(t - 3, 1), v, m + 1, generator=g),
             torch.randn(1, c, t + 7, v, max(m - 1, 1), generator=g)] + list(check_clips or [])
    diff = parity(model, OnnxRunner(data), clips)
    if diff > tol:
        raise ValueError(f"onnxruntime outputs differ from PyTorch's by {diff:.2e} (> {tol:.0e}); not written")
    atomic_write_bytes(Path(path), data)
    return diff


def quantize_int8(src: PathLike, dst: PathLike, *, calibration: Optional[Sequence[np.ndarray]] = None) -> Path:
    """Write an int8 copy of the fp32 ONNX file ``src`` to ``dst`` (atomically).

    Without ``calibration`` the weights are quantised and activations quantised on the fly
    (``quantize_dynamic``, per-channel int8 weights); with calibration clips the activations get
    static int8 scales too (``quantize_static``, QDQ format, min-max over the clips), which is
    what makes the convolutions themselves run in int8.

    Shapes:
        - each calibration clip batch: :math:`(N, C, T, V, M)` float32 in the model's stream
    """
    q = require("onnxruntime.quantization")
    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        # Shape inference + graph optimisation first, as onnxruntime's quantisation guide advises.
        q.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        # onnxruntime logs a root-logger warning for every 1-D weight it keeps per-tensor: not news.
        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.ERROR))
        try:
            if calibration is None:
                q.quantize_dynamic(str(pre), str(out), weight_type=q.QuantType.QInt8, per_channel=True)
            else:
                q.quantize_static(str(pre), str(out), _Calibration(calibration), quant_format=q.QuantFormat.QDQ,
                                  per_channel=True, activation_type=q.QuantType.QInt8,
                                  weight_type=q.QuantType.QInt8)
        finally:
            root.setLevel(level)
        atomic_write_bytes(dst, out.read_bytes())
    return dst


class _Calibration:
    """onnxruntime ``CalibrationDataReader`` over a list of clip batches."""

    def __init__(self, clips: Sequence[np.ndarray]):
        self._it = iter([{"x": np.asarray(c, dtype=np.float32)} for c in clips])

    def get_next(self):
        return next(self._it, None)
