"""A run directory as data: its configuration, pretrained encoders and downstream split
(:class:`RunContext`), the record of finished stages (``status.json``) and the rows each stage
wrote (``<stage>/results.json`` + ``logits.safetensors``). The stages themselves and their
orchestration are in :mod:`asma.train.pipeline`."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..data.arrays import SkeletonArrays
from ..data.catalog import load_dataset
from ..io import (CheckpointError, PathLike, atomic_write_json, latest_checkpoint, load_state_dict_checked,
                  load_tensors, load_weights_file, read_json, save_tensors, verify_sha256)
from ..models.registry import Backbone
from ..pretrained.architectures import build_model, config_for_model
from ..pretrained.config import PretrainedConfig
from ..pretrained.folder import save_folder
from ..pretrained.schema import ConfigError
from .config import DataConfig, TrainConfig, apply_overrides, make_config
from .engine import is_main_process
from .validation import check_config
from .probe import ProbeResult


@dataclass
class RunContext:
    """What the labelled stages of a run work on.

    Attributes:
        cfg: the run's configuration.
        run_dir: the run directory.
        encoders: name -> pretrained encoder (eval mode), in config order (theta, phi).
        train, test: the downstream labelled split (the pretraining data unless
            ``cfg.downstream`` names another dataset).
    """

    cfg: TrainConfig
    run_dir: Path
    encoders: Dict[str, Backbone]
    train: SkeletonArrays
    test: SkeletonArrays

    @property
    def stream(self) -> str:
        return self.cfg.data.stream


def downstream_data(cfg: TrainConfig) -> DataConfig:
    """The data of the labelled stages: ``cfg.data`` with ``cfg.downstream`` applied (transfer).

    Raises:
        ValueError: on an unknown key in ``cfg.downstream`` (names it and the valid keys).
    """
    d = copy.deepcopy(cfg.data)
    return apply_overrides(d, cfg.downstream, "downstream.")


def check_transfer(encoders: Dict[str, Backbone], train: SkeletonArrays, where: str) -> None:
    """The downstream clips must fit the pretrained encoders: same skeleton graph and input
    channels (the label space may differ: every stage trains a new head)."""
    enc = next(iter(encoders.values()))
    skel = train.skeleton
    if not enc.layout.same_as(skel):
        raise ValueError(
            f"{where}: the downstream data ({train.source}) has layout {skel.name!r} with "
            f"{skel.num_joints} joints but the encoders were pretrained on layout "
            f"{getattr(enc.layout, 'name', 'custom')!r} with {enc.layout.num_joints} joints; "
            "transfer needs the same skeleton graph (convert the data to one layout first)")
    if enc.in_channels != train.shape[1]:
        raise ValueError(f"{where}: the downstream clips have {train.shape[1]} coordinate channels, the "
                         f"encoders expect {enc.in_channels}")


def save_encoders(model, run_dir: PathLike, cfg: TrainConfig, train: SkeletonArrays) -> None:
    """Write each encoder of the pretraining ``model`` as a pretrained model folder
    ``encoders/<name>/`` (:func:`asma.pretrained.folder.save_folder`: ``model.safetensors`` and a
    ``config.json`` of kind ``encoder`` with its masking in ``training``, its parameters, GFLOPs and
    ``weights_sha256``), the format every reader of an encoder uses (:func:`load_encoders`,
    ``asma.create_model("RUN:encoder-<name>")``, ``asma zoo export``)."""
    for name, enc in model.encoders.items():
        config = config_for_model(enc, kind="encoder", stream=cfg.data.stream, num_frames=train.shape[2],
                                  num_persons=train.shape[4], class_names=list(train.class_names),
                                  training={"masking": list(cfg.model.encoders[name])})
        save_folder(enc, config, Path(run_dir) / "encoders" / name)


def _verify_encoder(folder: Path, config: PretrainedConfig) -> None:
    recorded = config.weights_sha256.get("model.safetensors")
    if recorded is None:
        raise CheckpointError(f"{folder / 'config.json'}: no sha256 of model.safetensors recorded (field "
                              "'weights_sha256'); refusing unverified encoder weights")
    verify_sha256(folder, {"model.safetensors": recorded})


def check_encoder_config(config: PretrainedConfig, cfg: TrainConfig, name: str, source: Path) -> None:
    """An encoder's ``config.json`` must describe what the run's configuration trained: an
    ``encoder`` with the same backbone and backbone options, masking (``training.masking``),
    stream and (synthetic data) layout; catches the encoders of another run copied into this one.

    Raises:
        CheckpointError: naming ``source``, the field and both values.
    """
    m = cfg.model
    pairs = [("kind", config.kind, f"model.encoders.{name}", "encoder"),
             ("backbone", config.backbone["name"], "model.backbone", m.backbone)]
    pairs += [(f"backbone option {k!r}", config.backbone.get(k), f"model.backbone_cfg.{k}", v)
              for k, v in m.backbone_cfg.items()]
    pairs += [("masking", config.training.get("masking"), f"model.encoders.{name}", m.encoders.get(name)),
              ("stream", config.stream, "data.stream", cfg.data.stream)]
    if cfg.data.dataset == "synthetic":
        pairs.append(("layout", config.layout_name, "data.layout", cfg.data.layout))
    for what, theirs, key, ours in pairs:
        if json.dumps(theirs) != json.dumps(ours):
            raise CheckpointError(f"{source}: the encoder has {what} {theirs!r} but the run's config.json has "
                                  f"{key}={ours!r}; these encoders were trained by another configuration")


def load_encoders(run_dir: Path, cfg: TrainConfig) -> Dict[str, Backbone]:
    """The pretrained encoders saved in ``run_dir/encoders`` (eval mode, config order): each
    folder's ``config.json`` read as a :class:`~asma.pretrained.config.PretrainedConfig`, checked
    against ``cfg`` (:func:`check_encoder_config`) and its sha256 (``weights_sha256``) verified
    before the weights are read.

    Raises:
        ValueError: when there are none (the pretraining did not finish).
        CheckpointError: an invalid ``config.json``, modified files, encoders of another
            configuration, or weights that do not fit their config.json (each names the file and
            both sides).
    """
    enc_dir = Path(run_dir) / "encoders"
    saved = {p.name for p in enc_dir.iterdir() if (p / "model.safetensors").is_file()} if enc_dir.is_dir() else set()
    names = [n for n in cfg.model.encoders if n in saved]
    if not names:
        raise ValueError(f"{enc_dir} holds no pretrained encoders; the pretraining of {run_dir} did not finish "
                         "(run 'asma pretrain' or 'asma train --resume')")
    encoders = {}
    for name in names:
        folder = enc_dir / name
        source = folder / "config.json"
        try:
            config = PretrainedConfig.from_json(source)
        except ConfigError as e:  # e.g. the encoder format of runs before asma.pretrained: no kind
            raise CheckpointError(f"{e}; an encoder folder is a model folder written by 'asma pretrain' (runs "
                                  "pretrained by an older asma: pretrain them again)") from None
        check_encoder_config(config, cfg, name, source)
        _verify_encoder(folder, config)
        try:
            enc = build_model(config)
        except ConfigError as e:
            raise CheckpointError(f"{source}: {e}") from None
        weights = folder / "model.safetensors"
        load_state_dict_checked(enc, load_tensors(weights), weights, f"the {config.backbone['name']} encoder "
                                f"described by {source}")
        encoders[name] = enc.eval()
    return encoders


def read_config(run_dir) -> TrainConfig:
    """The configuration of a run directory (``config.json`` over the paper defaults), checked
    with :func:`~asma.train.validation.check_config`.

    Raises:
        ValueError: no ``config.json``, or a key that is unknown or out of bounds (names the file).
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"{Path(run_dir)} is not a run directory (no config.json); run 'asma pretrain' first")
    saved = read_json(path)
    try:
        return check_config(apply_overrides(make_config("paper"), saved))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def open_run(run_dir, cfg: Optional[TrainConfig] = None) -> RunContext:
    """Config, pretrained encoders and downstream data of a run directory."""
    run = Path(run_dir)
    cfg = cfg or read_config(run)
    encoders = load_encoders(run, cfg)
    train, test = load_dataset(downstream_data(cfg))
    check_transfer(encoders, train, str(run))
    return RunContext(cfg, run, encoders, train, test)


# ----------------------------------------------------------------------------- status and rows


def read_status(run_dir) -> Dict[str, Any]:
    """``status.json`` of a run: stage -> info, for every finished stage."""
    p = Path(run_dir) / "status.json"
    return read_json(p) if p.is_file() else {}


def mark_done(run_dir, stage: str, **info) -> None:
    """Record a finished stage (rank 0 only; atomic)."""
    if not is_main_process():
        return
    status = read_status(run_dir)
    status[stage] = {"time": round(time.time(), 3), **info}
    atomic_write_json(Path(run_dir) / "status.json", status)


def save_rows(run_dir, stage: str, rows: Sequence[ProbeResult], labels, extra: Optional[dict] = None) -> None:
    """Write ``<run>/<stage>/results.json`` and ``logits.safetensors`` (test logits of every row
    and the test labels, for ensembles)."""
    if not is_main_process():
        return
    out = Path(run_dir) / stage
    tensors = {r.name: r.logits for r in rows if r.logits is not None}
    tensors["labels"] = torch.as_tensor(labels, dtype=torch.long)
    save_tensors(out / "logits.safetensors", tensors)
    atomic_write_json(out / "results.json", {"stage": stage, "results": [r.as_dict() for r in rows],
                                             **(extra or {})})


def load_rows(run_dir, stage: str) -> List[ProbeResult]:
    """The rows a finished stage wrote with :func:`save_rows` (with their test logits)."""
    out = Path(run_dir) / stage
    if not (out / "results.json").is_file():
        raise ValueError(f"{out / 'results.json'} is missing although {run_dir}/status.json lists stage "
                         f"{stage!r} as finished; remove the entry to run the stage again")
    logits = load_tensors(out / "logits.safetensors") if (out / "logits.safetensors").is_file() else {}
    return [ProbeResult(r["name"], float(r["top1"]), float(r["top5"]), logits.get(r["name"]))
            for r in read_json(out / "results.json")["results"]]


def load_weights(model: torch.nn.Module, path: Path, what: str) -> torch.nn.Module:
    """Load a safetensors state dict written by :func:`asma.io.save_weights` into ``model``
    (returned in eval mode), after verifying its recorded sha256.

    Raises:
        CheckpointError: naming the file: unrecorded, modified or damaged, or (with ``what`` it
            should fit) a key or shape differs.
    """
    return load_state_dict_checked(model, load_weights_file(path), path, what).eval()


def _resumable(directory: Path, resume: bool) -> bool:
    return resume and latest_checkpoint(directory) is not None


__all__ = ["RunContext", "downstream_data", "check_transfer", "load_encoders", "read_config", "open_run",
           "read_status", "mark_done", "save_rows", "load_rows", "load_weights", "save_encoders",
           "check_encoder_config"]
