"""``asma train``: one run (one stream or several, :mod:`asma.train.pipeline`) and repeats over seeds."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from rich.console import Console

from ..io import atomic_write_json
from .config import TrainConfig
from .pipeline import RunResult, default_run_dir, run_pipeline, run_streams


def run_train(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
              progress: bool = True, probe: bool = True) -> RunResult:
    """``asma train``: run ``cfg.stages`` (pretrain -> linear -> finetune -> distill) in the run
    directory, for one stream or, with ``cfg.streams``, for each stream plus their fusion
    (:func:`~asma.train.pipeline.run_streams`). ``probe=False`` pretrains only (``asma pretrain``).
    See :mod:`asma.train.pipeline` for the run directory layout and resumption."""
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
