"""Typed run configuration: dataclasses, named presets, and overrides from files and the CLI."""
from __future__ import annotations


import json
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..data.transforms import AugmentConfig


@dataclass
class DataConfig:
    """Which clips to train on. ``dataset="synthetic"`` is the embedded default (no download)."""

    dataset: str = "synthetic"
    data_dir: Optional[str] = None
    protocol: str = "xsub"
    stream: str = "joint"
    layout: str = "ntu25"
    num_frames: int = 50
    # synthetic generator options (ignored for prepared datasets)
    num_classes: int = 12
    clips_per_class: int = 120
    num_persons: int = 2
    synthetic_seed: int = 0


@dataclass
class ModelConfig:
    """Encoders, projector and masking (paper §4 defaults)."""

    backbone: str = "stgcn"
    backbone_cfg: Dict[str, Any] = field(default_factory=dict)
    projector: List[int] = field(default_factory=lambda: [6144, 6144, 6144])
    lambda_bt: float = 2e-4
    n_joints: int = 9
    n_frames: int = 10
    frame_mode: str = "drop"
    encoders: Dict[str, List[str]] = field(default_factory=lambda: {"theta": ["high", "low"], "phi": ["low", "high"]})


@dataclass
class OptimConfig:
    """Adam with linear warm-up then cosine decay (per step)."""

    epochs: int = 150
    batch_size: int = 128
    lr: float = 5e-3
    weight_decay: float = 1e-5
    warmup_epochs: int = 10


@dataclass
class ProbeConfig:
    """Linear evaluation on frozen encoders (alignment module and linear heads)."""

    epochs: int = 150
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    heads: int = 4


@dataclass
class TrainConfig:
    """Everything a run needs; written resolved to ``<run_dir>/config.json``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pretrain: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    seed: int = 0
    threads: int = 0  # 0 = leave torch's default
    bf16: bool = False
    run_dir: Optional[str] = None
    preset: str = "paper"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _quick() -> Dict[str, Any]:
    # The embedded quick start: about 5 minutes on 2 CPU cores, same method, smaller everything.
    return {
        "data": {"num_frames": 30, "num_classes": 10, "clips_per_class": 80, "num_persons": 1},
        "model": {"backbone_cfg": {"out_channels": 128, "dropout": 0.0}, "projector": [512, 512, 512],
                  "n_joints": 9, "n_frames": 6},
        "pretrain": {"epochs": 12, "batch_size": 64, "lr": 5e-3, "warmup_epochs": 1},
        "probe": {"epochs": 60, "batch_size": 64, "lr": 3e-3},
    }


def _tiny() -> Dict[str, Any]:
    # For tests: well under a minute end to end.
    return {
        "data": {"num_frames": 20, "num_classes": 6, "clips_per_class": 40, "num_persons": 1},
        "model": {"backbone_cfg": {"hidden_channels": 8, "out_channels": 32, "dropout": 0.0},
                  "projector": [128, 128], "n_joints": 5, "n_frames": 4},
        "pretrain": {"epochs": 6, "batch_size": 32, "lr": 5e-3, "warmup_epochs": 1},
        "probe": {"epochs": 100, "batch_size": 32, "lr": 1e-2},
    }


PRESETS = {"paper": dict, "quick": _quick, "tiny": _tiny}


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    if isinstance(value, str) and (origin in (list, dict) or tp in (list, dict)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: expected JSON for a {getattr(tp, '__name__', tp)}, got {value!r}") from e
    try:
        if tp is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: cannot use {value!r} as {tp.__name__}") from None
    return value


def apply_overrides(obj: Any, overrides: Mapping[str, Any], prefix: str = "") -> Any:
    """Recursively set fields of a dataclass from a (possibly nested) mapping; unknown keys raise
    ``ValueError`` naming the key and the valid ones."""
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in fields(obj)}
    for key, value in overrides.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise ValueError(f"unknown config key {where!r}; valid keys here: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ValueError(f"{where} is a section; give a mapping, not {value!r}")
            apply_overrides(current, value, where + ".")
        elif isinstance(current, dict) and isinstance(value, Mapping) and key.endswith("_cfg"):
            setattr(obj, key, {**current, **value})
        else:
            setattr(obj, key, _coerce(hints[key], value, where))
    return obj


def parse_set(items: List[str]) -> Dict[str, Any]:
    """Turn ``["pretrain.epochs=5", "model.backbone_cfg={\\"dropout\\":0}"]`` into a nested dict."""
    out: Dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE (e.g. pretrain.epochs=5), got {item!r}")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a YAML or JSON override file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config file not found: {p}")
    text = p.read_text()
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: invalid YAML: {e}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p} line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: the top level must be a mapping")
    return data


def make_config(preset: str = "paper", files: Optional[List[str]] = None,
                overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """Build a :class:`TrainConfig`: the preset, then each file, then ``overrides`` (later wins)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    cfg = TrainConfig(preset=preset)
    apply_overrides(cfg, PRESETS[preset]())
    for f in files or []:
        apply_overrides(cfg, load_config_file(f))
    if overrides:
        apply_overrides(cfg, overrides)
    return cfg


def config_from_dict(d: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a config from ``config.json`` of a run."""
    cfg = TrainConfig()
    return apply_overrides(cfg, {k: v for k, v in d.items()})


__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "ProbeConfig", "TrainConfig", "AugmentConfig",
           "PRESETS", "make_config", "apply_overrides", "parse_set", "load_config_file", "config_from_dict"]

