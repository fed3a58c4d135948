"""The config <-> model mapping of the publishable kinds (the modules are asma's own):

* :class:`~asma.models.EncoderClassifier` with a linear head: the kinds ``classifier`` and
  ``student``;
* :class:`~asma.models.AlignedClassifier` (two encoders + the bi-directional
  :class:`~asma.models.FeatureAlignment`, Eqs. 10-12): the kind ``teacher``;
* a bare :class:`~asma.models.Backbone`: the kind ``encoder``.

:func:`config_for_model` describes a live model, :func:`build_model` builds the architecture a
config describes, :func:`check_compatible` compares the two (an error names both sides).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from asma.models.alignment import AlignedClassifier, FeatureAlignment
from asma.models.classifiers import EncoderClassifier
from asma.models.heads import LinearClassifier
from asma.models.registry import Backbone, create_backbone

from .config import PretrainedConfig
from .schema import ConfigError


# ---------------------------------------------------------------------- config <-> model
def _backbones(model: nn.Module) -> List[Backbone]:
    if isinstance(model, Backbone):
        return [model]
    if isinstance(model, EncoderClassifier) and isinstance(model.head, LinearClassifier):
        return [model.encoder]
    if isinstance(model, AlignedClassifier):
        return [model.enc_theta, model.enc_phi]
    raise TypeError(f"cannot publish a {type(model).__name__}: use a Backbone, an EncoderClassifier with a "
                    "LinearClassifier head or an AlignedClassifier")


def _model_kinds(model: nn.Module) -> Tuple[str, ...]:
    if isinstance(model, Backbone):
        return ("encoder",)
    if isinstance(model, EncoderClassifier):
        return ("classifier", "student")
    return ("teacher",)


def _backbone_config(b: Backbone) -> Dict[str, Any]:
    cfg = json.loads(json.dumps(dict(b.config)))
    cfg.pop("in_channels", None)
    if "name" not in cfg:
        raise ValueError(f"{type(b).__name__} has no config['name']; build backbones with asma.models.create_backbone")
    return cfg


def model_costs(model: nn.Module, config: PretrainedConfig) -> Dict[str, Any]:
    """``{"num_params", "gflops"}`` of ``model`` (all parameters; one forward pass on a zero clip
    of ``config.input_shape()``, :func:`asma.models.count_flops`).

    Shapes:
        - the clip: :math:`(1, C, T, V, M)` (``T``/``M`` default to 50/2 when not fixed)
    """
    from asma.models.registry import count_flops
    x = torch.zeros(config.input_shape(), device=next(model.parameters()).device)
    return {"num_params": sum(p.numel() for p in model.parameters()),
            "gflops": round(count_flops(model, x) / 1e9, 4)}


def config_for_model(model: nn.Module, kind: Optional[str] = None, costs: bool = True,
                     **fields: Any) -> PretrainedConfig:
    """A :class:`PretrainedConfig` describing ``model``: ``kind`` (inferred unless it is a
    student), ``backbone``, ``layout``, ``in_channels`` and ``num_classes`` / ``head`` are taken
    from the model, ``num_params`` / ``gflops`` measured on it (``costs=True``, see
    :func:`model_costs`); ``fields`` give the rest (``class_names``, ``stream``, ``metrics``, ...)."""
    kinds = _model_kinds(model)
    kind = kind or kinds[0]
    if kind not in kinds:
        raise ValueError(f"a {type(model).__name__} is published as kind {' or '.join(kinds)}, not {kind!r}")
    b = _backbones(model)[0]
    base: Dict[str, Any] = {"kind": kind, "backbone": _backbone_config(b), "layout": b.layout.to_dict(),
                            "in_channels": b.in_channels}
    if kind != "encoder":
        base["num_classes"] = model.num_classes
    if kind == "teacher":
        attn = model.align.theta_to_phi
        base["head"] = {"type": "alignment", "num_heads": attn.num_heads, "dropout": float(attn.dropout)}
    base.update(fields)
    config = PretrainedConfig(**base)
    if costs:
        for k, v in model_costs(model, config).items():
            setattr(config, k, v)
    return config


def build_model(config: PretrainedConfig) -> nn.Module:
    """A freshly initialised model of the architecture ``config`` describes (no weights loaded).

    Raises:
        ConfigError: the backbone is not registered or its options are invalid.
    """
    skel = config.skeleton()

    def backbone() -> Backbone:
        try:
            return create_backbone(config.backbone["name"], skel, config.in_channels, **config.backbone_kwargs())
        except ValueError as e:
            raise ConfigError(f"cannot build the checkpoint's backbone: {e} (a backbone from a plugin must be "
                              "registered first: asma.models.import_plugin / --plugin)") from None

    if config.kind == "encoder":
        return backbone()
    if config.kind in ("classifier", "student"):
        return EncoderClassifier.linear(backbone(), config.num_classes)
    theta, phi = backbone(), backbone()
    align = FeatureAlignment(theta.out_dim, config.num_classes, num_heads=int(config.head["num_heads"]),
                             dropout=float(config.head.get("dropout", 0.0)))
    return AlignedClassifier(theta, phi, align)


def check_compatible(model: nn.Module, config: PretrainedConfig, source: str = "the checkpoint") -> None:
    """Raise ``ValueError`` naming both sides when ``model`` is not the architecture ``config``
    describes (kind, layout, in_channels, backbone options, number of classes)."""
    kinds = _model_kinds(model)
    if config.kind not in kinds:
        raise ValueError(f"{source} holds a {config.kind} but the model is a {type(model).__name__} ({'/'.join(kinds)})")
    b = _backbones(model)[0]
    try:
        have = config_for_model(model, kind=config.kind, costs=False, class_names=[])
    except ConfigError as e:
        raise ValueError(f"the model cannot be described by a config: {e}") from None
    problems = []
    if config.num_joints != b.layout.num_joints or not b.layout.same_as(config.skeleton()):
        problems.append("layout")
    if config.in_channels != b.in_channels:
        problems.append("in_channels")
    if have.backbone != config.backbone:
        problems.append("backbone")
    if config.kind != "encoder" and have.num_classes != config.num_classes:
        problems.append("num_classes")
    if config.kind == "teacher" and have.head.get("num_heads") != config.head.get("num_heads"):
        problems.append("head")
    if problems:
        raise ValueError(f"{source} does not fit the model (mismatch in {', '.join(problems)}): {source} was built "
                         f"for {config.describe()}; the model has {have.describe()}")
