"""The publishable model kinds and the config <-> model mapping.

* :class:`SkeletonClassifier`: backbone + linear head (pooled features -> logits); the kinds
  ``classifier`` and ``student``.
* :class:`AlignedTeacher`: two backbones (:math:`\\theta`, :math:`\\phi`) + the bi-directional
  :class:`~asma.models.heads.FeatureAlignment` (Eqs. 10-12); the kind ``teacher``.
* a bare :class:`~asma.models.Backbone` is the kind ``encoder``.

:func:`config_for_model` describes a live model, :func:`build_model` builds the architecture a
config describes, :func:`check_compatible` compares the two (an error names both sides).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from asma.models.heads import FeatureAlignment, LinearClassifier
from asma.models.registry import Backbone, create_backbone

from .config import ConfigError, PretrainedConfig


class FeatureStandardizer(nn.Module):
    r"""Per-dimension standardisation :math:`(h - \mu) / \sigma` with stored statistics
    (the frozen-feature standardisation of :func:`asma.train.probe.standardize_tokens`).
    Identity until :meth:`fit` or :meth:`set_stats` is called; the statistics are buffers,
    so they travel with the weights.

    Shapes:
        - **input**: :math:`(..., D)` -> same
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Set :math:`\\mu` and :math:`\\sigma` (both :math:`(D,)`)."""
        self.mean.copy_(mean.reshape(-1))
        self.std.copy_(std.reshape(-1))

    @torch.no_grad()
    def fit(self, features: Tensor, eps: float = 1e-5) -> None:
        """Statistics from training features :math:`(..., D)` (std without Bessel correction, + eps)."""
        flat = features.reshape(-1, features.shape[-1])
        self.set_stats(flat.mean(0), flat.std(0, unbiased=False) + eps)

    def forward(self, h: Tensor) -> Tensor:
        """:math:`(h - \\mu) / \\sigma`, shape-preserving :math:`(..., D)`."""
        return (h - self.mean) / self.std


class SkeletonClassifier(nn.Module):
    r"""A backbone and a linear head: :math:`\hat{y} = W\,\mathrm{std}(f(x)) + b`.

    Args:
        backbone: any registered :class:`~asma.models.Backbone` (teacher encoder or student).
        num_classes: :math:`K`.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)` in the checkpoint's stream
        - **output**: logits :math:`(N, K)`
    """

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.norm = FeatureStandardizer(backbone.out_dim)
        self.head = LinearClassifier(backbone.out_dim, num_classes)
        self.num_classes = int(num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Standardised pooled features, :math:`(N, C, T, V, M) \\to (N, D)`."""
        return self.norm(self.backbone(x)[0])

    def forward(self, x: Tensor) -> Tensor:
        """Logits, :math:`(N, C, T, V, M) \\to (N, K)`."""
        return self.head(self.features(x))


class AlignedTeacher(nn.Module):
    r"""The ASMa teacher: two encoders and the bi-directional feature alignment (Eqs. 10-12)
    over their (standardised) per-frame tokens.

    Args:
        theta, phi: the two pretrained encoders (same layout, channels and width :math:`D`).
        num_classes: :math:`K`.
        num_heads: attention heads (paper: 4); ``dropout``: attention dropout.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: logits :math:`(N, K)`
    """

    def __init__(self, theta: Backbone, phi: Backbone, num_classes: int, num_heads: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        if theta.out_dim != phi.out_dim:
            raise ValueError(f"theta and phi widths differ: {theta.out_dim} vs {phi.out_dim}")
        if theta.in_channels != phi.in_channels or not theta.layout.same_as(phi.layout):
            raise ValueError("theta and phi must share the layout and in_channels")
        self.theta = theta
        self.phi = phi
        self.norm_theta = FeatureStandardizer(theta.out_dim)
        self.norm_phi = FeatureStandardizer(phi.out_dim)
        self.align = FeatureAlignment(theta.out_dim, num_classes, num_heads=num_heads, dropout=dropout)
        self.num_classes = int(num_classes)

    def tokens(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Standardised per-frame tokens of both encoders, each :math:`(N, T', D)`."""
        return self.norm_theta(self.theta(x)[1]), self.norm_phi(self.phi(x)[1])

    def features(self, x: Tensor) -> Tensor:
        """Pooled aligned feature, :math:`(N, C, T, V, M) \\to (N, D)`."""
        return self.align.features(*self.tokens(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits, :math:`(N, C, T, V, M) \\to (N, K)`."""
        return self.align(*self.tokens(x))


# ---------------------------------------------------------------------- config <-> model
def _backbones(model: nn.Module) -> List[Backbone]:
    if isinstance(model, Backbone):
        return [model]
    if isinstance(model, SkeletonClassifier):
        return [model.backbone]
    if isinstance(model, AlignedTeacher):
        return [model.theta, model.phi]
    raise TypeError(f"cannot publish a {type(model).__name__}: use a Backbone, SkeletonClassifier or AlignedTeacher")


def _model_kinds(model: nn.Module) -> Tuple[str, ...]:
    if isinstance(model, Backbone):
        return ("encoder",)
    if isinstance(model, SkeletonClassifier):
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
    x = torch.zeros(config.input_shape())
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
        return SkeletonClassifier(backbone(), config.num_classes)
    return AlignedTeacher(backbone(), backbone(), config.num_classes,
                          num_heads=int(config.head["num_heads"]), dropout=float(config.head.get("dropout", 0.0)))


def describe(config: PretrainedConfig) -> str:
    """Same as :meth:`PretrainedConfig.describe`."""
    return config.describe()


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
                         f"for {describe(config)}; the model has {describe(have)}")
