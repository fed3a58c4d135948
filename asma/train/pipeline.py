"""``asma train``'s orchestration of a run directory's stages (the stages themselves:
:mod:`asma.train.downstream`; the run directory's data, status and rows: :mod:`asma.train.rundir`):
pretrain -> linear evaluation -> fine-tuning -> distillation, each resumable, optionally on a
second (downstream) dataset and for several input streams fused into one ensemble.

Run directory layout (every file written atomically, by rank 0 only)::

    config.json            the resolved TrainConfig
    status.json            which stages finished ({"pretrain": {...}, "linear": {...}})
    metrics.jsonl          one record per epoch of every stage (also metrics.csv, tensorboard/)
    pretrain/epoch-XXXX/   pretraining checkpoints;  encoders/<name>/  the pretrained encoders
    linear/                results.json, logits.safetensors (test logits of every row)
    finetune/              <name>/epoch-XXXX, finetune-aligned/epoch-XXXX, aligned.safetensors,
                           results.json, logits.safetensors
    distill/ (distill-ft/) student.safetensors + student.json, checkpoints, results.json, logits
    results.json           every stage's rows, model sizes and costs

Resumption: a stage recorded in ``status.json`` is not run again (its rows are read back); a
stage that was interrupted continues from its latest checkpoint and reproduces the numbers of an
uninterrupted run (the training engine replays its random draws from ``(seed, epoch)``).
Nothing is written before the configuration, the device and the data have been checked (of every
stream, for several).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..data.catalog import load_dataset
from ..data.streams import STREAMS
from ..io import atomic_write_json, latest_checkpoint, load_tensors, read_json
from .config import STAGES, TrainConfig, pretrain_epochs
from .distributed import barrier
from .downstream import DISTILL_DIRS, distill_stage, finetune_stage, linear_stage, write_summary
from .engine import is_main_process, resolve_device, seed_everything, torch_threads
from .evaluate import evaluate_logits, fuse_streams
from .loggers import make_logger
from .pretrain import pretrain
from .probe import ProbeResult
from .rundir import (RunContext, _resumable, check_transfer, downstream_data, load_encoders, load_rows, mark_done,
                     read_status, save_encoders)
from .validation import check_config


@dataclass
class RunResult:
    """What :func:`run_pipeline` returns: the run directory, every stage's rows, the
    pretraining records and the wall-clock seconds."""

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
    """``runs/<dataset>-<backbone>-<date-time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.data.dataset}-{cfg.model.backbone}-{stamp}"


def check_compatible(cfg: TrainConfig, train: SkeletonArrays) -> None:
    """The dataset's layout must be the one the config names (when the config names one)."""
    skel = train.skeleton
    if cfg.data.dataset == "synthetic" and skel.name != cfg.data.layout:
        raise ValueError(f"dataset layout {skel.name!r} differs from data.layout={cfg.data.layout!r}")


def check_stages(cfg: TrainConfig) -> List[str]:
    """Validate ``cfg.stages`` and return them in pipeline order.

    Raises:
        ValueError: for an unknown stage or a fine-tuned teacher without the fine-tuning stage.
    """
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown or not cfg.stages:
        raise ValueError(f"unknown stage(s) {unknown or cfg.stages}; stages are {', '.join(STAGES)}")
    stages = [s for s in STAGES if s in cfg.stages]
    if cfg.distill.teacher not in DISTILL_DIRS:
        raise ValueError(f"distill.teacher must be one of {', '.join(DISTILL_DIRS)}, got {cfg.distill.teacher!r}")
    if "distill" in stages and cfg.distill.teacher == "finetune" and "finetune" not in stages \
            and not (Path(cfg.run_dir or ".") / "finetune" / "aligned.safetensors").is_file():
        raise ValueError("distill.teacher='finetune' needs the finetune stage: add it to --stages")
    return stages


_Data = Tuple[SkeletonArrays, SkeletonArrays]


@dataclass
class _Plan:
    """What :func:`_check` found: the run directory, the stages to run, the finished ones and
    the data (``pre``: the pretraining split, ``None`` when pretraining is done or not asked for)."""

    run_dir: Path
    stages: List[str]
    status: Dict[str, Any]
    pre: Optional[_Data]
    down: _Data


def _check(cfg: TrainConfig, resume: bool) -> _Plan:
    """Check everything a run needs (config, stages, device, run directory, data) without
    writing anything."""
    check_config(cfg)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    cfg.run_dir = str(run_dir)
    stages = check_stages(cfg)
    resolve_device(cfg.device)
    make_logger(None, cfg.loggers)  # unknown logger names
    status = read_status(run_dir)
    if resume and not (run_dir / "config.json").is_file():
        raise ValueError(f"--resume: {run_dir} has no config.json; pass the run directory of a started run")
    if not resume and (status or latest_checkpoint(run_dir / "pretrain") is not None):
        what = f"finished: {', '.join(status)}" if status else "an interrupted pretraining"
        raise ValueError(f"{run_dir} already holds a run ({what}); pass --resume to continue it or choose "
                         "another --run-dir")
    pre = load_dataset(cfg.data) if "pretrain" in stages and "pretrain" not in status else None
    if pre is not None:
        check_compatible(cfg, pre[0])
        # config.json/status.json record the epochs that run (pretrain.min_steps), for library callers too
        cfg.pretrain.epochs = pretrain_epochs(cfg.pretrain, len(pre[0]))
    ds = downstream_data(cfg)
    down = pre if pre is not None and ds == cfg.data else load_dataset(ds)
    return _Plan(run_dir, stages, status, pre, down)


def _create(run_dir: Path, cfg: TrainConfig) -> None:
    """Create ``run_dir`` with the resolved ``config.json`` (rank 0)."""
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", asdict(cfg))
    barrier()


class _StageClock:
    """Wall and CPU seconds of one stage in this process, recorded in ``status.json``; a stage
    continued from an earlier invocation's checkpoints records only this invocation's part and
    ``"resumed": true``."""

    def __init__(self, resumed: bool) -> None:
        self.wall, self.cpu, self.resumed = time.perf_counter(), time.process_time(), resumed

    def spent(self) -> Dict[str, Any]:
        return {"seconds": round(time.perf_counter() - self.wall, 1),
                "cpu_seconds": round(time.process_time() - self.cpu, 1), "resumed": self.resumed}


def _pretrain_stage(cfg: TrainConfig, run_dir: Path, data: _Data, resume: bool, console: Optional[Console],
                    progress: bool, log: Callable[..., None]) -> List[Dict[str, Any]]:
    train, test = data
    clock = _StageClock(_resumable(run_dir / "pretrain", resume))
    log(f"data: {cfg.data.label}, train {train.shape}, test "
        f"{test.shape}, {train.num_classes} classes, layout {train.skeleton.name}")
    with make_logger(run_dir, cfg.loggers) as logger:
        model = pretrain(cfg, train, run_dir, resume=_resumable(run_dir / "pretrain", resume),
                         console=console, progress=progress, logger=logger)
    if is_main_process():
        save_encoders(model, run_dir, cfg, train)
    mark_done(run_dir, "pretrain", epochs=cfg.pretrain.epochs, **clock.spent())
    barrier()
    return model.history


def _labelled_stage(ctx: RunContext, stage: str, status: Dict[str, Any], resume: bool,
                    console: Optional[Console], progress: bool, log: Callable[..., None]) -> List[ProbeResult]:
    cfg, run_dir = ctx.cfg, ctx.run_dir
    key = DISTILL_DIRS[cfg.distill.teacher] if stage == "distill" else stage
    if key in status:
        log(f"{key}: finished earlier, results read from {run_dir / key}")
        return load_rows(run_dir, key)
    log(f"stage: {key}")
    clock = _StageClock(resume and (run_dir / key).is_dir())
    if stage == "linear":
        rows = linear_stage(ctx, console=console, progress=progress)
    elif stage == "finetune":
        rows = finetune_stage(ctx, resume=resume, console=console, progress=progress)
    else:
        rows = distill_stage(ctx, resume=resume, console=console, progress=progress)
    mark_done(run_dir, key, **clock.spent())
    barrier()
    return rows


def run_pipeline(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
                 progress: bool = True) -> RunResult:
    """Run ``cfg.stages`` on one stream in ``cfg.run_dir`` and return a :class:`RunResult` with
    every stage's rows.

    ``resume=True`` continues a run: finished stages (``status.json``) are read back, an
    interrupted one continues from its checkpoints. Without it, a directory that already holds
    finished stages is refused (nothing is overwritten by accident). The configuration
    (:func:`~asma.train.validation.check_config`), stages, device and data are checked before
    anything is written.
    """
    t0 = time.perf_counter()
    plan = _check(cfg, resume)
    _create(plan.run_dir, cfg)  # a run that cannot start leaves nothing behind
    return _execute(cfg, plan, resume, console, progress, t0)


def _execute(cfg: TrainConfig, plan: _Plan, resume: bool, console: Optional[Console], progress: bool,
             t0: float) -> RunResult:
    """The stages of a checked run (:func:`_check`) whose directory exists."""
    run_dir, stages, status, pre, (train, test) = plan.run_dir, plan.stages, plan.status, plan.pre, plan.down
    seed_everything(cfg.seed)
    log = (console.log if console is not None and is_main_process() else (lambda *a, **k: None))
    rows: List[ProbeResult] = []
    history: List[Dict[str, Any]] = []
    with torch_threads(cfg.threads):
        if pre is not None:
            history = _pretrain_stage(cfg, run_dir, pre, resume, console, progress, log)
        encoders = load_encoders(run_dir, cfg)
        if cfg.downstream:
            ds = downstream_data(cfg)
            log(f"downstream data: {ds.label}, train {train.shape}, test {test.shape}, "
                f"{train.num_classes} classes")
        check_transfer(encoders, train, str(run_dir))
        ctx = RunContext(cfg, run_dir, encoders, train, test)
        for stage in stages:
            if stage != "pretrain":
                rows += _labelled_stage(ctx, stage, status, resume, console, progress, log)
    result = RunResult(run_dir, rows, history, time.perf_counter() - t0)
    write_summary(ctx, seconds=result.seconds)
    return result


def run_streams(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
                progress: bool = True) -> RunResult:
    """3s-ASMa: one complete run per stream of ``cfg.streams`` in ``<run_dir>/<stream>/``, then
    every classifier the runs share is fused across streams with ``cfg.fusion_weights``
    (:func:`~asma.train.evaluate.fuse_streams`, weighted sum of logits).

    Returns:
        :class:`RunResult` whose rows are ``"<stream>: <row>"`` for the stages
        run by this call and ``"fused <s1>+<s2>+...: <row>"`` for the ensembles of every finished
        stage; ``<run_dir>/ensemble.json`` holds the fused rows and the weights,
        ``<run_dir>/results.json`` those and each stream's ``results.json``.
    """
    t0 = time.perf_counter()
    streams = list(cfg.streams)
    bad = [s for s in streams if s not in STREAMS]
    if bad or len(set(streams)) != len(streams):
        raise ValueError(f"streams must be distinct names from {', '.join(STREAMS)}, got {streams}")
    missing = [s for s in streams if s not in cfg.fusion_weights]
    if missing:
        raise ValueError(f"no fusion weight for stream(s) {missing}; fusion_weights = {cfg.fusion_weights}")
    base = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    cfg.run_dir = str(base)
    runs = []
    for s in streams:  # every stream's config and data are checked before anything is written
        c = copy.deepcopy(cfg)
        c.streams, c.data.stream, c.run_dir = [], s, str(base / s)
        sub_resume = resume and (base / s / "config.json").is_file()
        runs.append((s, c, sub_resume, _check(c, sub_resume)))
    _create(base, cfg)
    per_stream: Dict[str, List[ProbeResult]] = {}
    rows: List[ProbeResult] = []
    for s, c, sub_resume, plan in runs:
        if console is not None and is_main_process():
            console.rule(f"stream: {s}")
        _create(plan.run_dir, c)
        res = _execute(c, plan, sub_resume, console, progress, time.perf_counter())
        per_stream[s] = finished_rows(base / s)  # every stage so far, not only this invocation's
        rows += [ProbeResult(f"{s}: {r.name}", r.top1, r.top5, r.logits) for r in res.rows]
    weights = {s: cfg.fusion_weights[s] for s in streams}
    fused = fuse_rows(per_stream, weights, _stream_labels(base, streams))
    rows += fused
    if is_main_process():
        fused_rows = [r.as_dict() for r in fused]
        atomic_write_json(base / "ensemble.json", {"streams": streams, "weights": weights, "results": fused_rows})
        atomic_write_json(base / "results.json", {
            "streams": streams, "weights": weights, "fused": fused_rows,
            "per_stream": {s: read_json(base / s / "results.json") for s in streams}})
    return RunResult(base, rows, [], time.perf_counter() - t0)


def finished_rows(run_dir) -> List[ProbeResult]:
    """The rows (with test logits) of every finished labelled stage of a run, in the order the
    stages finished."""
    return [r for k in read_status(run_dir) if k != "pretrain" for r in load_rows(run_dir, k)]


def fuse_rows(per_stream: Dict[str, List[ProbeResult]], weights: Dict[str, float],
              labels: torch.Tensor) -> List[ProbeResult]:
    """Fuse, for every row name present (with test logits) in all streams, the streams' logits
    with ``weights`` and score the ensemble against ``labels`` (the random-init baselines are not
    fused: their streams' encoders are unrelated).

    Shapes:
        - each row's ``logits``: :math:`(N, K)`, the same clips in the same order in every stream;
          **labels**: :math:`(N,)`
    """
    streams = list(per_stream)
    names = [r.name for r in per_stream[streams[0]] if r.logits is not None and not r.name.startswith("random-init")]
    out = []
    for name in names:
        logits = {}
        for s in streams:
            row = next((r for r in per_stream[s] if r.name == name and r.logits is not None), None)
            if row is None:
                break
            logits[s] = row.logits
        if len(logits) != len(streams):
            continue
        fused = fuse_streams(logits, weights)
        res = evaluate_logits(fused, labels, name=name)
        out.append(ProbeResult(f"fused {'+'.join(streams)}: {name}", res.top1, res.top5, fused))
    return out


def _stream_labels(base: Path, streams: Sequence[str]) -> torch.Tensor:
    """Test labels saved by the streams' stages; they must agree (same clips, same order)."""
    found = None
    for s in streams:
        for f in sorted((base / s).glob("*/logits.safetensors")):
            lab = load_tensors(f)["labels"]
            if found is not None and not torch.equal(found, lab):
                raise ValueError(f"{f}: the test labels differ from the other streams'; the streams were "
                                 "evaluated on different clips and cannot be fused")
            found = lab
    if found is None:
        raise ValueError(f"no saved test logits under {base}; nothing to fuse")
    return found


__all__ = ["RunResult", "default_run_dir", "check_compatible", "check_stages", "run_pipeline",
           "run_streams", "finished_rows", "fuse_rows"]
