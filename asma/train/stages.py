"""Stage commands on an existing run directory (``asma linear``, ``asma finetune``, ``asma
distill``, ``asma evaluate``): each opens the run (config, pretrained encoders, downstream data)
and runs one stage of :mod:`asma.train.downstream`, recording it in ``status.json``."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

from rich.console import Console

from ..io import atomic_write_json
from ..models.classifiers import EncoderClassifier
from ..models.heads import LinearClassifier
from .config import DistillConfig, FinetuneConfig
from .distill import depth_sweep, tau_sweep
from .downstream import (DISTILL_DIRS, distill_stage, finetune_stage, finetuned_teacher, linear_stage, load_student,
                         make_teacher, run_logger, write_summary)
from .engine import is_main_process
from .evaluate import evaluate, write_eval
from .probe import ProbeResult
from .rundir import load_weights, mark_done, open_run


def _open(run_dir, device: Optional[str]):
    ctx = open_run(run_dir)
    if device:  # where to compute does not change what is computed
        ctx.cfg.device = device
    return ctx


def _done(ctx, stage: str, rows: List[ProbeResult]) -> List[ProbeResult]:
    """Record ``stage`` as finished in ``status.json`` and refresh the run's summary."""
    mark_done(ctx.run_dir, stage)
    write_summary(ctx)
    return rows


def linear_run(run_dir, *, console: Optional[Console] = None, device: Optional[str] = None,
               progress: bool = True) -> List[ProbeResult]:
    """Linear evaluation of a run's encoders, the ``random-init`` row first (writes
    ``<run>/linear/``); ``device`` overrides the run's (``cpu``, ``cuda``, ``auto``, ...)."""
    ctx = _open(run_dir, device)
    return _done(ctx, "linear", linear_stage(ctx, console=console, progress=progress))


def finetune_run(run_dir, ft: Optional[FinetuneConfig] = None, *, resume: bool = False,
                 console: Optional[Console] = None, progress: bool = True,
                 device: Optional[str] = None) -> List[ProbeResult]:
    """Fine-tune each encoder with a linear head, then train the alignment module on the two
    fine-tuned encoders (paper §4); ``ft`` defaults to the run's ``finetune`` config. Writes
    ``<run>/finetune/`` (checkpoints, weights, results)."""
    ctx = _open(run_dir, device)
    return _done(ctx, "finetune", finetune_stage(ctx, ft, resume=resume, console=console, progress=progress))


def distill_run(run_dir, dc: Optional[DistillConfig] = None, *, resume: bool = False,
                console: Optional[Console] = None, progress: bool = True,
                device: Optional[str] = None) -> List[ProbeResult]:
    """Distil the run's ASMa teacher (``dc.teacher``: linear-probed or fine-tuned, §5.4) into
    ``stgcn-student`` without labels; ``dc`` defaults to the run's ``distill`` config. Writes
    ``<run>/distill/`` (or ``distill-ft/`` for the fine-tuned teacher)."""
    ctx = _open(run_dir, device)
    dc = dc or ctx.cfg.distill
    return _done(ctx, DISTILL_DIRS[dc.teacher], distill_stage(ctx, dc, resume=resume, console=console, progress=progress))


def evaluate_run(run_dir, stage: str, name: Optional[str] = None, device: Optional[str] = None):
    """Evaluate a saved classifier of a run on its test split: ``stage="finetune"`` (encoder
    ``name``, default the first; ``name="aligned"`` = the fine-tuned aligned classifier) or
    ``stage="distill"`` / ``"distill-ft"`` (the student of the linear-probed / fine-tuned
    teacher). Writes ``<run>/<stage>/eval_<name>.json``, ``..._confusion.csv`` and
    ``..._logits.safetensors``.

    Returns:
        :class:`~asma.train.evaluate.EvalResult` (top-1/top-5, per-class accuracy, confusion matrix).
    """
    ctx = _open(run_dir, device)
    run = Path(run_dir)
    if stage == "finetune":
        name = name or next(iter(ctx.encoders))
        if name == "aligned":
            model = finetuned_teacher(ctx)
        else:
            if name not in ctx.encoders:
                raise ValueError(f"no encoder {name!r} in {run}; encoders: {', '.join(ctx.encoders)} (or 'aligned')")
            weights = run / "finetune" / name / "final.safetensors"
            if not weights.is_file():
                raise ValueError(f"{weights} does not exist; run 'asma finetune --run-dir {run}' first")
            enc = ctx.encoders[name]
            model = load_weights(EncoderClassifier(enc, LinearClassifier(enc.out_dim, ctx.train.num_classes)),
                                 weights, f"the fine-tuned {name} classifier of {run}")
    elif stage in DISTILL_DIRS.values():
        name = name or "student"
        model = load_student(run, stage)
    else:
        raise ValueError(f"stage must be 'finetune', {' or '.join(repr(s) for s in DISTILL_DIRS.values())}, "
                         f"got {stage!r}")
    result = evaluate(model, ctx.test, ctx.stream, name=f"{stage}/{name}", device=ctx.cfg.device)
    write_eval(result, run / stage / f"eval_{name}.json")
    return result


def sweep_run(run_dir, what: str, values, dc: Optional[DistillConfig] = None, *,
              device: Optional[str] = None) -> List[dict]:
    """Fig. 4 as one call: distil the run's teacher (``dc.teacher``) once per temperature
    (``what="tau"``) or per student depth (``what="layers"``), everything else fixed. Writes
    ``<run>/sweeps/<what>.json`` (one row per value: test top-1/top-5, student parameters, final
    loss and teacher agreement) and the checkpoints under ``<run>/sweeps/<what>/``.

    Raises:
        ValueError: for an unknown ``what`` or an empty ``values``.
    """
    if what not in ("tau", "layers"):
        raise ValueError(f"sweep over 'tau' or 'layers', not {what!r}")
    values = list(values)
    if not values:
        raise ValueError(f"--values: give at least one {what} value")
    ctx = _open(run_dir, device)
    dc = dc or ctx.cfg.distill
    teacher, t_res = make_teacher(ctx, dc.teacher)
    out = Path(run_dir) / "sweeps"
    args = (teacher, ctx.train, ctx.test, dc)
    with run_logger(ctx) as log:  # the run's one metrics file
        kw = dict(stream=ctx.stream, seed=ctx.cfg.seed, run_dir=out / what, device=ctx.cfg.device, logger=log)
        rows = tau_sweep(*args, [float(v) for v in values], **kw) if what == "tau" else \
            depth_sweep(*args, [int(v) for v in values], **kw)
    if is_main_process():
        atomic_write_json(out / f"{what}.json", {"what": what, "teacher": {**t_res.as_dict(), "kind": dc.teacher},
                                                 "config": asdict(dc), "rows": rows})
    return rows
