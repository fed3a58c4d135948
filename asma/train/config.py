"""Typed run configuration: dataclasses, named presets, the pretraining epochs of a
``min_steps`` budget, and overrides from files and ``--set`` (the command-line options:
:mod:`asma.train.options`)."""
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

    @property
    def label(self) -> str:
        """``"nwucla-xview"``; the synthetic data with its split, ``"synthetic (xsub)"`` (a prepared
        dataset's name already holds its split, and ``protocol`` only applies to the synthetic data)."""
        return f"{self.dataset} ({self.protocol})" if self.dataset == "synthetic" else self.dataset


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
    # Literal readings of Algorithm 1, for ablations (docs/fidelity.md): "raw" feeds the
    # un-augmented x as the anchor (line 11); shared_projector uses one p(.) for both encoders (line 12).
    anchor: str = "augmented"
    shared_projector: bool = False


@dataclass
class ScheduleConfig:
    """What every Adam + cosine stage has (paper §4: 150 epochs, batch 128, lr 5e-3, weight
    decay 1e-5); the stages below add their own fields."""

    epochs: int = 150
    batch_size: int = 128
    lr: float = 5e-3
    weight_decay: float = 1e-5


@dataclass
class OptimConfig(ScheduleConfig):
    """Pretraining: Adam with linear warm-up then cosine decay (per step).

    Attributes:
        epochs: at least this many epochs.
        min_steps: at least this many optimizer steps: a small dataset gets more epochs (the
            epochs run are :func:`pretrain_epochs`; 0 = exactly ``epochs``). The warm-up stays
            ``warmup_epochs`` epochs.
        memory: ``"fast"`` stores every activation backward needs; ``"low"`` recomputes the
            cheap ones in backward, ``"min"`` every block
            (:func:`asma.models.memory.set_memory`: same values and gradients, lower
            peak memory, a slower step; docs/training.md).
    """

    warmup_epochs: int = 10
    min_steps: int = 0
    memory: str = "fast"


def pretrain_epochs(oc: OptimConfig, n_train: int) -> int:
    """The pretraining epochs of ``oc`` on ``n_train`` clips: ``max(oc.epochs,
    ceil(oc.min_steps / (n_train // oc.batch_size)))``. An epoch has ``n_train // batch_size``
    optimizer steps (the engine drops the short tail batch; under ``torchrun`` a step is one
    global batch of ``batch_size`` clips, so the number of processes does not matter).
    Idempotent: a config holding its own result (a resumed run's ``config.json``) keeps it.

    Raises:
        ValueError: ``min_steps > 0`` with fewer than ``batch_size`` training clips.
    """
    if oc.min_steps <= 0:
        return oc.epochs
    per_epoch = n_train // oc.batch_size
    if per_epoch < 1:
        raise ValueError(f"the training set has {n_train} clips, fewer than pretrain.batch_size={oc.batch_size}; "
                         "lower the batch size")
    return max(oc.epochs, (oc.min_steps + per_epoch - 1) // per_epoch)


@dataclass
class ProbeConfig:
    """Linear evaluation on frozen encoders (alignment module and linear heads)."""

    epochs: int = 150
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    heads: int = 4


@dataclass
class FinetuneConfig(ScheduleConfig):
    """Fine-tuning schedule (paper §4): Adam + per-step cosine decay to 0.

    Attributes:
        epochs, batch_size, lr, weight_decay: end-to-end stage (paper: 150 epochs, lr 5e-3, batch
            128; weight decay 1e-5 as in the paper's implementation details).
        warmup_epochs: linear warm-up epochs before the cosine (paper: none for fine-tuning).
        align_epochs, align_lr: the alignment module on the frozen fine-tuned encoders (paper: 50
            epochs, lr 1e-4); same batch size and weight decay.
        heads: attention heads of the alignment module (paper: 4).
        augment: apply the pretraining augmentations (:class:`~asma.data.transforms.AugmentConfig`
            defaults) to fine-tuning batches. The paper does not say; off by default (the
            AimCLR/PSTL fine-tuning configs feed un-augmented clips).
    """

    warmup_epochs: int = 0
    align_epochs: int = 50
    align_lr: float = 1e-4
    heads: int = 4
    augment: bool = False


@dataclass
class DistillConfig:
    """Distillation settings.

    Attributes:
        tau: softmax temperature :math:`\\tau` of Eq. 13. The paper's best values are 8-9 on NTU60
            and 6 on NTU120 (§5.3, Table 11); default 8.
        epochs, batch_size, weight_decay: Adam + per-step cosine decay to 0 (paper: 150 epochs,
            batch 128, weight decay 1e-5).
        lr: learning rate; ``None`` = the paper's value for the mode (1e-2 for logits, §4; 1e-3
            for features, Appendix C).
        mode: ``"logits"`` (KL, Eqs. 13-14, the paper's method) or ``"features"`` (cosine
            feature distillation, Appendix C).
        student_cfg: options of ``create_backbone("stgcn-student", ...)`` (e.g. ``num_layers``,
            ``width``, ``dropout``).
        augment: augment training clips (the teacher then sees the same augmented clip and its
            outputs are computed per batch). Off by default: teacher outputs are computed once.
        teacher: which ASMa classifier of a run teaches in the pipeline (Table 5): ``"linear"``
            (frozen encoders + alignment trained by linear evaluation) or ``"finetune"`` (the
            fine-tuned encoders + their alignment module; needs the ``finetune`` stage).
    """

    tau: float = 8.0
    epochs: int = 150
    batch_size: int = 128
    lr: Optional[float] = None
    weight_decay: float = 1e-5
    mode: str = "logits"
    student_cfg: Dict[str, Any] = field(default_factory=dict)
    augment: bool = False
    teacher: str = "linear"

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 1e-2 if self.mode == "logits" else 1e-3


@dataclass
class TrainConfig:
    """Everything a run needs; written resolved to ``<run_dir>/config.json``.

    Attributes:
        stages: what ``asma train`` runs, in order, from :data:`STAGES` (``pretrain``, ``linear``,
            ``finetune``, ``distill``); every stage resumes from its own checkpoints.
        downstream: overrides of :attr:`data` for the labelled stages (linear, finetune,
            distill): transfer learning, e.g. ``{"dataset": "pku2-xsub"}`` pretrains on
            ``data`` and evaluates on PKU-MMD II (Table 6). Empty = the pretraining data.
        streams: several input streams (e.g. ``["joint", "bone", "motion"]``): one complete run
            per stream in ``<run_dir>/<stream>/``, then their class scores fused with
            :attr:`fusion_weights` (3s-ASMa). Empty = the single stream ``data.stream``.
        fusion_weights: stream -> weight of its logits in the ensemble (AimCLR's 0.6/0.6/0.4).
        device: ``cpu``, ``cuda``, ``cuda:<i>`` or ``auto`` (CUDA when available). Under
            ``torchrun`` with CUDA each process uses ``cuda:<LOCAL_RANK>``.
        loggers: where per-epoch metrics go, any of ``jsonl`` (``metrics.jsonl``), ``csv``
            (``metrics.csv``), ``tensorboard`` (``tensorboard/<stage>/``); see :mod:`asma.train.loggers`.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pretrain: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    stages: List[str] = field(default_factory=lambda: ["pretrain", "linear"])
    downstream: Dict[str, Any] = field(default_factory=dict)
    streams: List[str] = field(default_factory=list)
    fusion_weights: Dict[str, float] = field(default_factory=lambda: {"joint": 0.6, "bone": 0.6, "motion": 0.4})
    device: str = "cpu"
    seed: int = 0
    threads: int = 0  # 0 = leave torch's default
    bf16: bool = False
    run_dir: Optional[str] = None
    preset: str = "paper"
    loggers: List[str] = field(default_factory=lambda: ["jsonl"])

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
        "finetune": {"epochs": 10, "batch_size": 64, "lr": 5e-3, "align_epochs": 10, "align_lr": 1e-3},
        "distill": {"epochs": 15, "batch_size": 64, "tau": 8.0},
        "stages": list(STAGES),
    }


def _tiny() -> Dict[str, Any]:
    # For tests: well under a minute end to end.
    return {
        "data": {"num_frames": 20, "num_classes": 6, "clips_per_class": 40, "num_persons": 1},
        "model": {"backbone_cfg": {"hidden_channels": 8, "out_channels": 32, "dropout": 0.0},
                  "projector": [128, 128], "n_joints": 5, "n_frames": 4},
        "pretrain": {"epochs": 6, "batch_size": 32, "lr": 5e-3, "warmup_epochs": 1},
        "probe": {"epochs": 100, "batch_size": 32, "lr": 1e-2},
        "finetune": {"epochs": 3, "batch_size": 32, "lr": 1e-2, "align_epochs": 3, "align_lr": 1e-2, "heads": 2},
        "distill": {"epochs": 3, "batch_size": 32, "tau": 4.0, "student_cfg": {"width": 8}},
    }


#: The stages of ``asma train``, in the order they run.
STAGES = ("pretrain", "linear", "finetune", "distill")
#: Pretraining steps of the ``small`` preset (docs/training.md, "Budgets on small datasets").
SMALL_MIN_STEPS = 1200


def _small() -> Dict[str, Any]:
    # Small real datasets (a few hundred to a few thousand training clips; clips prepared at
    # T=20): the tiny model, at least SMALL_MIN_STEPS pretraining steps whatever the size. On
    # NW-UCLA (tiny model, T=20, 3 seeds) the aligned probe reached 56.5 / 65.2 / 73.9 after
    # 155 / 620 / 1240 steps against 30.0 for two random encoders under the same head.
    # Cost on NW-UCLA (1,020 clips, 1 thread, idle machine): about 0.34 s per pretraining step
    # (~7 min), 5 probes of 100 epochs (~1 min), fine-tuning 2 x 30 epochs of ~2.5 s + 50 on cached tokens
    # (~3 min), distillation 30 epochs (~2 min): ~13 min, well under an hour on 2 loaded cores.
    return {
        "data": {"num_frames": 20},
        "model": _tiny()["model"],
        "pretrain": {"epochs": 10, "min_steps": SMALL_MIN_STEPS, "batch_size": 32, "lr": 5e-3, "warmup_epochs": 1},
        "probe": {"epochs": 100, "batch_size": 32, "lr": 1e-2},
        # alignment: the paper's 50 epochs, at 1e-3 (its 1e-4 leaves the head under-trained on a few
        # hundred clips); 10 epochs ended 5-12 points lower on UTD-MHAD (docs/training.md)
        "finetune": {"epochs": 30, "batch_size": 32, "lr": 5e-3, "align_epochs": 50, "align_lr": 1e-3, "heads": 2},
        "distill": {"epochs": 30, "batch_size": 32, "tau": 4.0, "student_cfg": {"width": 8}},
        "stages": list(STAGES),
    }


def _paper() -> Dict[str, Any]:
    return {"stages": list(STAGES)}


PRESETS = {"paper": _paper, "quick": _quick, "small": _small, "tiny": _tiny}


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    container = origin if origin in (list, dict) else tp if tp in (list, dict) else None
    if container is not None:
        return _coerce_container(container, args, value, where)
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
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: cannot use {_short(value)} as {tp.__name__}") from None
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _coerce_container(container: type, args: tuple, value: Any, where: str) -> Any:
    """A list or dict field: JSON text is parsed, then every element is coerced to the
    element type (``List[int]``, ``Dict[str, float]``, ...)."""
    what = "list" if container is list else "object"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise ValueError(f"{where}: expected a JSON {what}, got {_short(value)}") from None
    if not isinstance(value, container):
        raise ValueError(f"{where}: expected a JSON {what}, got {_short(value)}")
    if not args:
        return value
    if container is list:
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    return {_coerce(args[0], k, where): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}


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
        except RecursionError:
            raise ValueError(f"{p}: nested too deeply to be a configuration") from None
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


__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "ProbeConfig", "FinetuneConfig", "DistillConfig",
           "TrainConfig", "STAGES", "AugmentConfig",
           "PRESETS", "SMALL_MIN_STEPS", "pretrain_epochs", "make_config", "apply_overrides", "parse_set",
           "load_config_file", "config_from_dict"]

