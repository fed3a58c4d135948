"""Classifying clips with a model and its own preprocessing: :func:`predict`, :func:`load_model`.

A model's :class:`~asma.pretrained.config.PretrainedConfig` says how its training clips were
normalised (``preprocessing``) and which stream it reads; :func:`model_input` re-applies both to a
raw clip, so a file straight from a sensor or pose estimator is classified as the training data
was. The model may be a PyTorch module or an :class:`~asma.deploy.runtime.OnnxRunner`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .inputs import fit_clip, read_clips


@dataclass
class Prediction:
    """Top-k classes of one clip.

    Attributes:
        source: the input (file name, ``[i]`` for a clip of a batch, or a frame number when streaming).
        top: ``[(class name, probability), ...]``, most likely first.
        probs: :math:`(K,)` class probabilities (softmax of the logits).
    """

    source: str
    top: List[Tuple[str, float]]
    probs: np.ndarray = field(repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready ``{"input", "top": [{"class", "prob"}]}``."""
        return {"input": self.source, "top": [{"class": c, "prob": round(p, 6)} for c, p in self.top]}


def load_model(name: str, **overrides: Any):
    """``(model, config)`` for ``name``, anything :func:`asma.create_model` accepts.

    A registered backbone name gives a freshly initialised network (``overrides`` go to its
    constructor) described by a ``kind="encoder"`` config; everything else is loaded with its
    weights and ``pretrained_cfg``.
    """
    import asma
    from asma.models.registry import list_backbones
    if name in list_backbones():
        from asma.pretrained.architectures import config_for_model
        model = asma.create_model(name, **overrides).eval()
        return model, config_for_model(model)
    model = asma.create_model(name, pretrained=True, **overrides)
    return model, model.pretrained_cfg


def require_classifier(config) -> List[str]:
    """The class names of a classifier / student / teacher config (``"0"``, ``"1"``, ... when
    unnamed); an encoder is refused."""
    if config.kind == "encoder" or not config.num_classes:
        raise ValueError("this model is an encoder (features, no classifier head); predict needs a classifier, "
                         "student or teacher (asma zoo export RUN classifier-<e> | student | teacher)")
    return list(config.class_names) or [str(i) for i in range(config.num_classes)]


def logits_fn(model) -> Callable[[np.ndarray], np.ndarray]:
    """``f(x) -> logits`` on numpy for a PyTorch module (eval, no grad) or an ONNX runner (the
    first output: a bare backbone gives its pooled features, as the runner does).

    Shapes:
        - **x**: :math:`(N, C, T, V, M)` -> :math:`(N, K)`
    """
    import torch
    if not isinstance(model, torch.nn.Module):
        return model

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        return (out[0] if isinstance(out, tuple) else out).numpy()
    return run


def model_input(config, raw: np.ndarray, preprocess: bool = True) -> np.ndarray:
    """A raw clip as the model's input: the config's clip normalisation (unless ``preprocess`` is
    off: the clip is already normalised) and stream conversion.

    Shapes:
        - **raw**: :math:`(C, F, V, M)` -> :math:`(1, C, T, V, M)` float32

    Raises:
        ValueError: ``preprocess`` is on but the config records no usable preprocessing.
    """
    t = config.transforms()
    x = t.prepare_clip(raw) if preprocess else t(raw)
    return x.numpy().astype(np.float32, copy=False)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64. Shapes: :math:`(N, K) \\to (N, K)`."""
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k(probs: np.ndarray, names: Sequence[str], k: int, source: str) -> Prediction:
    """The :class:`Prediction` of one probability vector :math:`(K,)`."""
    order = np.argsort(-probs, kind="stable")[:max(1, k)]
    return Prediction(source, [(names[i], float(probs[i])) for i in order], probs)


def predict(model, config, inputs: Sequence[str], *, topk: int = 5, fmt: Optional[str] = None,
            preprocess: bool = True) -> List[Prediction]:
    """Classify every clip of ``inputs`` (files read by :func:`~asma.deploy.inputs.read_clips`).

    Args:
        model: PyTorch module or :class:`~asma.deploy.runtime.OnnxRunner`.
        config: its :class:`~asma.pretrained.config.PretrainedConfig`.
        topk: classes per clip.
        fmt: force the input format (see :data:`~asma.deploy.inputs.FORMATS`).
        preprocess: apply the config's clip normalisation (off: inputs are prepared clips).

    Raises:
        ValueError: an encoder, or a clip whose layout / channels do not fit (both named).
        DataFormatError: a malformed input file.
    """
    names = require_classifier(config)
    run = logits_fn(model)
    out = []
    for path in inputs:
        for clip in read_clips(path, fmt=fmt, num_persons=config.num_persons or 2,
                               with_z=(config.num_coords or 2) >= 3):
            x = model_input(config, fit_clip(clip, config), preprocess)
            out.append(top_k(softmax(run(x))[0], names, topk, clip.source))
    return out
