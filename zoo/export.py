"""From a finished training run to a publishable zoo folder: :func:`export_run`.

``what`` names one model of a run directory (docs/training.md); its kind, and the
``results.json`` row its metrics come from:

* ``student``: ``distill/`` (``student.safetensors`` + ``student.json``), kind ``student``, the
  student row of ``distill``; ``student-ft``: the same in ``distill-ft/`` (fine-tuned teacher);
* ``teacher``: ``finetune/aligned.safetensors``, kind ``teacher``, ``finetune``'s aligned row;
* ``classifier-<e>``: ``finetune/<e>/final.safetensors``, kind ``classifier``, ``<e> fine-tuned``;
* ``encoder-<e>``: ``encoders/<e>/``, kind ``encoder``, the ``linear`` row ``<e> probe``.

The written folder (``save_pretrained``) reproduces the run's logits exactly: it holds the run's
own modules (:class:`~asma.models.EncoderClassifier`, :class:`~asma.models.AlignedClassifier`).
Publish it with ``asma zoo push DIR org/name``; use it in memory with
``asma.create_model("RUN:what", pretrained=True)``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from torch import nn

from asma.pretrained.config import PretrainedConfig

PathLike = Union[str, Path]
#: Distillation folder -> teacher kind (``asma.train.downstream.DISTILL_DIRS`` inverted).
_STUDENTS = {"student": ("distill", "linear"), "student-ft": ("distill-ft", "finetune")}


def exportable(run_dir: PathLike) -> List[str]:
    """The ``what`` values :func:`export_run` accepts for ``run_dir`` (the models it holds)."""
    run = Path(run_dir)
    names = [w for w, (stage, _) in _STUDENTS.items() if (run / stage / "student.safetensors").is_file()]
    if (run / "finetune" / "aligned.safetensors").is_file():
        names.append("teacher")
    names += sorted(f"classifier-{p.parent.name}" for p in run.glob("finetune/*/final.safetensors"))
    names += sorted(f"encoder-{p.parent.name}" for p in run.glob("encoders/*/model.safetensors"))
    return names


def default_export(run_dir: PathLike) -> str:
    """The model a bare run directory names (``create_model(RUN)``): its distilled student
    (``student``, else ``student-ft``).

    Raises:
        ValueError: the run has no distilled student (lists the models it does hold).
    """
    held = exportable(run_dir)
    for what in _STUDENTS:
        if what in held:
            return what
    options = ", ".join(f"{run_dir}:{w}" for w in held) or "none (the run has no finished stage)"
    raise ValueError(f"{run_dir} has no distilled student (run 'asma distill --run-dir {run_dir}'); "
                     f"name one of its models instead: {options}")


def build_export(run_dir: PathLike, what: str, *, license: str = "unknown", description: Optional[str] = None,
                 paper: Optional[str] = None, base_model: Optional[str] = None) -> Tuple[nn.Module, PretrainedConfig]:
    """The model ``what`` of a finished run, in memory: ``(model, config)`` with the model in eval
    mode and ``config`` what :func:`export_run` writes (see there for ``what`` and the fields).

    Raises:
        ValueError: unknown ``what`` (lists the run's models), or a stage the run has not
            finished (names the missing path and the command that creates it).
    """
    from asma.train.rundir import read_config
    run = Path(run_dir)
    cfg = read_config(run)
    if cfg.streams and not (run / "status.json").is_file():
        raise ValueError(f"{run} is a multi-stream run; export a model of one stream: --run-dir "
                         f"{run / cfg.streams[0]}")
    if base_model is not None and what not in _STUDENTS:
        raise ValueError(f"base_model names the teacher of a distilled student; {what!r} is not a student")
    if what in _STUDENTS:
        model, fields = _student(run, cfg, *_STUDENTS[what])
    elif what == "teacher":
        model, fields = _teacher(run, cfg)
    elif what.startswith("classifier-"):
        model, fields = _classifier(run, cfg, what[len("classifier-"):])
    elif what.startswith("encoder-"):
        model, fields = _encoder(run, cfg, what[len("encoder-"):])
    else:
        raise ValueError(f"unknown model {what!r}; {run} holds: {', '.join(exportable(run)) or 'none'} "
                         "(student, student-ft, teacher, classifier-<encoder>, encoder-<name>)")
    from asma.pretrained.architectures import config_for_model
    kind, summary = fields.pop("kind"), fields.pop("summary")
    config = config_for_model(model.eval(), kind=kind, license=license, paper=paper, base_model=base_model,
                              description=description or summary, source={"run": str(run), "model": what},
                              **fields)
    return model, config


def export_run(run_dir: PathLike, what: str, out_dir: PathLike, *, license: str = "unknown",
               description: Optional[str] = None, paper: Optional[str] = None,
               base_model: Optional[str] = None) -> PretrainedConfig:
    """Write the model ``what`` of a finished run as a zoo folder (``config.json``,
    ``model.safetensors``, ``README.md``) in ``out_dir``.

    The config records the layout, channels, stream, clip size, class names, head, the (downstream)
    dataset, the metrics of the model's ``results.json`` row as ``{"<dataset>/<stage>": {"top1",
    "top5"}}``, the data's preprocessing (a prepared store's ``info.json`` entry, or a note for
    the synthetic data), a training record (masking, epochs, tau, teacher kind, seed), the
    parameter count and GFLOPs per clip, and ``source`` (the run and ``what``).

    Args:
        what: ``student``, ``student-ft``, ``teacher``, ``classifier-<encoder>`` or ``encoder-<name>``.
        base_model: for a student, the Hub repository ``org/name`` of its teacher.

    Raises:
        ValueError: as :func:`build_export`.
    """
    from .model import save_pretrained
    model, config = build_export(run_dir, what, license=license, description=description, paper=paper,
                                 base_model=base_model)
    save_pretrained(model, config, out_dir)
    return config


# ---------------------------------------------------------------------- one function per kind
def _require(path: Path, command: str) -> None:
    if not path.is_file():
        raise ValueError(f"{path} does not exist: the run has not finished that stage; create it with: {command}")


def _student(run: Path, cfg, stage: str, teacher: str) -> Tuple[nn.Module, Dict[str, Any]]:
    from asma.io import read_json
    from asma.train.downstream import load_student
    _require(run / stage / "student.safetensors", f"asma distill --run-dir {run} --teacher {teacher}")
    model = load_student(run, stage)
    meta = read_json(run / stage / "student.json")
    dc = _stage_config(run, stage, cfg.distill)
    fields = _labelled(run, cfg, stage, lambda r: r.startswith("student of"), meta["class_names"])
    fields["training"].update(teacher=teacher, tau=dc["tau"], mode=dc["mode"],
                              epochs={**fields["training"]["epochs"], "distill": dc["epochs"]})
    fields.update(kind="student", stream=meta["stream"],
                  summary=f"{model.encoder.config['name']} student distilled (tau={dc['tau']:g}) from the "
                          f"{'linear-probed' if teacher == 'linear' else 'fine-tuned'} ASMa teacher of run "
                          f"{run.name} on {fields['dataset']}.")
    return model, fields


def _teacher(run: Path, cfg) -> Tuple[nn.Module, Dict[str, Any]]:
    from asma.train.downstream import finetuned_teacher
    from asma.train.rundir import open_run
    _require(run / "finetune" / "aligned.safetensors", f"asma finetune --run-dir {run}")
    ctx = open_run(run, cfg)
    model = finetuned_teacher(ctx)
    ft = _stage_config(run, "finetune", cfg.finetune)
    fields = _labelled(run, cfg, "finetune", lambda r: r.endswith("fine-tuned aligned"),
                       ctx.train.class_names, names=list(ctx.encoders))
    fields["training"]["epochs"].update(finetune=ft["epochs"], align=ft["align_epochs"])
    fields.update(kind="teacher", summary=f"ASMa teacher of run {run.name}: the fine-tuned encoders "
                                          f"{' and '.join(ctx.encoders)} with bi-directional feature "
                                          f"alignment, on {fields['dataset']}.")
    return model, fields


def _classifier(run: Path, cfg, name: str) -> Tuple[nn.Module, Dict[str, Any]]:
    from asma.models.classifiers import EncoderClassifier
    from asma.train.rundir import load_weights, open_run
    weights = run / "finetune" / name / "final.safetensors"
    _require(weights, f"asma finetune --run-dir {run}")
    ctx = open_run(run, cfg)
    if name not in ctx.encoders:
        raise ValueError(f"no encoder {name!r} in {run}; encoders: {', '.join(ctx.encoders)}")
    enc, k = copy.deepcopy(ctx.encoders[name]), ctx.train.num_classes
    model = load_weights(EncoderClassifier.linear(enc, k), weights, f"the fine-tuned {name} classifier of {run}")
    ft = _stage_config(run, "finetune", cfg.finetune)
    fields = _labelled(run, cfg, "finetune", lambda r: r == f"{name} fine-tuned",
                       ctx.train.class_names, names=[name])
    fields["training"]["epochs"]["finetune"] = ft["epochs"]
    fields.update(kind="classifier", summary=f"ASMa encoder {name} of run {run.name}, fine-tuned with a "
                                             f"linear head on {fields['dataset']}.")
    return model, fields


def _encoder(run: Path, cfg, name: str) -> Tuple[nn.Module, Dict[str, Any]]:
    from asma.train.rundir import downstream_data

    from .model import load_pretrained
    folder = run / "encoders" / name
    _require(folder / "model.safetensors", f"asma pretrain --run-dir {run}")
    model, saved = load_pretrained(folder)  # the run's self-describing encoder format
    facts = _data_facts(cfg.data)
    probe = _row(run, "linear", lambda r: r == f"{name} probe", optional=True)
    metrics = {f"{_dataset_name(downstream_data(cfg))}/linear": probe} if probe else {}
    training = _training(cfg, [name])
    fields = dict(facts, kind="encoder", stream=saved.stream, num_frames=saved.num_frames, metrics=metrics,
                  training=training)
    fields["summary"] = (f"ASMa encoder {name} of run {run.name}, self-supervised on {facts['dataset']} "
                         f"(masking {', '.join(training['masking'][name])}).")
    return model, fields


# ---------------------------------------------------------------------- shared facts
def _dataset_name(ds) -> str:
    """``ntu60-xsub`` for a prepared dataset, ``synthetic-<protocol>`` for the embedded one."""
    return f"synthetic-{ds.protocol}" if ds.dataset == "synthetic" else ds.dataset


def _data_facts(ds) -> Dict[str, Any]:
    """Dataset name, preprocessing, frames, persons and coordinate channels of a ``DataConfig``
    (a prepared store's ``info.json``, or the synthetic generator's settings)."""
    if ds.dataset == "synthetic":
        note = ("embedded synthetic clips (asma.data.synthetic), generated already centred on the "
                "layout's centre joint; no recorded data and no further normalisation")
        settings = {k: getattr(ds, k) for k in ("layout", "num_classes", "clips_per_class", "num_frames",
                                                "num_persons", "synthetic_seed", "protocol")}
        return {"dataset": _dataset_name(ds), "preprocessing": {"note": note, "synthetic": settings},
                "num_persons": ds.num_persons, "num_frames": ds.num_frames}
    from asma.data.prepared import prepared_path
    from asma.data.store import read_store_info
    info = read_store_info(prepared_path(ds.dataset, ds.data_dir) / "train")
    pre = dict(info.get("preprocessing") or {})
    out = {"dataset": ds.dataset, "preprocessing": pre, "num_frames": info["shape"][2],
           "num_persons": info["shape"][4]}
    if "coord_channels" in pre:
        out["num_coords"] = pre["coord_channels"]
    return out


def _training(cfg, encoders: List[str]) -> Dict[str, Any]:
    """The record every export carries: masking of the encoders involved, epochs, seed."""
    rec = {"masking": {n: list(cfg.model.encoders[n]) for n in encoders if n in cfg.model.encoders},
           "epochs": {"pretrain": cfg.pretrain.epochs}, "seed": cfg.seed}
    if cfg.downstream:
        rec["pretrained_on"] = _dataset_name(cfg.data)
    return rec


def _stage_config(run: Path, stage: str, default) -> Dict[str, Any]:
    """The settings a stage really ran with (``<stage>/results.json``: stage commands may
    override the run's config), else the run's config section."""
    from dataclasses import asdict

    from asma.io import read_json
    p = run / stage / "results.json"
    saved = read_json(p).get("config") if p.is_file() else None
    return {**asdict(default), **(saved or {})}


def _row(run: Path, stage: str, match, optional: bool = False) -> Optional[Dict[str, float]]:
    """``{"top1", "top5"}`` of the ``results.json`` row of ``stage`` whose name ``match``es."""
    from asma.io import read_json
    p = run / "results.json"
    rows = (read_json(p).get(stage) or []) if p.is_file() else []
    row = next((r for r in rows if match(r["name"])), None)
    if row is None and not optional:
        raise ValueError(f"{p} has no {stage!r} result for this model: the stage did not finish; complete "
                         f"it with: asma train --run-dir {run} --resume")
    return {"top1": row["top1"], "top5": row["top5"]} if row else None


def _labelled(run: Path, cfg, stage: str, match, class_names: List[str],
              names: Optional[List[str]] = None) -> Dict[str, Any]:
    """Config fields shared by students, teachers and classifiers (downstream data, metrics)."""
    from asma.train.rundir import downstream_data
    ds = downstream_data(cfg)
    facts = _data_facts(ds)
    return dict(class_names=list(class_names), stream=ds.stream,
                metrics={f"{facts['dataset']}/{stage}": _row(run, stage, match)},
                training=_training(cfg, names if names is not None else list(cfg.model.encoders)), **facts)
