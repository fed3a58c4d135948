"""``PretrainedConfig``: everything needed to rebuild and use a published model, with no guesswork.

A published model is a folder (or Hub repository) with ``config.json`` (this dataclass),
``model.safetensors`` and a ``README.md`` model card. Like torchvision's ``Weights`` objects
the config carries its own preprocessing: :meth:`PretrainedConfig.transforms` returns the
callable that turns prepared joint coordinates into the model's input stream.

``config.json`` fields (all JSON):

========================  ==========================================================================
``format_version``        schema version of this file (currently 1)
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
========================  ==========================================================================
"""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import asma

#: Model kinds a checkpoint can hold.
KINDS = ("encoder", "classifier", "teacher", "student")
#: Kinds that end in class logits (and therefore need ``class_names`` / ``num_classes``).
HEAD_KINDS = ("classifier", "teacher", "student")
#: Input streams (same as :data:`asma.data.streams.STREAMS`).
STREAMS = ("joint", "bone", "motion")
#: The files of a published model (what is uploaded and downloaded; nothing else is fetched).
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "README.md")
#: Version of the ``config.json`` schema written by this code.
FORMAT_VERSION = 1
_LAYOUT_KEYS = ("num_joints", "edges", "joint_names", "center", "flip_perm", "bone_pairs")
_PREPROCESS_KEYS = {"length", "frames", "max_frames", "center", "align", "center_joint", "shoulders",
                    "coord_channels"}


class ConfigError(ValueError):
    """A ``config.json`` (or a :class:`PretrainedConfig`) is invalid; the message names the file
    and the field."""


def _jsonable(obj: Any) -> Any:
    """Normalise through JSON (tuples -> lists) so configs compare equal after a round trip."""
    return json.loads(json.dumps(obj))


def _default_head(kind: str) -> Dict[str, Any]:
    if kind == "teacher":
        return {"type": "alignment", "num_heads": 4, "dropout": 0.0}
    if kind in ("classifier", "student"):
        return {"type": "linear"}
    return {}


@dataclass
class PretrainedConfig:
    """Metadata of a published model (the ``config.json`` next to ``model.safetensors``).

    See the module docstring for the meaning of every field. Build one by hand, with
    :func:`asma.zoo.model.config_for_model` from a live model, or from a training run's
    ``encoders/<name>/config.json`` with :meth:`from_json` (that format is converted to
    ``kind="encoder"``).

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
        src = source or "PretrainedConfig"

        def fail(name: str, problem: str) -> None:
            raise ConfigError(f"{src}: field {name!r}: {problem}")

        if self.kind not in KINDS:
            fail("kind", f"expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.backbone, dict) or not isinstance(self.backbone.get("name"), str) \
                or not self.backbone["name"]:
            fail("backbone", f"expected an object with a backbone 'name' and its options, got {self.backbone!r}")
        if not _is_int(self.in_channels) or self.in_channels < 1:
            fail("in_channels", f"expected a positive integer, got {self.in_channels!r}")
        backbone = _jsonable(self.backbone)
        if "in_channels" in backbone:
            if backbone["in_channels"] != self.in_channels:
                fail("backbone", f"backbone in_channels={backbone['in_channels']} disagrees with "
                                 f"in_channels={self.in_channels}")
            del backbone["in_channels"]
        self.backbone = backbone
        if not isinstance(self.layout, dict):
            fail("layout", f"expected the layout object written by Skeleton.to_dict(), got {type(self.layout).__name__}")
        missing = [k for k in _LAYOUT_KEYS if k not in self.layout]
        if missing:
            fail("layout", f"missing key(s) {', '.join(missing)} (write it with Skeleton.to_dict())")
        self.layout = _jsonable(self.layout)
        problem = _layout_problem(self.layout)
        if problem:
            fail("layout", f"not a valid skeleton: {problem}")
        if self.num_coords is None:
            self.num_coords = min(3, self.in_channels)
        if not _is_int(self.num_coords) or not 1 <= self.num_coords <= self.in_channels:
            fail("num_coords", f"expected an integer in 1..in_channels={self.in_channels}, got {self.num_coords!r}")
        if self.stream not in STREAMS:
            fail("stream", f"expected one of {', '.join(STREAMS)}, got {self.stream!r}")
        for name in ("num_frames", "num_persons"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                fail(name, f"expected a positive integer or null, got {v!r}")
        for name in ("preprocessing", "training", "head"):
            if not isinstance(getattr(self, name), dict):
                fail(name, f"expected an object, got {type(getattr(self, name)).__name__}")
            setattr(self, name, _jsonable(getattr(self, name)))
        if not isinstance(self.class_names, list) or not all(isinstance(c, str) for c in self.class_names):
            fail("class_names", "expected a list of strings")
        if len(set(self.class_names)) != len(self.class_names):
            fail("class_names", "class names must be unique")
        if self.num_classes is None and self.class_names:
            self.num_classes = len(self.class_names)
        if self.num_classes is not None:
            if not _is_int(self.num_classes) or self.num_classes < 1:
                fail("num_classes", f"expected a positive integer, got {self.num_classes!r}")
            if self.class_names and len(self.class_names) != self.num_classes:
                fail("num_classes", f"{self.num_classes} classes but {len(self.class_names)} class_names")
        if self.kind in HEAD_KINDS and self.num_classes is None:
            fail("class_names", f"a {self.kind} has a classification head: give class_names (or num_classes)")
        if self.kind == "encoder" and self.head:
            fail("head", "an encoder has no head; use kind 'classifier' for backbone + head")
        self.head = {**_default_head(self.kind), **self.head}
        if self.kind == "teacher":
            if self.head.get("type") != "alignment":
                fail("head", f"a teacher's head type is 'alignment', got {self.head.get('type')!r}")
            if not _is_int(self.head.get("num_heads")) or self.head["num_heads"] < 1:
                fail("head", f"num_heads must be a positive integer, got {self.head.get('num_heads')!r}")
        elif self.kind in ("classifier", "student") and self.head.get("type") != "linear":
            fail("head", f"a {self.kind}'s head type is 'linear', got {self.head.get('type')!r}")
        if not isinstance(self.license, str) or not self.license:
            fail("license", "expected a licence identifier such as 'apache-2.0', 'other' or 'unknown'")
        if not isinstance(self.metrics, dict):
            fail("metrics", "expected an object {\"<dataset>/<protocol>\": {\"top1\": ..., \"top5\": ...}}")
        for key, vals in self.metrics.items():
            if not isinstance(vals, dict) or not vals:
                fail("metrics", f"entry {key!r} must be an object such as {{\"top1\": 80.1, \"top5\": 95.9}}")
            for m, v in vals.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 100:
                    fail("metrics", f"{key}.{m} must be a percentage in [0, 100], got {v!r}")
        self.metrics = _jsonable(self.metrics)
        for name in ("dataset", "paper", "base_model"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v):
                fail(name, f"expected a non-empty string or null, got {v!r}")
        if self.base_model is not None and self.base_model.count("/") != 1:
            fail("base_model", f"expected a Hub repository id 'org/name', got {self.base_model!r}")
        if not isinstance(self.asma_version, str):
            fail("asma_version", f"expected a string, got {self.asma_version!r}")
        if not isinstance(self.description, str):
            fail("description", "expected a string")
        if not _is_int(self.format_version) or self.format_version < 1:
            fail("format_version", f"expected a positive integer, got {self.format_version!r}")
        if self.format_version > FORMAT_VERSION:
            fail("format_version", f"written with format {self.format_version} by asma {self.asma_version}; "
                                   f"this asma ({asma.__version__}) reads format <= {FORMAT_VERSION}: upgrade asma")
        return self

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

        Also accepts the ``encoders/<name>/config.json`` written by training runs
        (``backbone``, ``layout``, ``in_channels``, ``stream``, ``num_frames``, ``masking``,
        ``class_names``), converted to ``kind="encoder"`` with ``training.masking``.

        Raises:
            ConfigError: naming ``source`` and the bad or unknown field.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if "kind" not in data and "masking" in data and {"backbone", "layout", "in_channels"} <= set(data):
            masking = data.pop("masking")
            data["kind"] = "encoder"
            data.setdefault("training", {})["masking"] = masking
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _layout_problem(d: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a ``Skeleton.to_dict()`` dict (pure Python, the checks of
    ``Skeleton.validate``), or ``None``."""
    V = d["num_joints"]
    if not _is_int(V) or V < 1:
        return f"num_joints must be a positive integer, got {V!r}"

    def is_index(i: Any) -> bool:
        return _is_int(i) and 0 <= i < V

    edges = d["edges"]
    if not isinstance(edges, list) or not all(isinstance(e, list) and len(e) == 2 and all(map(is_index, e))
                                              for e in edges):
        return f"edges must be [a, b] pairs of joint indices 0..{V - 1}"
    if any(a == b for a, b in edges):
        return "edges contain a self loop"
    names = d["joint_names"]
    if not isinstance(names, list) or len(names) != V or not all(isinstance(n, str) for n in names):
        return f"joint_names must be {V} strings"
    if len(set(names)) != V:
        return "joint names must be unique"
    if not is_index(d["center"]):
        return f"centre {d['center']!r} is not a joint index (0..{V - 1})"
    perm = d["flip_perm"]
    if not isinstance(perm, list) or sorted(perm) != list(range(V)) or any(perm[p] != i for i, p in enumerate(perm)):
        return f"flip_perm must be an involutive permutation of 0..{V - 1}"
    bones = d["bone_pairs"]
    if not isinstance(bones, list) or len(bones) != V or not all(
            isinstance(b, list) and len(b) == 2 and all(map(is_index, b)) for b in bones):
        return f"bone_pairs must be {V} [a, b] pairs of joint indices"
    return None


class SkeletonTransforms:
    """Input pipeline carried by a :class:`PretrainedConfig` (``config.transforms()``).

    ``transforms(x)`` checks that ``x`` matches the checkpoint's channels and joints and converts
    it to the checkpoint's ``stream`` (:func:`asma.data.streams.to_stream`);
    :meth:`prepare_clip` applies the recorded clip normalisation (centring, resampling,
    alignment) to a raw clip first.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)` or :math:`(C, T, V, M)`
        - **output**: :math:`(N, C, T, V, M)`
    """

    def __init__(self, config: PretrainedConfig):
        self.config = config
        self._skeleton = None

    @property
    def skeleton(self):
        """The checkpoint's :class:`~asma.graph.Skeleton` (built once)."""
        if self._skeleton is None:
            self._skeleton = self.config.skeleton()
        return self._skeleton

    def check(self, x) -> None:
        """Raise ``ValueError`` naming both sides when ``x`` (``(N, C, T, V, M)``) does not fit."""
        cfg = self.config
        if x.dim() != 5:
            raise ValueError(f"expected a clip batch (N, C, T, V, M), got shape {tuple(x.shape)}")
        _, c, _, v, _ = x.shape
        if v != cfg.num_joints:
            raise ValueError(f"input has V={v} joints but the checkpoint was built for layout "
                             f"{cfg.layout_name!r} with V={cfg.num_joints} joints")
        if c != cfg.in_channels:
            raise ValueError(f"input has C={c} channels but the checkpoint was built for "
                             f"in_channels={cfg.in_channels}")

    def __call__(self, x):
        """Joint clips -> the checkpoint's input stream (float32).

        Shapes:
            - **x**: :math:`(N, C, T, V, M)` or :math:`(C, T, V, M)` -> :math:`(N, C, T, V, M)`
        """
        import torch

        from asma.data.streams import to_stream
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 4:
            x = x.unsqueeze(0)
        self.check(x)
        return to_stream(x, self.config.stream, self.skeleton, self.config.num_coords)

    def preprocess_config(self):
        """The recorded clip normalisation as :class:`asma.data.preprocess.PreprocessConfig`.

        Raises:
            ValueError: ``preprocessing`` is empty or not in ``PreprocessConfig`` form.
        """
        from asma.data.preprocess import PreprocessConfig
        pre = self.config.preprocessing
        if not pre:
            raise ValueError("this checkpoint records no preprocessing; normalise clips as its model card says")
        extra = set(pre) - _PREPROCESS_KEYS
        if extra:
            raise ValueError(f"preprocessing has free-form key(s) {', '.join(sorted(extra))} that "
                             "PreprocessConfig does not know; apply it as the model card describes")
        return PreprocessConfig.from_dict(pre)

    def prepare_clip(self, raw) -> "Any":
        """Normalise one raw clip as the training data was (crop, frame selection, centring,
        resampling, shoulder alignment) and convert it to the input stream.

        Shapes:
            - **raw**: :math:`(C, F, V, M)` numpy array -> :math:`(1, C, T, V, M)` tensor
        """
        import numpy as np

        from asma.data.preprocess import preprocess_clip
        clip = preprocess_clip(np.asarray(raw, dtype=np.float32), self.preprocess_config())
        return self(clip)

    def __repr__(self) -> str:
        c = self.config
        return (f"SkeletonTransforms(layout={c.layout_name!r}, in_channels={c.in_channels}, "
                f"stream={c.stream!r}, num_frames={c.num_frames})")

