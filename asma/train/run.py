"""``asma train``: pretrain -> linear evaluation on one dataset, with a run directory."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch
from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..data.catalog import load_dataset
from ..io import atomic_write_json, save_tensors
from ..models.registry import count_parameters, create_backbone
from .config import TrainConfig
from .engine import MetricsLog, seed_everything, torch_threads
from .pretrain import pretrain
from .probe import ProbeResult, linear_evaluation


@dataclass
class RunResult:
    run_dir: Path
    rows: List[ProbeResult]
    pretrain_history: List[Dict] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, name: str) -> ProbeResult:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no result row {name!r}; rows: {[r.name for r in self.rows]}")


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.data.dataset}-{cfg.model.backbone}-{stamp}"


def check_compatible(cfg: TrainConfig, train: SkeletonArrays) -> None:
    """The dataset's layout must be the one the config names (when the config names one)."""
    skel = train.skeleton
    if cfg.data.dataset == "synthetic" and skel.name != cfg.data.layout:
        raise ValueError(f"dataset layout {skel.name!r} differs from data.layout={cfg.data.layout!r}")


def save_encoders(model, run_dir: Path, cfg: TrainConfig, train: SkeletonArrays) -> None:
    """Write each encoder as ``encoders/<name>/model.safetensors`` + ``config.json`` (self-describing)."""
    for name, enc in model.encoders.items():
        d = run_dir / "encoders" / name
        save_tensors(d / "model.safetensors", enc.state_dict())
        atomic_write_json(d / "config.json", {
            "backbone": enc.config, "layout": train.skeleton.to_dict(), "in_channels": enc.in_channels,
            "stream": cfg.data.stream, "num_frames": train.shape[2], "masking": list(cfg.model.encoders[name]),
            "class_names": train.class_names})


def run_train(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
              progress: bool = True) -> RunResult:
    """Pretrain ASMa on ``cfg.data`` then run the linear evaluation; writes the run directory
    (``config.json``, ``metrics.jsonl``, ``pretrain/`` checkpoints, ``encoders/``, ``results.json``)."""
    t0 = time.perf_counter()
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    cfg.run_dir = str(run_dir)
    if resume and not (run_dir / "config.json").is_file():
        raise ValueError(f"--resume: {run_dir} has no config.json; pass the run directory of a started run")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", asdict(cfg))
    seed_everything(cfg.seed)
    with torch_threads(cfg.threads):
        train, test = load_dataset(cfg.data)
        check_compatible(cfg, train)
        if console:
            console.log(f"data: {cfg.data.dataset} ({cfg.data.protocol}), train {train.shape}, "
                        f"test {test.shape}, {train.num_classes} classes, layout {train.skeleton.name}")
        model = pretrain(cfg, train, run_dir, resume=resume, console=console, progress=progress)
        save_encoders(model, run_dir, cfg, train)
        torch.manual_seed(cfg.seed + 1)
        random_enc = create_backbone(cfg.model.backbone, train.skeleton, train.shape[1], **cfg.model.backbone_cfg)
        rows = linear_evaluation(dict(model.encoders.items()), train, test, cfg.probe, cfg.data.stream,
                                 cfg.seed, random_encoder=random_enc, console=console)
    result = RunResult(run_dir, rows, getattr(model, "history", []), time.perf_counter() - t0)
    MetricsLog(run_dir / "metrics.jsonl").write({"stage": "linear", "results": [r.as_dict() for r in rows]})
    atomic_write_json(run_dir / "results.json", {
        "dataset": cfg.data.dataset, "protocol": cfg.data.protocol, "backbone": cfg.model.backbone,
        "params_per_encoder": count_parameters(next(iter(model.encoders.values()))),
        "seconds": round(result.seconds, 1), "linear": [r.as_dict() for r in rows]})
    return result
