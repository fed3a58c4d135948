"""Masking ablations that pretrain once per setting: the Fig. 3 grid of spatial x temporal
pairings (one encoder) and the Table 7 sweeps of masked joints n and masked frames k.

Each setting is a complete ``pretrain -> linear`` run of :func:`~asma.train.pipeline.run_pipeline`
(or of :func:`~asma.train.pipeline.run_streams` when the base config names several streams) in
``<out>/<what>/<setting>/seed-<s>/``, so an interrupted sweep resumes where it stopped and every
number can be traced to its run directory. The summary ``<out>/<what>.json`` holds one row per
setting with the mean and sample standard deviation over the seeds.
"""
from __future__ import annotations

import copy
import statistics
from itertools import product
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from rich.console import Console

from ..io import atomic_write_json
from .config import TrainConfig
from .engine import is_main_process

#: Fig. 3's grid: spatial (rows) x temporal (columns) strategies, in the figure's order.
PAIRING_STRATEGIES: Tuple[str, ...] = ("random", "high", "low")
PAIRINGS: Tuple[Tuple[str, str], ...] = tuple(product(PAIRING_STRATEGIES, PAIRING_STRATEGIES))
#: Table 7's values: n with k = 10 fixed, k with n = 9 fixed.
DEFAULT_COUNTS: Dict[str, Tuple[int, ...]] = {"n_joints": (7, 8, 9, 10), "n_frames": (7, 8, 9, 10, 11)}
ABLATIONS = ("pairings", "n_joints", "n_frames")

#: The single encoder of a pairing run (its row in ``linear/results.json`` is ``"<name> probe"``).
PAIRING_ENCODER = "encoder"


def _score_row(cfg: TrainConfig, row: str) -> str:
    return f"fused {'+'.join(cfg.streams)}: {row}" if cfg.streams else row


def _run_setting(cfg: TrainConfig, run_dir: Path, row: str, seeds: Sequence[int],
                 console: Optional[Console], progress: bool) -> List[float]:
    """Top-1 of result row ``row`` of one ``pretrain -> linear`` run per seed (resumed if started)."""
    from .pipeline import run_pipeline, run_streams
    out = []
    for s in seeds:
        c = copy.deepcopy(cfg)
        c.seed, c.run_dir, c.stages = int(s), str(run_dir / f"seed-{s}"), ["pretrain", "linear"]
        resume = (run_dir / f"seed-{s}" / "config.json").is_file()
        res = (run_streams if c.streams else run_pipeline)(c, resume=resume, console=console, progress=progress)
        out.append(res.row(_score_row(c, row)).top1)
    return out


def _summary(values: List[float]) -> Dict[str, float]:
    values = [round(v, 2) for v in values]  # as results.json stores them: a resumed sweep gives the same row
    return {"top1_mean": round(statistics.fmean(values), 2),
            "top1_std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
            "top1": [round(v, 2) for v in values]}


def pairing_sweep(cfg: TrainConfig, out: Path, pairings: Optional[Sequence[Tuple[str, str]]] = None,
                  seeds: Sequence[int] = (0,), *, console: Optional[Console] = None,
                  progress: bool = False) -> List[Dict]:
    """Fig. 3: pretrain one encoder per (spatial, temporal) pairing and linear-probe it.

    Args:
        cfg: the base configuration (data, budget, ``n_joints``/``n_frames``); its encoders are
            replaced by the single encoder ``{"encoder": [spatial, temporal]}``.
        out: sweep folder; runs go to ``out/pairings/<spatial>-<temporal>/seed-<s>/`` and the
            summary to ``out/pairings.json``.
        pairings: default all nine of :data:`PAIRINGS`.
        seeds: one run per seed; rows give mean ± sample std.

    Returns:
        one row per pairing: ``spatial``, ``temporal``, ``top1_mean``, ``top1_std``, ``top1`` (per seed).

    Raises:
        ValueError: for an unknown strategy or no seeds.
    """
    pairings = list(PAIRINGS if pairings is None else pairings)
    bad = [p for p in pairings if len(p) != 2 or not set(p) <= set(PAIRING_STRATEGIES)]
    if bad or not pairings or not seeds:
        raise ValueError(f"pairings must be (spatial, temporal) pairs of {', '.join(PAIRING_STRATEGIES)} and "
                         f"seeds non-empty; got pairings {bad or pairings}, seeds {list(seeds)}")
    rows = []
    for spatial, temporal in pairings:
        c = copy.deepcopy(cfg)
        c.model.encoders = {PAIRING_ENCODER: [spatial, temporal]}
        top1 = _run_setting(c, Path(out) / "pairings" / f"{spatial}-{temporal}", f"{PAIRING_ENCODER} probe",
                            seeds, console, progress)
        rows.append({"spatial": spatial, "temporal": temporal, **_summary(top1)})
    _write(Path(out) / "pairings.json", "pairings", cfg, seeds, rows)
    return rows


def count_sweep(cfg: TrainConfig, out: Path, what: str, values: Optional[Sequence[int]] = None,
                seeds: Sequence[int] = (0,), *, console: Optional[Console] = None,
                progress: bool = False) -> List[Dict]:
    """Table 7: pretrain both encoders once per number of masked joints (``what="n_joints"``)
    or masked frames (``"n_frames"``), the other count as in ``cfg``, and report the aligned
    linear probe (fused over ``cfg.streams`` when set: the paper's 3s-ASMa column).

    Runs go to ``out/<what>/<value>/seed-<s>/``, the summary to ``out/<what>.json``.

    Returns:
        one row per value: ``<what>``, ``top1_mean``, ``top1_std``, ``top1`` (per seed).

    Raises:
        ValueError: for an unknown ``what``, an empty ``values``/``seeds``, or a count that does
            not fit the data (raised by the pretraining checks, naming the option).
    """
    if what not in DEFAULT_COUNTS:
        raise ValueError(f"count sweeps are over {' or '.join(DEFAULT_COUNTS)}, not {what!r}")
    values = [int(v) for v in (DEFAULT_COUNTS[what] if values is None else values)]
    if not values or not seeds:
        raise ValueError(f"give at least one {what} value and one seed")
    if len(cfg.model.encoders) != 2:
        raise ValueError(f"Table 7 reports the aligned probe of two encoders; the config has {sorted(cfg.model.encoders)}")
    a, b = list(cfg.model.encoders)
    rows = []
    for v in values:
        c = copy.deepcopy(cfg)
        setattr(c.model, what, v)
        top1 = _run_setting(c, Path(out) / what / str(v), f"{a}+{b} aligned", seeds, console, progress)
        rows.append({what: v, **_summary(top1)})
    _write(Path(out) / f"{what}.json", what, cfg, seeds, rows)
    return rows


def ablation_sweep(run_dir, what: str, values: Optional[Sequence] = None, seeds: Sequence[int] = (0,), *,
                   epochs: Optional[int] = None, device: Optional[str] = None,
                   console: Optional[Console] = None, progress: bool = False) -> List[Dict]:
    """``asma sweep --over pairings|n_joints|n_frames``: the sweep with the configuration of the
    run in ``run_dir`` as the base (``epochs``: exactly that many pretraining epochs, its
    ``pretrain.min_steps`` switched off; ``device`` where it computes), written under
    ``<run_dir>/sweeps/``.

    ``values`` for ``pairings`` are ``"spatial-temporal"`` strings (e.g. ``"low-high"``).
    """
    from .rundir import read_config
    if what not in ABLATIONS:
        raise ValueError(f"ablation sweeps are over {', '.join(ABLATIONS)}, not {what!r}")
    cfg = read_config(run_dir)
    cfg.streams = list(cfg.streams)
    if epochs is not None:
        cfg.pretrain.epochs, cfg.pretrain.min_steps = int(epochs), 0
    if device:
        cfg.device = device
    out = Path(run_dir) / "sweeps"
    if what == "pairings":
        pairs = None if values is None else [parse_pairing(v) for v in values]
        return pairing_sweep(cfg, out, pairs, seeds, console=console, progress=progress)
    return count_sweep(cfg, out, what, values, seeds, console=console, progress=progress)


def parse_pairing(text: str) -> Tuple[str, str]:
    """``"low-high"`` -> ``("low", "high")`` (spatial, temporal)."""
    parts = tuple(p.strip() for p in str(text).split("-"))
    if len(parts) != 2 or not set(parts) <= set(PAIRING_STRATEGIES):
        raise ValueError(f"a pairing is SPATIAL-TEMPORAL with each of {', '.join(PAIRING_STRATEGIES)} "
                         f"(e.g. low-high), got {text!r}")
    return parts  # type: ignore[return-value]


def _write(path: Path, what: str, cfg: TrainConfig, seeds: Sequence[int], rows: List[Dict]) -> None:
    if is_main_process():
        atomic_write_json(path, {"what": what, "seeds": [int(s) for s in seeds], "dataset": cfg.data.dataset,
                                 "protocol": cfg.data.protocol, "streams": cfg.streams or [cfg.data.stream],
                                 "n_joints": cfg.model.n_joints, "n_frames": cfg.model.n_frames,
                                 "pretrain_epochs": cfg.pretrain.epochs, "rows": rows})


__all__ = ["PAIRINGS", "PAIRING_STRATEGIES", "DEFAULT_COUNTS", "ABLATIONS", "PAIRING_ENCODER", "pairing_sweep",
           "count_sweep", "ablation_sweep", "parse_pairing"]
