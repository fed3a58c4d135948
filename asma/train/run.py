"""``asma train``: the run result, run directories, and repeats over seeds."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..io import atomic_write_json, save_tensors
from .config import TrainConfig
from .probe import ProbeResult
from .rundir import record_encoder_hashes


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
    record_encoder_hashes(run_dir)  # their sha256, verified by load_encoders


def run_train(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
              progress: bool = True, probe: bool = True) -> RunResult:
    """``asma train``: run ``cfg.stages`` (pretrain -> linear -> finetune -> distill) in the run
    directory, for one stream or, with ``cfg.streams``, for each stream plus their fusion
    (:func:`~asma.train.pipeline.run_streams`). ``probe=False`` pretrains only (``asma pretrain``).
    See :mod:`asma.train.pipeline` for the run directory layout and resumption."""
    from .pipeline import run_pipeline, run_streams
    if not probe:
        cfg.stages = ["pretrain"]
    if cfg.streams:
        return run_streams(cfg, resume=resume, console=console, progress=progress)
    return run_pipeline(cfg, resume=resume, console=console, progress=progress)


@dataclass
class SeedSummary:
    name: str
    top1_mean: float
    top1_std: float
    top5_mean: float
    top5_std: float
    n: int


def run_seeds(cfg: TrainConfig, seeds: List[int], *, console: Optional[Console] = None,
              progress: bool = True) -> Tuple[List[RunResult], List[SeedSummary]]:
    """Repeat :func:`run_train` once per seed (run directories ``<run_dir>/seed-<s>``) and
    summarise every result row as mean ± sample standard deviation (the paper's Table 12)."""
    import copy
    import statistics
    if not seeds:
        raise ValueError("--seeds needs at least one seed, e.g. --seeds 0,1,2,3,4")
    base = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    results = []
    for s in seeds:
        c = copy.deepcopy(cfg)
        c.seed = int(s)
        c.run_dir = str(base / f"seed-{s}")
        results.append(run_train(c, console=console, progress=progress))
    summary = []
    for row in results[0].rows:
        t1 = [r.row(row.name).top1 for r in results]
        t5 = [r.row(row.name).top5 for r in results]
        sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
        summary.append(SeedSummary(row.name, statistics.fmean(t1), sd(t1), statistics.fmean(t5), sd(t5), len(t1)))
    atomic_write_json(base / "seeds.json", {"seeds": list(seeds), "summary": [asdict(s) for s in summary]})
    return results, summary
