"""The ``config.json`` schema: constants, :class:`ConfigError` and the field checks behind
:meth:`asma.pretrained.config.PretrainedConfig.validate` (the fields are documented in
:mod:`asma.pretrained.config`)."""
from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import asma

if TYPE_CHECKING:
    from .config import PretrainedConfig

#: Model kinds a checkpoint can hold.
KINDS = ("encoder", "classifier", "teacher", "student")
#: Kinds that end in class logits (and therefore need ``class_names`` / ``num_classes``).
HEAD_KINDS = ("classifier", "teacher", "student")
#: Input streams (same as :data:`asma.data.streams.STREAMS`).
STREAMS = ("joint", "bone", "motion")
#: The files of a published model (what is uploaded and downloaded; nothing else is fetched).
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "README.md")
#: Version of the ``config.json`` schema written by this code.
FORMAT_VERSION = 2
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LAYOUT_KEYS = ("num_joints", "edges", "joint_names", "center", "flip_perm", "bone_pairs")


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


def validate_config(cfg: "PretrainedConfig", source: Optional[str] = None) -> "PretrainedConfig":
    """Check every field of ``cfg`` and normalise it in place; returns ``cfg``
    (the body of :meth:`PretrainedConfig.validate`).

    Raises:
        ConfigError: ``"<source>: field '<name>': <problem>"``.
    """
    src = source or "PretrainedConfig"

    def fail(name: str, problem: str) -> None:
        raise ConfigError(f"{src}: field {name!r}: {problem}")

    _check_bounds(cfg, fail)
    _check_architecture(cfg, fail)
    _check_head(cfg, fail)
    _check_metadata(cfg, fail)
    return cfg


def _check_architecture(cfg: "PretrainedConfig", fail: Callable[[str, str], None]) -> None:
    """``kind``, ``backbone``, ``in_channels``, ``layout``, ``num_coords``, ``stream``, clip size."""
    if cfg.kind not in KINDS:
        fail("kind", f"expected one of {', '.join(KINDS)}, got {cfg.kind!r}")
    if not isinstance(cfg.backbone, dict) or not isinstance(cfg.backbone.get("name"), str) \
            or not cfg.backbone["name"]:
        fail("backbone", f"expected an object with a backbone 'name' and its options, got {cfg.backbone!r}")
    if not _is_int(cfg.in_channels) or cfg.in_channels < 1:
        fail("in_channels", f"expected a positive integer, got {cfg.in_channels!r}")
    backbone = _jsonable(cfg.backbone)
    if "in_channels" in backbone:
        if backbone["in_channels"] != cfg.in_channels:
            fail("backbone", f"backbone in_channels={backbone['in_channels']} disagrees with "
                             f"in_channels={cfg.in_channels}")
        del backbone["in_channels"]
    cfg.backbone = backbone
    if not isinstance(cfg.layout, dict):
        fail("layout", f"expected the layout object written by Skeleton.to_dict(), got {type(cfg.layout).__name__}")
    missing = [k for k in _LAYOUT_KEYS if k not in cfg.layout]
    if missing:
        fail("layout", f"missing key(s) {', '.join(missing)} (write it with Skeleton.to_dict())")
    cfg.layout = _jsonable(cfg.layout)
    problem = _layout_problem(cfg.layout)
    if problem:
        fail("layout", f"not a valid skeleton: {problem}")
    if cfg.num_coords is None:
        cfg.num_coords = min(3, cfg.in_channels)
    if not _is_int(cfg.num_coords) or not 1 <= cfg.num_coords <= cfg.in_channels:
        fail("num_coords", f"expected an integer in 1..in_channels={cfg.in_channels}, got {cfg.num_coords!r}")
    if cfg.stream not in STREAMS:
        fail("stream", f"expected one of {', '.join(STREAMS)}, got {cfg.stream!r}")
    for name in ("num_frames", "num_persons"):
        v = getattr(cfg, name)
        if v is not None and (not _is_int(v) or v < 1):
            fail(name, f"expected a positive integer or null, got {v!r}")


def _check_head(cfg: "PretrainedConfig", fail: Callable[[str, str], None]) -> None:
    """The free-form objects, ``class_names`` / ``num_classes`` and the head of the kind."""
    for name in ("preprocessing", "training", "head"):
        if not isinstance(getattr(cfg, name), dict):
            fail(name, f"expected an object, got {type(getattr(cfg, name)).__name__}")
        setattr(cfg, name, _jsonable(getattr(cfg, name)))
    if not isinstance(cfg.class_names, list) or not all(isinstance(c, str) for c in cfg.class_names):
        fail("class_names", "expected a list of strings")
    if len(set(cfg.class_names)) != len(cfg.class_names):
        fail("class_names", "class names must be unique")
    if cfg.num_classes is None and cfg.class_names:
        cfg.num_classes = len(cfg.class_names)
    if cfg.num_classes is not None:
        if not _is_int(cfg.num_classes) or cfg.num_classes < 1:
            fail("num_classes", f"expected a positive integer, got {cfg.num_classes!r}")
        if cfg.class_names and len(cfg.class_names) != cfg.num_classes:
            fail("num_classes", f"{cfg.num_classes} classes but {len(cfg.class_names)} class_names")
    if cfg.kind in HEAD_KINDS and cfg.num_classes is None:
        fail("class_names", f"a {cfg.kind} has a classification head: give class_names (or num_classes)")
    if cfg.kind == "encoder" and cfg.head:
        fail("head", "an encoder has no head; use kind 'classifier' for backbone + head")
    cfg.head = {**_default_head(cfg.kind), **cfg.head}
    if cfg.kind == "teacher":
        if cfg.head.get("type") != "alignment":
            fail("head", f"a teacher's head type is 'alignment', got {cfg.head.get('type')!r}")
        if not _is_int(cfg.head.get("num_heads")) or cfg.head["num_heads"] < 1:
            fail("head", f"num_heads must be a positive integer, got {cfg.head.get('num_heads')!r}")
    elif cfg.kind in ("classifier", "student") and cfg.head.get("type") != "linear":
        fail("head", f"a {cfg.kind}'s head type is 'linear', got {cfg.head.get('type')!r}")


def _check_metadata(cfg: "PretrainedConfig", fail: Callable[[str, str], None]) -> None:
    """Licence, metrics, references, costs, source and versions."""
    if not isinstance(cfg.license, str) or not cfg.license:
        fail("license", "expected a licence identifier such as 'apache-2.0', 'other' or 'unknown'")
    if not isinstance(cfg.metrics, dict):
        fail("metrics", "expected an object {\"<dataset>/<protocol>\": {\"top1\": ..., \"top5\": ...}}")
    for key, vals in cfg.metrics.items():
        if not isinstance(vals, dict) or not vals:
            fail("metrics", f"entry {key!r} must be an object such as {{\"top1\": 80.1, \"top5\": 95.9}}")
        for m, v in vals.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 100:
                fail("metrics", f"{key}.{m} must be a percentage in [0, 100], got {v!r}")
    cfg.metrics = _jsonable(cfg.metrics)
    for name in ("dataset", "paper", "base_model"):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, str) or not v):
            fail(name, f"expected a non-empty string or null, got {v!r}")
    if cfg.base_model is not None and cfg.base_model.count("/") != 1:
        fail("base_model", f"expected a Hub repository id 'org/name', got {cfg.base_model!r}")
    if cfg.num_params is not None and (not _is_int(cfg.num_params) or cfg.num_params < 1):
        fail("num_params", f"expected a positive integer or null, got {cfg.num_params!r}")
    if cfg.gflops is not None:
        if isinstance(cfg.gflops, bool) or not isinstance(cfg.gflops, (int, float)) \
                or not math.isfinite(cfg.gflops) or cfg.gflops < 0:
            fail("gflops", f"expected a non-negative number or null, got {cfg.gflops!r}")
        cfg.gflops = float(cfg.gflops)
    if not isinstance(cfg.source, dict):
        fail("source", f"expected an object, got {type(cfg.source).__name__}")
    cfg.source = _jsonable(cfg.source)
    hashes = cfg.weights_sha256
    if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and _SAFE_FILE.match(k) and ".." not in k and isinstance(v, str) and _SHA256.match(v)
            for k, v in hashes.items()):
        fail("weights_sha256", "expected {\"<file>.safetensors\": \"<64 lowercase hex>\"} with plain file names")
    if not isinstance(cfg.asma_version, str):
        fail("asma_version", f"expected a string, got {cfg.asma_version!r}")
    if not isinstance(cfg.description, str):
        fail("description", "expected a string")
    if not _is_int(cfg.format_version) or cfg.format_version < 1:
        fail("format_version", f"expected a positive integer, got {cfg.format_version!r}")
    if cfg.format_version > FORMAT_VERSION:
        fail("format_version", f"written with format {cfg.format_version} by asma {cfg.asma_version}; "
                               f"this asma ({asma.__version__}) reads format <= {FORMAT_VERSION}: upgrade asma")


#: Upper bounds checked before a model is built from a (possibly downloaded) config, so that a
#: hostile ``config.json`` cannot ask the allocator for terabytes. The paper's models are far
#: below them (widths 16-256, 3 channels, 25 joints, 60-120 classes); raise them here if needed.
LIMITS = {"width": 1024, "list_length": 256, "in_channels": 64, "num_classes": 100_000, "num_joints": 512,
          "num_frames": 100_000, "num_persons": 64, "num_heads": 64, "depth": 16}


def _check_bounds(cfg: "PretrainedConfig", fail: Callable[[str, str], None]) -> None:
    """Sizes and nesting within :data:`LIMITS` (integers in ``backbone`` / ``head`` are widths)."""
    def walk(name: str, v: Any, depth: int = 0) -> None:
        if depth > LIMITS["depth"]:
            fail(name, f"nested deeper than {LIMITS['depth']} levels")
        if isinstance(v, dict):
            for x in v.values():
                walk(name, x, depth + 1)
        elif isinstance(v, list):
            if len(v) > LIMITS["list_length"] and name in ("backbone", "head"):
                fail(name, f"a list of {len(v)} items (at most {LIMITS['list_length']})")
            for x in v:
                walk(name, x, depth + 1)
        elif _is_int(v) and name in ("backbone", "head") and abs(v) > LIMITS["width"]:
            fail(name, f"option value {v} exceeds the width limit {LIMITS['width']} (asma.pretrained.schema.LIMITS)")

    for name in ("backbone", "head", "preprocessing", "training", "source", "metrics"):
        walk(name, getattr(cfg, name))
    layout = cfg.layout if isinstance(cfg.layout, dict) else {}
    for name, value in (("in_channels", cfg.in_channels), ("num_classes", cfg.num_classes),
                        ("num_frames", cfg.num_frames), ("num_persons", cfg.num_persons),
                        ("layout", layout.get("num_joints"))):
        limit = LIMITS["num_joints" if name == "layout" else name]
        if _is_int(value) and value > limit:
            fail(name, f"{value} exceeds the limit {limit} (asma.pretrained.schema.LIMITS)")
    if isinstance(cfg.class_names, list) and len(cfg.class_names) > LIMITS["num_classes"]:
        fail("class_names", f"{len(cfg.class_names)} names exceed the limit {LIMITS['num_classes']}")
