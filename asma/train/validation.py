"""Bounds of the :class:`~asma.train.config.TrainConfig` fields, checked before a run starts
(and before anything is written), so a bad value is one line naming its key instead of a
traceback, a NaN loss or a 36 TB allocation later.

The limits are the tables below (:data:`INT_BOUNDS`, :data:`FLOAT_BOUNDS`, :data:`CHOICES`,
:data:`OPTION_MAX`, :data:`SYNTHETIC_MAX_BYTES`). They are generous (about 10x past any
published setting); change the table to go further.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Iterator, Tuple

if TYPE_CHECKING:  # options.py calls check_config: no import at run time
    from .config import TrainConfig

#: Largest seed (the generators take 63-bit seeds).
MAX_SEED = 2 ** 63 - 1
_EPOCHS, _WARMUP, _BATCH, _HEADS = (1, 100_000), (0, 100_000), (1, 65_536), (1, 64)

#: ``key: (low, high)`` of every integer field, inclusive.
INT_BOUNDS: Dict[str, Tuple[int, int]] = {
    "data.num_frames": (2, 1000), "data.num_classes": (1, 1000), "data.clips_per_class": (1, 100_000),
    "data.num_persons": (1, 2), "data.synthetic_seed": (0, MAX_SEED),
    "model.n_joints": (0, 1000), "model.n_frames": (0, 1000),
    "pretrain.epochs": _EPOCHS, "pretrain.batch_size": _BATCH, "pretrain.warmup_epochs": _WARMUP,
    "pretrain.min_steps": (0, 1_000_000),  # the paper's NTU-60 schedule is ~47,000 steps
    "probe.epochs": _EPOCHS, "probe.batch_size": _BATCH, "probe.heads": _HEADS,
    "finetune.epochs": _EPOCHS, "finetune.batch_size": _BATCH, "finetune.warmup_epochs": _WARMUP,
    "finetune.align_epochs": _EPOCHS, "finetune.heads": _HEADS,
    "distill.epochs": _EPOCHS, "distill.batch_size": _BATCH,
    "seed": (0, MAX_SEED), "threads": (0, 1024),
}
_LR, _WD = (0.0, 1.0, False), (0.0, 1.0, True)
#: ``key: (low, high, low included)`` of every float field (``high`` is included; NaN and
#: infinities are always refused). ``distill.lr`` may also be ``None`` (the mode's default).
FLOAT_BOUNDS: Dict[str, Tuple[float, float, bool]] = {
    "model.lambda_bt": (0.0, 1.0, False),
    "pretrain.lr": _LR, "probe.lr": _LR, "finetune.lr": _LR, "finetune.align_lr": _LR, "distill.lr": _LR,
    "pretrain.weight_decay": _WD, "probe.weight_decay": _WD, "finetune.weight_decay": _WD,
    "distill.weight_decay": _WD, "distill.tau": (0.0, 100.0, False),
    "augment.crop_min": (0.0, 1.0, False), "augment.shear": (0.0, 5.0, True),
    "augment.rotate": (0.0, 180.0, True), "augment.flip_p": (0.0, 1.0, True),
}
#: ``key: allowed values``.
CHOICES: Dict[str, Tuple[str, ...]] = {
    "data.stream": ("joint", "bone", "motion"), "model.frame_mode": ("drop", "zero"),
    "model.anchor": ("augmented", "raw"),
    "pretrain.memory": ("fast", "low", "min"),
    "distill.mode": ("logits", "features"), "distill.teacher": ("linear", "finetune"),
}
#: Largest integer in ``model.backbone_cfg``, ``distill.student_cfg`` and ``model.projector``
#: (widths, depths, kernel sizes, strides, hops must be 1..this).
OPTION_MAX = {"model.backbone_cfg": 4096, "distill.student_cfg": 4096, "model.projector": 16_384}
#: Largest synthetic dataset (float32 clips), bytes.
SYNTHETIC_MAX_BYTES = 4 * 2 ** 30


def _get(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _check_int(key: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}={value!r}: must be an integer in {low}..{high:,}")


def _check_float(key: str, value: Any, low: float, high: float, closed: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (low <= value if closed else low < value) and value <= high
    if not ok:
        raise ValueError(f"{key}={value!r}: must be a finite number in {'[' if closed else '('}{low:g}, {high:g}]")


def _leaves(value: Any, where: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{where}[{i}]")
    else:
        yield where, value


def _check_options(key: str, value: Any) -> None:
    """Integers 1..:data:`OPTION_MAX`, finite floats, dropout rates in [0, 1)."""
    for where, leaf in _leaves(value, key):
        if isinstance(leaf, bool) or leaf is None or isinstance(leaf, str):
            continue
        if isinstance(leaf, int):
            _check_int(where, leaf, 1, OPTION_MAX[key])
        elif isinstance(leaf, float):
            if "dropout" in where.rsplit(".", 1)[-1]:
                if not (math.isfinite(leaf) and 0.0 <= leaf < 1.0):
                    raise ValueError(f"{where}={leaf!r}: a dropout rate must be in [0, 1)")
            else:
                _check_float(where, leaf, -1e6, 1e6, True)
        else:
            raise ValueError(f"{where}={leaf!r}: expected a number, string or boolean")


def _check_model(cfg: TrainConfig) -> None:
    from ..models.registry import list_backbones
    m = cfg.model
    if m.backbone not in list_backbones():
        raise ValueError(f"model.backbone: unknown backbone {m.backbone!r}; registered backbones: "
                         f"{', '.join(list_backbones())} (a --plugin can register more)")
    if not m.projector:
        raise ValueError("model.projector: give at least one layer width, e.g. [6144, 6144, 6144]")
    if not m.encoders or not all(isinstance(v, list) and len(v) == 2 and all(isinstance(s, str) for s in v)
                                 for v in m.encoders.values()):
        raise ValueError(f"model.encoders={m.encoders!r}: expected name -> [spatial, temporal] masking strategies, "
                         "e.g. {\"theta\": [\"high\", \"low\"], \"phi\": [\"low\", \"high\"]}")


def _check_synthetic(cfg: TrainConfig) -> None:
    from ..graph import get_layout
    d = cfg.data
    n = d.num_classes * d.clips_per_class
    size = n * 3 * d.num_frames * get_layout(d.layout).num_joints * d.num_persons * 4
    if size > SYNTHETIC_MAX_BYTES:
        raise ValueError(f"data: the synthetic dataset of {n:,} clips of {d.num_frames} frames would take "
                         f"{size / 2 ** 30:.1f} GiB (limit {SYNTHETIC_MAX_BYTES / 2 ** 30:g} GiB); lower "
                         "data.clips_per_class, data.num_classes or data.num_frames")


def check_section(cfg: Any, prefix: str = "") -> None:
    """Check the bounded fields of ``cfg`` (a whole :class:`TrainConfig` with ``prefix=""``, or
    one section such as ``cfg.finetune`` with ``prefix="finetune."``) against the tables.

    Raises:
        ValueError: ``<key>=<value>: must be ...`` for the first field out of bounds.
    """
    def mine(table):
        return {k[len(prefix):]: v for k, v in table.items() if k.startswith(prefix)}

    for key, (low, high) in mine(INT_BOUNDS).items():
        _check_int(prefix + key, _get(cfg, key), low, high)
    for key, bounds in mine(FLOAT_BOUNDS).items():
        value = _get(cfg, key)
        if not (value is None and prefix + key == "distill.lr"):
            _check_float(prefix + key, value, *bounds)
    for key, allowed in mine(CHOICES).items():
        if _get(cfg, key) not in allowed:
            raise ValueError(f"{prefix + key}={_get(cfg, key)!r}: expected one of {', '.join(allowed)}")
    for key in mine(OPTION_MAX):
        _check_options(prefix + key, _get(cfg, key))
    for section in ("pretrain", "finetune"):
        if prefix in ("", f"{section}."):
            s = cfg if prefix else getattr(cfg, section)
            if s.warmup_epochs > s.epochs:
                raise ValueError(f"{section}.warmup_epochs={s.warmup_epochs}: must not exceed "
                                 f"{section}.epochs={s.epochs}")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Check every bounded field of a run configuration (the tables of this module), that the
    backbone is registered and that synthetic data fits in :data:`SYNTHETIC_MAX_BYTES`;
    returns ``cfg``.

    Raises:
        ValueError: one line naming the key, its value and the bound.
    """
    check_section(cfg)
    _check_model(cfg)
    if cfg.data.dataset == "synthetic":
        _check_synthetic(cfg)
    return cfg


__all__ = ["check_config", "check_section", "INT_BOUNDS", "FLOAT_BOUNDS", "CHOICES", "OPTION_MAX",
           "SYNTHETIC_MAX_BYTES", "MAX_SEED"]
