"""Publishable models and their on-disk format: ``config.json`` + ``model.safetensors`` + ``README.md``.

* :class:`SkeletonClassifier`: backbone + linear head (pooled features -> logits); the kinds
  ``classifier`` and ``student``.
* :class:`AlignedTeacher`: two backbones (:math:`\\theta`, :math:`\\phi`) + the bi-directional
  :class:`~asma.models.heads.FeatureAlignment` (Eqs. 10-12); the kind ``teacher``.
* a bare :class:`~asma.models.Backbone` is the kind ``encoder``.

:func:`save_pretrained` / :func:`load_pretrained` write and read a model folder. Weights are
only ever read from safetensors (pickled ``*.bin``/``*.pt`` files are refused), and a checkpoint
that does not fit the model (layout, channels, backbone, classes) fails with an error naming both
sides.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

import asma
from asma.io import atomic_write_text, load_tensors, save_tensors
from asma.models.heads import FeatureAlignment, LinearClassifier
from asma.models.registry import Backbone, create_backbone

from .config import MODEL_FILES, ConfigError, PretrainedConfig  # noqa: F401 (MODEL_FILES re-exported)

PathLike = Union[str, Path]

#: Weight files that hold pickles and are never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar")
#: Tags every model card gets (domain words; the Hub task is ``pipeline_tag``).
CARD_TAGS = ("asma", "skeleton-based-action-recognition", "action-recognition", "self-supervised-learning",
             "graph-neural-network", "pytorch", "safetensors")
PIPELINE_TAG = "video-classification"


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


def config_for_model(model: nn.Module, kind: Optional[str] = None, **fields: Any) -> PretrainedConfig:
    """A :class:`PretrainedConfig` describing ``model``: ``kind`` (inferred unless it is a
    student), ``backbone``, ``layout``, ``in_channels`` and ``num_classes`` / ``head`` are taken
    from the model; ``fields`` give the rest (``class_names``, ``stream``, ``metrics``, ...)."""
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
    return PretrainedConfig(**base)


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
        have = config_for_model(model, kind=config.kind, class_names=[])
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


# ---------------------------------------------------------------------- model card
_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}
{% if description %}
{{ description }}
{% endif %}
A **{{ kind }}** for skeleton-based action recognition, published with the `asma` library
(ASMa: asymmetric spatio-temporal masking).
Weights are in `model.safetensors`; `config.json` records how to rebuild the model and how to
prepare its input.

## Usage

```bash
asma zoo pull {{ name }}
```

```python
from asma.zoo import load_from_hub
model, config = load_from_hub("{{ hub_name }}")
logits = model(config.preprocess(joints))   # joints: (N, {{ in_channels }}, T, {{ num_joints }}, M)
```

## Model

| field | value |
|---|---|
{% for k, v in rows %}| {{ k }} | {{ v }} |
{% endfor %}
{% if metrics %}
## Results

| dataset / protocol | top-1 % | top-5 % |
|---|---|---|
{% for k, v in metrics %}| {{ k }} | {{ v.get("top1", "-") }} | {{ v.get("top5", "-") }} |
{% endfor %}{% endif %}
{% if preprocessing %}
## Preprocessing

Clips were normalised before training with (`config.json`, field `preprocessing`):

```json
{{ preprocessing }}
```
{% endif %}{% if base_model %}
## Distillation

Distilled from the teacher `{{ base_model }}` (`asma zoo pull {{ base_model }}`).
{% endif %}{% if class_names %}
## Classes

{{ class_names }}
{% endif %}{% if paper %}
## Citation

{{ paper }}
{% endif %}
## Licence

`{{ license }}`. Skeleton datasets such as NTU RGB+D are distributed under their own
(research-only) terms; check them before using these weights.
"""


def model_card(config: PretrainedConfig, repo_id: Optional[str] = None):
    """The ``README.md`` model card (a :class:`huggingface_hub.ModelCard`): metadata
    ``library_name: asma``, ``tags`` (incl. ``skeleton-based-action-recognition``), ``license``,
    ``datasets``, ``metrics``, ``pipeline_tag: video-classification``, ``base_model`` for a
    student, ``model-index`` results from ``config.metrics``; body with usage and the config."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = repo_id or "<org>/<name>"
    title = repo_id.split("/")[-1] if repo_id else f"asma {config.kind}"
    eval_results = []
    for key, vals in sorted(config.metrics.items()):
        ds = key.split("/")[0]
        for m, label in (("top1", "top-1 accuracy"), ("top5", "top-5 accuracy")):
            if m in vals:
                eval_results.append(EvalResult(task_type=PIPELINE_TAG, dataset_type=ds, dataset_name=key,
                                               metric_type="accuracy", metric_name=label,
                                               metric_value=float(vals[m])))
    tags = list(CARD_TAGS) + [f"asma-{config.kind}", f"layout-{config.layout_name}", f"stream-{config.stream}"]
    data = ModelCardData(
        library_name="asma", license=config.license, tags=tags, pipeline_tag=PIPELINE_TAG,
        datasets=[config.dataset] if config.dataset else None,
        metrics=["accuracy"] if config.metrics else None,
        base_model=config.base_model, model_name=title if eval_results else None,
        eval_results=eval_results or None)
    rows = [("kind", config.kind), ("backbone", config.backbone["name"]),
            ("backbone options", f"`{json.dumps(config.backbone_kwargs(), sort_keys=True)}`"),
            ("layout", f"{config.layout_name} ({config.num_joints} joints)"),
            ("input channels", f"{config.in_channels} ({config.num_coords} coordinates)"),
            ("stream", config.stream), ("frames", config.num_frames or "any"),
            ("classes", config.num_classes or "-"), ("dataset", config.dataset or "-"),
            ("asma version", config.asma_version)]
    if config.base_model:
        rows.append(("teacher (base model)", config.base_model))
    return ModelCard.from_template(
        data, template_str=_CARD_TEMPLATE, title=title, kind=config.kind, name=name,
        hub_name=f"hf-hub:{name}", description=config.description, in_channels=config.in_channels,
        num_joints=config.num_joints, rows=rows, metrics=sorted(config.metrics.items()),
        preprocessing=json.dumps(config.preprocessing, indent=2, sort_keys=True) if config.preprocessing else "",
        base_model=config.base_model, class_names=", ".join(config.class_names), paper=config.paper,
        license=config.license)


# ---------------------------------------------------------------------- save / load
def save_pretrained(model: nn.Module, config: PretrainedConfig, directory: PathLike, *,
                    repo_id: Optional[str] = None, card: bool = True) -> Path:
    """Write ``directory/model.safetensors``, ``README.md`` (model card) and ``config.json``.

    Every file is written atomically (temporary file + rename); an existing ``config.json`` is
    removed first and the new one written last, so a folder with a ``config.json`` always has
    complete, matching weights. Nothing is pickled.

    Args:
        model: a :class:`~asma.models.Backbone`, :class:`SkeletonClassifier` or :class:`AlignedTeacher`.
        config: its :class:`PretrainedConfig` (see :func:`config_for_model`); it must describe the model.
        directory: target folder (created).
        repo_id: the intended Hub repository, used in the card's usage section.
        card: also write ``README.md``.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``config`` does not describe ``model``.
    """
    config.validate()
    check_compatible(model, config, source="the config")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An older config.json goes first: a crash mid-way leaves a folder without config.json
    # (clearly incomplete), never an old config next to new weights.
    (directory / "config.json").unlink(missing_ok=True)
    meta = {"format": "pt", "library": "asma", "asma_version": asma.__version__, "kind": config.kind}
    save_tensors(directory / "model.safetensors", model.state_dict(), metadata=meta)
    if card:
        atomic_write_text(directory / "README.md", str(model_card(config, repo_id)))
    config.to_json(directory / "config.json")
    return directory


def _pickles(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def load_state(directory: PathLike) -> Dict[str, Tensor]:
    """The tensors of ``directory/model.safetensors`` (or of the shards listed in
    ``model.safetensors.index.json``). Pickled weights are refused.

    Raises:
        ValueError: only pickled weight files (``*.bin``, ``*.pt``, ...) are present.
        FileNotFoundError: no weights.
    """
    directory = Path(directory)
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        return load_tensors(single)
    if index.is_file():
        from asma.io import read_json
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        state: Dict[str, Tensor] = {}
        for s in shards:
            if "/" in s or "\\" in s or not s.endswith(".safetensors"):
                raise ValueError(f"{index}: refusing shard {s!r} (only sibling .safetensors files)")
            state.update(load_tensors(directory / s))
        return state
    pickles = _pickles(directory)
    if pickles:
        raise ValueError(f"{directory} has only pickled weights ({', '.join(pickles)}); asma refuses to load "
                         "pickles (they can run arbitrary code): publish model.safetensors instead")
    raise FileNotFoundError(f"missing weights file: {single}")


def _load_checked(model: nn.Module, state: Mapping[str, Tensor], source: str, config: PretrainedConfig) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                parts.append(f"{label}: {', '.join(items[:4])}" + (f" (+{len(items) - 4} more)" if len(items) > 4 else ""))
        raise ValueError(f"{source}: weights do not fit the model built for {describe(config)}; " + "; ".join(parts))
    model.load_state_dict(state)


def load_pretrained(directory: PathLike, model: Optional[nn.Module] = None) -> Tuple[nn.Module, PretrainedConfig]:
    """Load a model folder written by :func:`save_pretrained` (or pulled from the Hub).

    Args:
        directory: folder with ``config.json`` and ``model.safetensors``.
        model: load into this existing model instead of building one; it must match the
            checkpoint (layout, in_channels, backbone options, classes), else a ``ValueError``
            names both sides.

    Returns:
        ``(model, config)``, the model in eval mode.

    Raises:
        FileNotFoundError: no such folder / no ``config.json`` / no weights.
        ConfigError: invalid ``config.json`` (names the file and field).
        ValueError: pickled weights only, or weights/model mismatch.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no model folder at {directory}")
    config = PretrainedConfig.from_json(directory / "config.json")
    source = f"checkpoint {directory}"
    if model is None:
        model = build_model(config)
    else:
        check_compatible(model, config, source=source)
    _load_checked(model, load_state(directory), source, config)
    model.eval()
    return model, config
