"""The labelled stages of a run directory, each on a :class:`~asma.train.rundir.RunContext`:
linear evaluation, fine-tuning (each encoder, then the aligned classifier) and distillation
(from the linear-probed or the fine-tuned teacher), plus the run's summary (``results.json``).
:mod:`asma.train.pipeline` runs them in order; :mod:`asma.train.stages` runs one on an existing
run."""
from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from rich.console import Console

from ..graph import skeleton_from_dict
from ..io import atomic_write_json, read_json, save_weights
from ..models.alignment import AlignedClassifier, FeatureAlignment
from ..models.classifiers import EncoderClassifier
from ..models.heads import LinearClassifier
from ..models.registry import Backbone, count_flops, create_backbone
from .config import DistillConfig, FinetuneConfig
from .distill import distill
from .engine import is_main_process, torch_threads
from .evaluate import evaluate
from .finetune import finetune, finetune_aligned, fit_aligned_probe
from .loggers import Logger, make_logger
from .probe import ProbeResult, linear_evaluation
from .rundir import RunContext, _resumable, downstream_data, load_rows, load_weights, read_status, save_rows

#: Output folder of the distillation stage per teacher (Table 5: student of the linear-probed
#: vs the fine-tuned teacher).
DISTILL_DIRS = {"linear": "distill", "finetune": "distill-ft"}


def run_logger(ctx: RunContext) -> Logger:
    """The run's one :class:`~asma.train.loggers.Logger` (``cfg.loggers`` in the run directory)."""
    return make_logger(ctx.run_dir, ctx.cfg.loggers)


def random_encoder(ctx: RunContext, index: int = 0) -> Backbone:
    """An untrained encoder of the run's backbone, seeded ``cfg.seed + 1`` (``index`` 0: the
    ``random-init probe`` row of linear evaluation) or ``cfg.seed + 1 + 2**31`` (``index`` 1: its
    partner in the ``random-init aligned`` row, away from other runs' seeds; the CPU generator
    keeps only the low 32 bits of a seed, so the offset is below 2**32)."""
    torch.manual_seed(ctx.cfg.seed + 1 + index * 2 ** 31)
    return create_backbone(ctx.cfg.model.backbone, ctx.train.skeleton, ctx.train.shape[1],
                           **ctx.cfg.model.backbone_cfg)


def linear_stage(ctx: RunContext, *, random_init: bool = True, console: Optional[Console] = None,
                 progress: bool = False) -> List[ProbeResult]:
    """Linear evaluation of the frozen encoders (Table 3 rows), with the baselines first when
    ``random_init``: the ``random-init probe`` and ``random-init aligned`` rows of the two
    :func:`random_encoder` s; writes ``<run>/linear/``."""
    cfg = ctx.cfg
    randoms = [random_encoder(ctx, i) for i in range(2 if len(ctx.encoders) == 2 else 1)] if random_init else []
    rows = linear_evaluation(ctx.encoders, ctx.train, ctx.test, cfg.probe, ctx.stream, cfg.seed,
                             random_encoders=randoms, console=console, device=cfg.device, progress=progress)
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
    :class:`~asma.models.classifiers.EncoderClassifier` (eval mode)."""
    out = Path(run_dir) / stage
    if not (out / "student.json").is_file():
        teacher = {v: k for k, v in DISTILL_DIRS.items()}.get(stage, "linear")
        other = next((d for d in DISTILL_DIRS.values() if d != stage and (Path(run_dir) / d / "student.json").is_file()),
                     None)
        hint = f"; the run has the student of the other teacher: use --stage {other}" if other else \
            f"; run 'asma distill --run-dir {run_dir} --teacher {teacher}' first"
        raise ValueError(f"{out / 'student.json'} does not exist{hint}")
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


__all__ = ["DISTILL_DIRS", "run_logger", "random_encoder", "linear_stage", "finetune_stage", "finetuned_teacher", "make_teacher",
           "distill_stage", "load_student", "model_costs", "write_summary"]
