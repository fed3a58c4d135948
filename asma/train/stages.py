"""Stages that continue a run directory written by ``asma train`` / ``asma pretrain``:
linear evaluation, fine-tuning and distillation of its encoders."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rich.console import Console

from ..data.arrays import SkeletonArrays
from ..data.catalog import load_dataset
from ..graph import skeleton_from_dict
from ..io import atomic_write_json, load_tensors, read_json, save_tensors
from ..models.registry import Backbone, create_backbone
from .config import TrainConfig, make_config
from .distill import DistillConfig, distill
from .finetune import FinetuneConfig, finetune, finetune_aligned, fit_aligned_probe
from .probe import ProbeResult, linear_evaluation


def load_run(run_dir) -> Tuple[TrainConfig, Dict[str, Backbone], SkeletonArrays, SkeletonArrays]:
    """Config, pretrained encoders and the run's train/test data.

    Raises:
        ValueError: when ``run_dir`` has no config or no saved encoders (names the path).
    """
    from .config import apply_overrides
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise ValueError(f"{run} is not a run directory (no config.json); run 'asma pretrain' first")
    cfg = apply_overrides(make_config("paper"), read_json(run / "config.json"))
    enc_dir = run / "encoders"
    saved = {p.name for p in enc_dir.iterdir() if (p / "model.safetensors").is_file()} if enc_dir.is_dir() else set()
    names = [n for n in cfg.model.encoders if n in saved]  # config order: theta, then phi
    if not names:
        raise ValueError(f"{enc_dir} holds no pretrained encoders; the pretraining of {run} did not finish")
    encoders = {}
    for name in names:
        meta = read_json(enc_dir / name / "config.json")
        kwargs = {k: v for k, v in meta["backbone"].items() if k not in ("name", "in_channels")}
        enc = create_backbone(meta["backbone"]["name"], skeleton_from_dict(meta["layout"]),
                              meta["in_channels"], **kwargs)
        enc.load_state_dict(load_tensors(enc_dir / name / "model.safetensors"))
        encoders[name] = enc.eval()
    train, test = load_dataset(cfg.data)
    return cfg, encoders, train, test


def _write(run: Path, stage: str, rows: List[ProbeResult], extra: Optional[dict] = None) -> None:
    atomic_write_json(run / stage / "results.json", {"stage": stage, "results": [r.as_dict() for r in rows],
                                                      **(extra or {})})


def linear_run(run_dir, *, console: Optional[Console] = None) -> List[ProbeResult]:
    """Linear evaluation of a run's encoders (writes ``<run>/linear/results.json``)."""
    cfg, encoders, train, test = load_run(run_dir)
    rows = linear_evaluation(encoders, train, test, cfg.probe, cfg.data.stream, cfg.seed, console=console)
    _write(Path(run_dir), "linear", rows)
    return rows


def finetune_run(run_dir, ft: FinetuneConfig, *, resume: bool = False, console: Optional[Console] = None,
                 progress: bool = True) -> List[ProbeResult]:
    """Fine-tune each encoder with a linear head, then train the alignment module on the two
    fine-tuned encoders (paper §4). Writes ``<run>/finetune/`` (checkpoints, results)."""
    cfg, encoders, train, test = load_run(run_dir)
    out = Path(run_dir) / "finetune"
    rows, tuned = [], {}
    for name, enc in encoders.items():
        model, res = finetune(enc, train, test, ft, cfg.data.stream, cfg.seed, out, resume, name=name,
                              console=console, progress=progress)
        res.name = f"{name} fine-tuned"
        tuned[name] = model
        rows.append(res)
        save_tensors(out / name / "final.safetensors", model.state_dict())
    if len(tuned) == 2:
        a, b = list(tuned)
        _, res = finetune_aligned(tuned[a], tuned[b], train, test, ft, cfg.data.stream, cfg.seed, out, resume,
                                  console=console, progress=progress)
        res.name = f"{a}+{b} fine-tuned aligned"
        rows.append(res)
    _write(Path(run_dir), "finetune", rows, {"config": asdict(ft)})
    return rows


def distill_run(run_dir, dc: DistillConfig, *, resume: bool = False, console: Optional[Console] = None,
                progress: bool = True) -> List[ProbeResult]:
    """Distil the run's linear-probed aligned teacher (§5.4) into ``stgcn-student`` without
    labels. Writes ``<run>/distill/`` (checkpoints, student weights, results)."""
    cfg, encoders, train, test = load_run(run_dir)
    if len(encoders) != 2:
        raise ValueError(f"distillation needs the two encoders of ASMa; {run_dir} has {sorted(encoders)}")
    a, b = sorted(encoders, key=lambda n: 0 if n == "theta" else 1)
    teacher, t_res = fit_aligned_probe(encoders[a], encoders[b], train, test, cfg.probe, cfg.data.stream, cfg.seed)
    t_res.name = "teacher (linear-probed, aligned)"
    out = Path(run_dir) / "distill"
    student, s_res = distill(teacher, train, test, dc, cfg.data.stream, cfg.seed, out, resume,
                             console=console, progress=progress)
    s_res.name = f"student (stgcn-student, tau={dc.tau:g})"
    save_tensors(out / "student.safetensors", student.state_dict())
    atomic_write_json(out / "student.json", {"backbone": student.encoder.config,
                                             "layout": train.skeleton.to_dict(), "class_names": train.class_names,
                                             "stream": cfg.data.stream, "teacher": str(run_dir)})
    rows = [t_res, s_res]
    _write(Path(run_dir), "distill", rows, {"config": asdict(dc)})
    return rows


def evaluate_run(run_dir, stage: str, name: Optional[str] = None):
    """Evaluate a saved classifier of a run on its test split: ``stage="finetune"`` (encoder
    ``name``, default ``theta``) or ``stage="distill"`` (the logit-distilled student). Writes
    ``<run>/<stage>/eval_<name>.json``, ``..._confusion.csv`` and ``..._logits.safetensors``.

    Returns:
        :class:`~asma.train.evaluate.EvalResult` (top-1/top-5, per-class accuracy, confusion matrix).
    """
    from ..models.heads import LinearClassifier
    from .evaluate import evaluate, write_eval
    from .finetune import EncoderClassifier
    cfg, encoders, train, test = load_run(run_dir)
    run = Path(run_dir)
    k = train.num_classes
    if stage == "finetune":
        name = name or next(iter(encoders))
        if name not in encoders:
            raise ValueError(f"no encoder {name!r} in {run}; encoders: {', '.join(encoders)}")
        weights = run / "finetune" / name / "final.safetensors"
        enc = encoders[name]
        model = EncoderClassifier(enc, LinearClassifier(enc.out_dim, k))
    elif stage == "distill":
        name = name or "student"
        weights = run / "distill" / "student.safetensors"
        meta = read_json(run / "distill" / "student.json")
        kwargs = {k2: v for k2, v in meta["backbone"].items() if k2 not in ("name", "in_channels")}
        enc = create_backbone(meta["backbone"]["name"], skeleton_from_dict(meta["layout"]),
                              meta["backbone"]["in_channels"], **kwargs)
        model = EncoderClassifier(enc, LinearClassifier(enc.out_dim, k))
    else:
        raise ValueError(f"stage must be 'finetune' or 'distill', got {stage!r}")
    if not weights.is_file():
        raise ValueError(f"{weights} does not exist; run 'asma {stage} --run-dir {run}' first")
    try:
        model.load_state_dict(load_tensors(weights))
    except RuntimeError as e:
        raise ValueError(f"{weights} does not fit the {stage} model of {run}: {str(e).splitlines()[0]}") from None
    result = evaluate(model, test, cfg.data.stream, name=f"{stage}/{name}")
    write_eval(result, run / stage / f"eval_{name}.json")
    return result
