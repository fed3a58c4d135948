"""The stages of a run directory and ``asma train``'s orchestration of them (the run
directory's data, status and rows: :mod:`asma.train.rundir`):
pretrain -> linear evaluation -> fine-tuning -> distillation, each resumable, optionally on a
second (downstream) dataset and for several input streams fused into one ensemble.

Run directory layout (every file written atomically, by rank 0 only)::

    config.json            the resolved TrainConfig
    status.json            which stages finished ({"pretrain": {...}, "linear": {...}})
    metrics.jsonl          one record per epoch of every stage
    pretrain/epoch-XXXX/   pretraining checkpoints;  encoders/<name>/  the pretrained encoders
    linear/                results.json, logits.safetensors (test logits of every row)
    finetune/              <name>/epoch-XXXX, finetune-aligned/epoch-XXXX, aligned.safetensors,
                           results.json, logits.safetensors
    distill/ (distill-ft/) student.safetensors + student.json, checkpoints, results.json, logits
    results.json           every stage's rows, model sizes and costs

Resumption: a stage recorded in ``status.json`` is not run again (its rows are read back); a
stage that was interrupted continues from its latest checkpoint and reproduces the numbers of an
uninterrupted run (the epoch loops replay their random draws from ``(seed, epoch)``).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
from rich.console import Console

from ..data.catalog import load_dataset
from ..data.streams import STREAMS
from ..graph import skeleton_from_dict
from ..io import atomic_write_json, latest_checkpoint, load_tensors, read_json, save_weights
from ..models.alignment import AlignedClassifier, FeatureAlignment
from ..models.classifiers import EncoderClassifier
from ..models.heads import LinearClassifier
from ..models.registry import Backbone, count_flops, create_backbone
from .config import STAGES, DistillConfig, FinetuneConfig, TrainConfig
from .distributed import barrier
from .engine import is_main_process, resolve_device, seed_everything, torch_threads
from .loggers import Logger, make_logger
from .evaluate import evaluate, evaluate_logits, fuse_streams
from .probe import ProbeResult, linear_evaluation
from .rundir import (RunContext, _resumable, check_transfer, downstream_data, load_encoders, load_rows,
                     load_weights, mark_done, open_run, read_config, read_status, save_rows)

#: Output folder of the distillation stage per teacher (Table 5: student of the linear-probed
#: vs the fine-tuned teacher).
DISTILL_DIRS = {"linear": "distill", "finetune": "distill-ft"}


# ----------------------------------------------------------------------------- stages


def run_logger(ctx: RunContext) -> Logger:
    """The run's one :class:`~asma.train.loggers.Logger` (``cfg.loggers`` in the run directory)."""
    return make_logger(ctx.run_dir, ctx.cfg.loggers)


def linear_stage(ctx: RunContext, *, random_encoder: Optional[Backbone] = None,
                 console: Optional[Console] = None, progress: bool = False) -> List[ProbeResult]:
    """Linear evaluation of the frozen encoders (Table 3 rows); writes ``<run>/linear/``."""
    cfg = ctx.cfg
    rows = linear_evaluation(ctx.encoders, ctx.train, ctx.test, cfg.probe, ctx.stream, cfg.seed,
                             random_encoder=random_encoder, console=console, device=cfg.device, progress=progress)
    save_rows(ctx.run_dir, "linear", rows, ctx.test.labels, {"config": asdict(cfg.probe)})
    with run_logger(ctx) as log:
        log.log({"stage": "linear", "results": [r.as_dict() for r in rows]})
    return rows


def finetune_stage(ctx: RunContext, ft: Optional[FinetuneConfig] = None, *, resume: bool = False,
                   console: Optional[Console] = None, progress: bool = True) -> List[ProbeResult]:
    """Fine-tune each encoder with a linear head, then the alignment module on the two
    fine-tuned encoders (paper §4). With ``resume`` every sub-stage continues from its latest
    checkpoint (a finished one is only re-evaluated). Writes ``<run>/finetune/`` (checkpoints,
    ``<name>/final.safetensors``, ``aligned.safetensors`` = the whole aligned classifier)."""
    from .finetune import finetune, finetune_aligned
    cfg, run = ctx.cfg, ctx.run_dir
    ft = ft or cfg.finetune
    out = run / "finetune"
    rows, tuned = [], {}
    log = run_logger(ctx)
    for name, enc in ctx.encoders.items():
        model, res = finetune(enc, ctx.train, ctx.test, ft, ctx.stream, cfg.seed, out,
                              _resumable(out / name, resume), name=name, console=console, progress=progress,
                              device=cfg.device, logger=log)
        res.name = f"{name} fine-tuned"
        tuned[name] = model
        rows.append(res)
        if is_main_process():
            save_weights(out / name / "final.safetensors", model.state_dict())
    if len(tuned) == 2:
        a, b = list(tuned)
        model, res = finetune_aligned(tuned[a], tuned[b], ctx.train, ctx.test, ft, ctx.stream, cfg.seed, out,
                                      _resumable(out / "finetune-aligned", resume), console=console,
                                      progress=progress, device=cfg.device, logger=log)
        res.name = f"{a}+{b} fine-tuned aligned"
        rows.append(res)
        if is_main_process():
            save_weights(out / "aligned.safetensors", model.state_dict())
    save_rows(run, "finetune", rows, ctx.test.labels, {"config": asdict(ft)})
    return rows


def finetuned_teacher(ctx: RunContext, heads: Optional[int] = None):
    """The fine-tuned ASMa classifier saved by :func:`finetune_stage` (two fine-tuned encoders
    + alignment), as an :class:`~asma.train.finetune.AlignedClassifier` in eval mode.

    Raises:
        ValueError: when the run has no finished fine-tuning.
    """
    path = ctx.run_dir / "finetune" / "aligned.safetensors"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: distill.teacher='finetune' needs the fine-tuning stage "
                         f"(run 'asma finetune --run-dir {ctx.run_dir}' first)")
    a, b = list(ctx.encoders)
    enc_t, enc_p = copy.deepcopy(ctx.encoders[a]), copy.deepcopy(ctx.encoders[b])
    heads = heads or ctx.cfg.finetune.heads
    model = AlignedClassifier(enc_t, enc_p, FeatureAlignment(enc_t.out_dim, ctx.train.num_classes, num_heads=heads))
    return load_weights(model, path, f"the fine-tuned classifier of {ctx.run_dir}")


def make_teacher(ctx: RunContext, teacher: str = "linear"):
    """The ASMa classifier that teaches the student, and its test row: ``"linear"`` = the two
    frozen encoders + the alignment module trained as in linear evaluation (re-fitted, the same
    numbers as the ``aligned`` row); ``"finetune"`` = the fine-tuned classifier saved by
    :func:`finetune_stage`.

    Shapes:
        - the teacher maps :math:`(B, C, T, V, M) \\to (B, K)`
    """
    from .finetune import fit_aligned_probe
    if teacher not in DISTILL_DIRS:
        raise ValueError(f"distill.teacher must be one of {', '.join(DISTILL_DIRS)}, got {teacher!r}")
    if len(ctx.encoders) != 2:
        raise ValueError(f"distillation needs the two encoders of ASMa; {ctx.run_dir} has {sorted(ctx.encoders)}")
    cfg = ctx.cfg
    if teacher == "linear":
        a, b = list(ctx.encoders)
        model, res = fit_aligned_probe(ctx.encoders[a], ctx.encoders[b], ctx.train, ctx.test, cfg.probe,
                                       ctx.stream, cfg.seed, device=cfg.device)
        res.name = "teacher (linear-probed, aligned)"
        return model, res
    model = finetuned_teacher(ctx)
    return model, evaluate(model, ctx.test, ctx.stream, device=cfg.device).to_probe_result(
        "teacher (fine-tuned, aligned)")


def distill_stage(ctx: RunContext, dc: Optional[DistillConfig] = None, *, resume: bool = False,
                  console: Optional[Console] = None, progress: bool = True) -> List[ProbeResult]:
    """Distil the run's ASMa teacher (``dc.teacher``: ``"linear"`` = linear-probed aligned
    classifier, ``"finetune"`` = fine-tuned aligned classifier) into ``stgcn-student`` without
    labels. Writes ``<run>/distill/`` (linear teacher) or ``<run>/distill-ft/`` (fine-tuned)."""
    from .distill import distill
    cfg, run = ctx.cfg, ctx.run_dir
    dc = dc or cfg.distill
    teacher, t_res = make_teacher(ctx, dc.teacher)
    stage = DISTILL_DIRS[dc.teacher]
    out = run / stage
    with run_logger(ctx) as log:
        student, s_res = distill(teacher, ctx.train, ctx.test, dc, ctx.stream, cfg.seed, out,
                                 _resumable(out / "distill", resume), console=console, progress=progress,
                                 device=cfg.device, logger=log)
    s_res.name = f"student of {dc.teacher} teacher (stgcn-student, tau={dc.tau:g})"
    if is_main_process():
        save_weights(out / "student.safetensors", student.state_dict())
        atomic_write_json(out / "student.json", {
            "backbone": student.encoder.config, "layout": ctx.train.skeleton.to_dict(),
            "class_names": ctx.train.class_names, "stream": ctx.stream, "teacher": dc.teacher,
            "mode": dc.mode, "run": str(run)})
    rows = [t_res, s_res]
    save_rows(run, stage, rows, ctx.test.labels, {"config": asdict(dc)})
    return rows


def load_student(run_dir, stage: str = "distill"):
    """The distilled student of a run (``stage`` = ``distill`` or ``distill-ft``) as an
    :class:`~asma.train.finetune.EncoderClassifier` (eval mode)."""
    out = Path(run_dir) / stage
    if not (out / "student.json").is_file():
        raise ValueError(f"{out / 'student.json'} does not exist; run 'asma distill --run-dir {run_dir}' first")
    meta = read_json(out / "student.json")
    kwargs = {k: v for k, v in meta["backbone"].items() if k not in ("name", "in_channels")}
    enc = create_backbone(meta["backbone"]["name"], skeleton_from_dict(meta["layout"]),
                          meta["backbone"]["in_channels"], **kwargs)
    k = len(meta["class_names"])
    if meta.get("mode", "logits") == "features":
        raise ValueError(f"{out} holds a feature-distilled student; its classifier needs the teacher's head "
                         "(evaluate it with asma.train.distill.distill's returned model)")
    model = EncoderClassifier(enc, LinearClassifier(enc.out_dim, k))
    return load_weights(model, out / "student.safetensors", f"the student described by {out / 'student.json'}")


# ----------------------------------------------------------------------------- orchestration


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


def model_costs(ctx: RunContext, student_cfg: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, float]]:
    """Parameters and GFLOPs per clip of the teacher (two encoders + alignment) and of the
    student, on one downstream clip (Table 5's columns; FLOPs of one forward pass)."""

    def size(m: torch.nn.Module) -> Dict[str, float]:  # all parameters, frozen ones included
        return {"params": sum(p.numel() for p in m.parameters()), "gflops": round(count_flops(m, x) / 1e9, 4)}
    x = torch.zeros(1, *ctx.train.shape[1:])
    k = ctx.train.num_classes
    encs = [copy.deepcopy(e).cpu() for e in ctx.encoders.values()]  # AlignedClassifier freezes what it gets
    out = {"encoder": size(encs[0])}
    if len(encs) == 2:
        out["teacher"] = size(AlignedClassifier(encs[0], encs[1], FeatureAlignment(
            encs[0].out_dim, k, num_heads=ctx.cfg.probe.heads)))
    student = create_backbone("stgcn-student", ctx.train.skeleton, ctx.train.shape[1], **(student_cfg or {}))
    out["student"] = size(EncoderClassifier(student, LinearClassifier(student.out_dim, k)))
    return out


def write_summary(ctx: RunContext, seconds: Optional[float] = None) -> None:
    """Write ``<run>/results.json``: data, backbone, model sizes and costs (:func:`model_costs`)
    and the rows of every finished stage (rank 0 only)."""
    if not is_main_process():
        return
    cfg, run = ctx.cfg, ctx.run_dir
    with torch_threads(cfg.threads):
        costs = model_costs(ctx, cfg.distill.student_cfg)
    by_stage = {k: [r.as_dict() for r in load_rows(run, k)] for k in read_status(run) if k != "pretrain"}
    previous = read_json(run / "results.json") if (run / "results.json").is_file() else {}
    atomic_write_json(run / "results.json", {
        "dataset": cfg.data.dataset, "protocol": cfg.data.protocol, "backbone": cfg.model.backbone,
        "stream": cfg.data.stream, "downstream": asdict(downstream_data(cfg)) if cfg.downstream else None,
        "params_per_encoder": costs["encoder"]["params"], "models": costs,
        "seconds": round(seconds, 1) if seconds is not None else previous.get("seconds"), **by_stage})


def run_pipeline(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
                 progress: bool = True):
    """Run ``cfg.stages`` on one stream in ``cfg.run_dir`` and return a
    :class:`~asma.train.run.RunResult` with every stage's rows.

    ``resume=True`` continues a run: finished stages (``status.json``) are read back, an
    interrupted one continues from its checkpoints. Without it, a directory that already holds
    finished stages is refused (nothing is overwritten by accident).
    """
    from .pretrain import pretrain
    from .run import RunResult, check_compatible, default_run_dir, save_encoders
    t0 = time.perf_counter()
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    cfg.run_dir = str(run_dir)
    stages = check_stages(cfg)
    resolve_device(cfg.device)  # an unusable device fails here, before anything is written
    status = read_status(run_dir)
    if resume and not (run_dir / "config.json").is_file():
        raise ValueError(f"--resume: {run_dir} has no config.json; pass the run directory of a started run")
    if not resume and (status or latest_checkpoint(run_dir / "pretrain") is not None):
        what = f"finished: {', '.join(status)}" if status else "an interrupted pretraining"
        raise ValueError(f"{run_dir} already holds a run ({what}); pass --resume to continue it or choose "
                         "another --run-dir")
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", asdict(cfg))
    barrier()
    seed_everything(cfg.seed)
    rows: List[ProbeResult] = []
    history: List[Dict[str, Any]] = []
    log = (console.log if console is not None and is_main_process() else (lambda *a, **k: None))
    with torch_threads(cfg.threads):
        pre_train = None
        if "pretrain" in stages and "pretrain" not in status:
            pre_train, pre_test = load_dataset(cfg.data)
            check_compatible(cfg, pre_train)
            log(f"data: {cfg.data.dataset} ({cfg.data.protocol}), train {pre_train.shape}, test "
                f"{pre_test.shape}, {pre_train.num_classes} classes, layout {pre_train.skeleton.name}")
            with make_logger(run_dir, cfg.loggers) as logger:
                model = pretrain(cfg, pre_train, run_dir, resume=_resumable(run_dir / "pretrain", resume),
                                 console=console, progress=progress, logger=logger)
            history = getattr(model, "history", [])
            if is_main_process():
                save_encoders(model, run_dir, cfg, pre_train)
            mark_done(run_dir, "pretrain", epochs=cfg.pretrain.epochs)
            barrier()
        encoders = load_encoders(run_dir, cfg)
        ds = downstream_data(cfg)
        if pre_train is not None and ds == cfg.data:
            train, test = pre_train, pre_test
        else:
            train, test = load_dataset(ds)
            if cfg.downstream:
                log(f"downstream data: {ds.dataset} ({ds.protocol}), train {train.shape}, test {test.shape}, "
                    f"{train.num_classes} classes")
        check_transfer(encoders, train, str(run_dir))
        ctx = RunContext(cfg, run_dir, encoders, train, test)
        for stage in stages[1:] if stages[0] == "pretrain" else stages:
            key = DISTILL_DIRS[cfg.distill.teacher] if stage == "distill" else stage
            if key in status:
                log(f"{key}: finished earlier, results read from {run_dir / key}")
                rows += load_rows(run_dir, key)
                continue
            log(f"stage: {key}")
            if stage == "linear":
                torch.manual_seed(cfg.seed + 1)
                random_enc = create_backbone(cfg.model.backbone, train.skeleton, train.shape[1],
                                             **cfg.model.backbone_cfg)
                rows += linear_stage(ctx, random_encoder=random_enc, console=console, progress=progress)
            elif stage == "finetune":
                rows += finetune_stage(ctx, resume=resume, console=console, progress=progress)
            else:
                rows += distill_stage(ctx, resume=resume, console=console, progress=progress)
            mark_done(run_dir, key)
            barrier()
    result = RunResult(run_dir, rows, history, time.perf_counter() - t0)
    write_summary(ctx, seconds=result.seconds)
    return result


def run_streams(cfg: TrainConfig, *, resume: bool = False, console: Optional[Console] = None,
                progress: bool = True):
    """3s-ASMa: one complete run per stream of ``cfg.streams`` in ``<run_dir>/<stream>/``, then
    every classifier the runs share is fused across streams with ``cfg.fusion_weights``
    (:func:`~asma.train.evaluate.fuse_streams`, weighted sum of logits).

    Returns:
        :class:`~asma.train.run.RunResult` whose rows are ``"<stream>: <row>"`` for the stages
        run by this call and ``"fused <s1>+<s2>+...: <row>"`` for the ensembles of every finished
        stage; ``<run_dir>/ensemble.json`` holds the fused rows and the weights,
        ``<run_dir>/results.json`` those and each stream's ``results.json``.
    """
    from .run import RunResult, default_run_dir
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
    if is_main_process():
        base.mkdir(parents=True, exist_ok=True)
        atomic_write_json(base / "config.json", asdict(cfg))
    per_stream: Dict[str, List[ProbeResult]] = {}
    rows: List[ProbeResult] = []
    for s in streams:
        c = copy.deepcopy(cfg)
        c.streams, c.data.stream, c.run_dir = [], s, str(base / s)
        if console is not None and is_main_process():
            console.rule(f"stream: {s}")
        sub_resume = resume and (base / s / "config.json").is_file()
        res = run_pipeline(c, resume=sub_resume, console=console, progress=progress)
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
    with ``weights`` and score the ensemble against ``labels``.

    Shapes:
        - each row's ``logits``: :math:`(N, K)`, the same clips in the same order in every stream;
          **labels**: :math:`(N,)`
    """
    streams = list(per_stream)
    names = [r.name for r in per_stream[streams[0]] if r.logits is not None and r.name != "random-init probe"]
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


__all__ = ["RunContext", "STREAMS", "DISTILL_DIRS", "downstream_data", "check_transfer", "load_encoders",
           "read_config", "open_run", "read_status", "mark_done", "save_rows", "load_rows", "linear_stage",
           "finetune_stage", "finetuned_teacher", "make_teacher", "distill_stage", "load_student", "check_stages",
           "model_costs", "run_pipeline", "run_streams", "finished_rows", "fuse_rows", "load_weights"]
