"""The :class:`~asma.train.config.TrainConfig` of ``asma train`` / ``asma pretrain`` options:
``--preset auto`` chosen by the size of the training set, the pretraining epochs resolved for
``pretrain.min_steps``, ``--resume`` from a run's ``config.json``, and the warning for a
pretraining budget too small to learn anything (docs/training.md, "Budgets on small datasets")."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .config import (SMALL_MIN_STEPS, STAGES, DataConfig, TrainConfig, apply_overrides, make_config, parse_set,
                     pretrain_epochs)
from .validation import check_config

#: ``--preset auto`` picks ``small`` for a prepared dataset with fewer training clips than this.
SMALL_MAX_CLIPS = 3000
#: ``asma train`` warns when pretraining on a prepared dataset takes fewer optimizer steps
#: (on NW-UCLA, 155 steps left the aligned probe within 27 points of its 1240-step value).
FEW_STEPS = 300
#: Options that may change when a run is resumed (they do not change what is computed).
RESUMABLE_OPTIONS = ("stages", "device", "threads", "teacher")


def train_size(data: DataConfig) -> Optional[int]:
    """Training clips of the prepared dataset ``data`` names, read from its store's ``info.json``
    (no clip is read); ``None`` for the synthetic data or a dataset that is not prepared in
    ``data.data_dir`` (loading it then reports why)."""
    if data.dataset == "synthetic" or not data.data_dir:
        return None
    from ..data.prepared import PREPARED_DATASETS, prepared_path
    from ..data.store import StoreError, read_store_info
    if data.dataset not in PREPARED_DATASETS:
        return None
    try:
        return int(read_store_info(prepared_path(data.dataset, data.data_dir) / "train")["num_samples"])
    except (StoreError, KeyError, TypeError, ValueError):
        return None


def auto_preset(data: DataConfig, n_train: Optional[int]) -> str:
    """``--preset auto``: ``quick`` for the embedded synthetic data, ``small`` for a prepared
    dataset with fewer than :data:`SMALL_MAX_CLIPS` training clips (``n_train``), ``paper``
    otherwise (also when the size is unknown: the dataset is not prepared yet)."""
    if data.dataset == "synthetic":
        return "quick"
    return "small" if n_train is not None and n_train < SMALL_MAX_CLIPS else "paper"


def budget_warning(cfg: TrainConfig) -> Optional[str]:
    """One line when ``cfg`` pretrains on a prepared dataset for fewer than :data:`FEW_STEPS`
    optimizer steps (naming the count and the fix), else ``None``."""
    n = train_size(cfg.data)
    if n is None or "pretrain" not in cfg.stages or n < cfg.pretrain.batch_size:
        return None
    epochs = pretrain_epochs(cfg.pretrain, n)
    steps = epochs * (n // cfg.pretrain.batch_size)
    if steps >= FEW_STEPS:
        return None
    return (f"pretraining takes only {steps} optimizer steps ({epochs} epochs of {n:,} {cfg.data.dataset} clips "
            f"in batches of {cfg.pretrain.batch_size}); below ~{FEW_STEPS} the encoders barely beat random ones "
            f"on a small dataset: use --preset small or --set pretrain.min_steps={SMALL_MIN_STEPS}")


def _csv(value: str, what: str) -> List[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ValueError(f"{what} expects a comma-separated list, got {value!r}")
    return items


def _weights(value: str) -> Dict[str, float]:
    out = {}
    for item in _csv(value, "--fusion-weights"):
        name, sep, w = item.partition("=")
        try:
            out[name.strip()] = float(w)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--fusion-weights expects STREAM=WEIGHT pairs, e.g. joint=0.6,bone=0.6,motion=0.4; "
                             f"got {item!r}")
    return out


def _nested(flat: Dict[str, Any]) -> Dict[str, Any]:
    """``{"data.dataset": x, "seed": None}`` -> ``{"data": {"dataset": x}}`` (``None`` = not given)."""
    out: Dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        node = out
        *head, last = key.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = value
    return out


def _resumed(run_dir: Optional[str], flat: Dict[str, Any], config_files: Sequence[str],
             sets: Sequence[str]) -> TrainConfig:
    """The saved ``config.json`` of ``run_dir`` with the :data:`RESUMABLE_OPTIONS` given."""
    if not run_dir:
        raise ValueError("--resume needs --run-dir (the run to continue)")
    given = [k for k, v in flat.items() if v is not None and k != "run_dir"
             and k.split(".")[-1] not in RESUMABLE_OPTIONS]
    if given or list(config_files) or list(sets):
        names = [f"--{k.split('.')[-1].replace('_', '-')}" for k in given] + \
                (["--config"] if config_files else []) + (["--set"] if sets else [])
        raise ValueError(f"--resume continues {run_dir} with its saved config.json; {', '.join(names)} "
                         f"cannot change it (only --{', --'.join(RESUMABLE_OPTIONS)} may)")
    if not (Path(run_dir) / "config.json").is_file():
        raise ValueError(f"--resume: {run_dir} has no config.json; pass the run directory of a started run")
    from .rundir import read_config  # the run directory's module pulls in torch and the models
    return check_config(apply_overrides(read_config(run_dir), _nested(flat)))


def config_from_options(*, preset: str = "auto", config_files: Sequence[str] = (), sets: Sequence[str] = (),
                        resume: bool = False, dataset: Optional[str] = None, data_dir: Optional[str] = None,
                        protocol: Optional[str] = None, backbone: Optional[str] = None,
                        stream: Optional[str] = None, streams: Optional[str] = None,
                        fusion_weights: Optional[str] = None, stages: Optional[str] = None,
                        teacher: Optional[str] = None, transfer_to: Optional[str] = None,
                        epochs: Optional[int] = None, batch_size: Optional[int] = None,
                        seed: Optional[int] = None, run_dir: Optional[str] = None,
                        device: Optional[str] = None, threads: Optional[int] = None,
                        bf16: Optional[bool] = None) -> TrainConfig:
    """The :class:`TrainConfig` of ``asma train`` / ``asma pretrain`` options: the preset
    (``auto``: :func:`auto_preset` of the dataset the options name), then ``config_files``, then
    the named options, then ``sets`` (``KEY=VALUE``). On a prepared dataset ``pretrain.epochs``
    is then resolved for ``pretrain.min_steps`` (:func:`~asma.train.config.pretrain_epochs`, from
    the training set's size in its ``info.json``), so the config (and a run's ``config.json``)
    holds the epochs that run. With ``resume`` the run's saved ``config.json`` is used and only
    :data:`RESUMABLE_OPTIONS` may be given. The result is checked with
    :func:`~asma.train.validation.check_config` (bounds of every field).

    Raises:
        ValueError: for malformed values, values out of bounds or options that cannot be
            combined (names them).
    """
    flat: Dict[str, Any] = {
        "data.dataset": dataset, "data.data_dir": data_dir, "data.protocol": protocol, "data.stream": stream,
        "model.backbone": backbone, "pretrain.epochs": epochs, "pretrain.batch_size": batch_size, "seed": seed,
        "run_dir": run_dir, "threads": threads, "bf16": bf16, "device": device, "distill.teacher": teacher,
        "streams": _csv(streams, "--streams") if streams else None,
        "fusion_weights": _weights(fusion_weights) if fusion_weights else None,
        "stages": (list(STAGES) if stages == "all" else _csv(stages, "--stages")) if stages else None,
        "downstream.dataset": transfer_to}
    if resume:
        return _resumed(run_dir, flat, config_files, sets)

    def build(name: str) -> TrainConfig:
        cfg = apply_overrides(make_config(name, list(config_files), None), _nested(flat))
        return apply_overrides(cfg, parse_set(list(sets)))

    if preset == "auto":  # the dataset may come from an option, a config file or a --set
        data = build("paper").data
        preset = auto_preset(data, train_size(data))
    cfg = check_config(build(preset))
    return check_config(resolve_epochs(cfg))  # the epochs depend on the checked config's batch size


def resolve_epochs(cfg: TrainConfig) -> TrainConfig:
    """Write the pretraining epochs that run (``pretrain.min_steps`` on the prepared training set,
    :func:`~asma.train.config.pretrain_epochs`) into ``cfg`` when the dataset is prepared, so a
    run's ``config.json`` (and a zoo card) state them; returns ``cfg``."""
    n = train_size(cfg.data)
    if n is not None:
        cfg.pretrain.epochs = pretrain_epochs(cfg.pretrain, n)
    return cfg


__all__ = ["SMALL_MAX_CLIPS", "FEW_STEPS", "RESUMABLE_OPTIONS", "train_size", "auto_preset", "budget_warning",
           "resolve_epochs", "config_from_options"]
