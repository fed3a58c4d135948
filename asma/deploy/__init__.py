"""Deployment: benchmark, export (ONNX, int8), predict from skeleton files, streaming recognition.

::

    import asma
    from asma.deploy import Recognizer, export_onnx, predict

    model = asma.create_model("runs/utk", pretrained=True)        # a run's student, a zoo folder, ...
    predict(model, model.pretrained_cfg, ["clip.skeleton"])       # top-5 classes per input
    rec = Recognizer(model, window=50, stride=5)                 # rec.push(joints) per frame

See docs/deploy.md. Names are imported on first use, so ``import asma.deploy`` stays light (the
onnxruntime path, :class:`OnnxRunner`, never imports torch).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "measure": ["BenchResult", "bench", "ratios", "latency_ms", "stream_fps"],
    "onnx": ["export_onnx", "quantize_int8", "parity"],
    "runtime": ["OnnxRunner", "MissingDependencyError"],
    "inputs": ["Clip", "read_clips", "fit_clip", "parse_frame"],
    "classify": ["Prediction", "predict", "load_model", "model_input"],
    "stream": ["Recognizer", "stream_predictions"],
    "ensemble": ["StreamEnsemble", "save_ensemble", "load_ensemble"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    # PEP 562: a submodule (and torch with it) is imported when one of its names is first used.
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
