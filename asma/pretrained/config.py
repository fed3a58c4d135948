"""``PretrainedConfig``: everything needed to rebuild and use a published model, with no guesswork.

A published model is a folder (or Hub repository) with ``config.json`` (this dataclass),
``model.safetensors`` and a ``README.md`` model card. Like torchvision's ``Weights`` objects
the config carries its own preprocessing: :meth:`PretrainedConfig.transforms` returns the
callable that turns prepared joint coordinates into the model's input stream.

``config.json`` fields (all JSON):

========================  ==========================================================================
``format_version``        schema version of this file (currently 2)
``kind``                  ``"encoder"`` (a bare backbone), ``"classifier"`` (backbone + linear head),
                          ``"teacher"`` (two backbones + feature alignment) or ``"student"``
                          (distilled compact backbone + linear head)
``backbone``              ``{"name": <registered backbone>, **kwargs}`` for
                          :func:`asma.models.create_backbone` (``in_channels`` is stored separately)
``layout``                :meth:`asma.graph.Skeleton.to_dict` of the skeleton the model was built on
``in_channels``           input channels :math:`C` of the model
``num_coords``            how many leading channels are coordinates (x, y[, z]); the rest (confidence)
                          is carried along by the stream conversion
``stream``                ``joint``, ``bone`` or ``motion`` (input stream the model was trained on)
``num_frames``            :math:`T` the clips were resampled to (``None``: not fixed)
``num_persons``           :math:`M` person slots of the training clips (``None``: unknown)
``preprocessing``         how raw clips were normalised before training, free-form; when its keys are
                          those of :class:`asma.data.preprocess.PreprocessConfig` (``length``,
                          ``frames``, ``max_frames``, ``center``, ``align``, ``center_joint``,
                          ``shoulders``, ``coord_channels``, as written to every prepared store's
                          ``info.json``) :meth:`SkeletonTransforms.prepare_clip` re-applies it
``class_names``           the :math:`K` class names, in logit order (classifier/teacher/student)
``num_classes``           :math:`K` (derived from ``class_names`` when omitted)
``head``                  head options: ``{"type": "linear"}`` or
                          ``{"type": "alignment", "num_heads": 4, "dropout": 0.0}`` (teacher)
``license``               licence identifier of the weights (Hub identifiers, e.g. ``apache-2.0``,
                          ``cc-by-nc-4.0``, ``other``, ``unknown``)
``metrics``               ``{"<dataset>/<protocol>": {"top1": %, "top5": %}}``
``dataset``               training dataset name (e.g. ``ntu60-xsub``)
``paper``                 paper reference (URL, arXiv id or citation)
``asma_version``          asma version that wrote the file
``base_model``            for a distilled student: the teacher's ``org/name`` repository
``training``              free-form record of how it was trained (masking strategies, epochs, ...)
``description``           one-paragraph description for the model card
``num_params``            parameters of the whole model (frozen ones included)
``gflops``                GFLOPs of one forward pass on one clip of :meth:`PretrainedConfig.input_shape`
                          (:func:`asma.models.count_flops`: 2 per multiply-accumulate)
``source``                where the weights come from, free-form (a run directory and model, an imported
                          checkpoint's repository/commit/path/sha256, ...)
``weights_sha256``        sha256 of every weight file of the folder, ``{file name: hex}``; written by
                          ``save_pretrained``, verified on every load
========================  ==========================================================================

The schema constants, :class:`~asma.pretrained.schema.ConfigError` and the field checks live in
:mod:`asma.pretrained.schema`, :class:`~asma.pretrained.transforms.SkeletonTransforms` in :mod:`asma.pretrained.transforms`.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import asma

from .schema import FORMAT_VERSION, ConfigError, _is_int, _jsonable, validate_config
from .transforms import SkeletonTransforms


@dataclass
class PretrainedConfig:
    """Metadata of a published model (the ``config.json`` next to ``model.safetensors``).

    See the module docstring for the meaning of every field. Build one by hand, with
    :func:`asma.pretrained.architectures.config_for_model` from a live model, or read one with
    :meth:`from_json` (a zoo folder, or a training run's ``encoders/<name>/``, which is one).

    Example::

        cfg = PretrainedConfig(kind="classifier", backbone={"name": "stgcn"},
                               layout=get_layout("ntu25").to_dict(), in_channels=3,
                               class_names=[...], dataset="ntu60-xsub",
                               metrics={"ntu60-xsub/linear": {"top1": 80.1, "top5": 95.9}})
        x = cfg.preprocess(joints)          # (N, C, T, V, M) joints -> the model's stream
    """

    kind: str
    backbone: Dict[str, Any]
    layout: Dict[str, Any]
    in_channels: int
    num_coords: Optional[int] = None
    stream: str = "joint"
    num_frames: Optional[int] = None
    num_persons: Optional[int] = None
    preprocessing: Dict[str, Any] = field(default_factory=dict)
    class_names: List[str] = field(default_factory=list)
    num_classes: Optional[int] = None
    head: Dict[str, Any] = field(default_factory=dict)
    license: str = "unknown"
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    dataset: Optional[str] = None
    paper: Optional[str] = None
    asma_version: str = asma.__version__
    base_model: Optional[str] = None
    training: Dict[str, Any] = field(default_factory=dict)
    description: str = ""
    num_params: Optional[int] = None
    gflops: Optional[float] = None
    source: Dict[str, Any] = field(default_factory=dict)
    weights_sha256: Dict[str, str] = field(default_factory=dict, compare=False)
    format_version: int = FORMAT_VERSION
    #: Where the model came from (``{"repo_id", "revision", "commit", "path"}``), set by
    #: :func:`asma.zoo.hub.load_from_hub`; never written to ``config.json``.
    origin: Optional[Dict[str, Any]] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, source: Optional[str] = None) -> "PretrainedConfig":
        """Check every field and normalise it (JSON types, derived ``num_classes``, default
        ``head``, ``num_coords``); returns ``self``.

        Raises:
            ConfigError: ``"<source>: field '<name>': <problem>"``.
        """
        return validate_config(self, source)

    # ------------------------------------------------------------------ helpers
    def skeleton(self):
        """The :class:`~asma.graph.Skeleton` the model was built on (rebuilt from ``layout``)."""
        from asma.graph import skeleton_from_dict
        return skeleton_from_dict(self.layout)

    @property
    def num_joints(self) -> int:
        """Number of joints :math:`V` of the layout."""
        return int(self.layout["num_joints"])

    @property
    def layout_name(self) -> str:
        """Name of the layout (``"custom"`` when unnamed)."""
        return str(self.layout.get("name", "custom"))

    def describe(self) -> str:
        """One line naming what the checkpoint expects, e.g. ``"layout 'ntu25' (25 joints),
        in_channels=3, backbone stgcn {...}, 60 classes"``."""
        kw = self.backbone_kwargs()
        s = (f"layout {self.layout_name!r} ({self.num_joints} joints), in_channels={self.in_channels}, "
             f"backbone {self.backbone['name']}" + (f" {json.dumps(kw, sort_keys=True)}" if kw else ""))
        if self.num_classes is not None:
            s += f", {self.num_classes} classes"
        return s

    def backbone_kwargs(self) -> Dict[str, Any]:
        """The backbone's keyword options (``backbone`` without ``name``)."""
        return {k: v for k, v in self.backbone.items() if k != "name"}

    @property
    def input_spec(self) -> Dict[str, Optional[int]]:
        """The input a clip must have, ``{"C", "T", "V", "M"}`` (``T``/``M``: ``None`` when not fixed)."""
        return {"C": self.in_channels, "T": self.num_frames, "V": self.num_joints, "M": self.num_persons}

    def input_shape(self, batch: int = 1) -> tuple:
        """Expected input shape ``(N, C, T, V, M)`` (``T``/``M`` default to 50/2 when unknown)."""
        return (batch, self.in_channels, self.num_frames or 50, self.num_joints, self.num_persons or 2)

    def transforms(self) -> "SkeletonTransforms":
        """The preprocessing these weights expect, as a callable (like torchvision's
        ``weights.transforms()``): prepared joint clips -> the model's input stream."""
        return SkeletonTransforms(self)

    def preprocess(self, x):
        """Shortcut for ``self.transforms()(x)``.

        Shapes:
            - **x**: :math:`(N, C, T, V, M)` or :math:`(C, T, V, M)` joint coordinates, already
              normalised as in ``preprocessing`` -> :math:`(N, C, T, V, M)` in ``stream``
        """
        return self.transforms()(x)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict of every field except ``origin``."""
        self.validate()
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "origin"}

    def to_json_string(self) -> str:
        """Pretty, key-sorted JSON text (what :meth:`to_json` writes)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json(self, path: Union[str, Path]) -> Path:
        """Atomically write ``path`` (a file, or a directory receiving ``config.json``)."""
        from asma.io import atomic_write_text
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        atomic_write_text(path, self.to_json_string())
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "PretrainedConfig":
        """Build and validate a config from a dict.

        Raises:
            ConfigError: naming ``source`` and the bad or unknown field.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"origin"}
        unknown = sorted(set(data) - known)
        if unknown:
            ver = data.get("format_version", FORMAT_VERSION)
            hint = (f" (file format {ver} is newer than this asma's {FORMAT_VERSION}: upgrade asma)"
                    if _is_int(ver) and ver > FORMAT_VERSION else "")
            raise ConfigError(f"{source}: unknown field(s) {', '.join(map(repr, unknown))}{hint}")
        for req in ("kind", "backbone", "layout", "in_channels"):
            if req not in data:
                raise ConfigError(f"{source}: field {req!r}: missing (required)")
        obj = cls.__new__(cls)
        for f in fields(cls):
            if f.name in data:
                value = data[f.name]
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                value = f.default
            setattr(obj, f.name, value)
        obj.origin = None
        return obj.validate(source)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "PretrainedConfig":
        """Read and validate ``path`` (a ``config.json`` or a directory containing one).

        Raises:
            FileNotFoundError: no such file.
            ConfigError: invalid JSON or an invalid/unknown field, naming the file and the field.
        """
        from asma.io import read_json
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            data = read_json(path)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return cls.from_dict(data, source=str(path))
