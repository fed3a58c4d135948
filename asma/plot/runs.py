"""Figures from a run directory's records: training curves (``metrics.jsonl``), the confusion
matrix of an evaluation, and the per-class accuracy difference of the two encoders (Fig. 6)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..io import read_json
from .common import PlotResult, finish, png_path, pyplot

#: Per-epoch keys that are not curves.
_NOT_CURVES = {"time", "stage", "epoch", "lr", "samples_per_s", "dropped"}
#: Stage folders that held their own metrics.jsonl in older run directories, in pipeline order.
_STAGE_DIRS = ("finetune", "distill", "distill-ft")


def _panel(name: str, record: dict) -> Tuple[str, str]:
    """Title and loss label of a curve group, from its stage name and the keys it records."""
    stage = name.rpartition("/")[2]
    if stage == "pretrain":
        return "pretraining", "Barlow Twins loss"
    if "agreement" in record or stage.startswith("distill"):
        return ("distillation" if stage == "distill" else f"distillation: {stage}"), "τ²·KL"
    if "train_acc" in record:
        return f"fine-tuning: {stage.replace('finetune-', '')}", "cross-entropy"
    return stage, "loss"


def read_metrics(run_dir) -> Dict[str, List[dict]]:
    """Every per-epoch record of a run, grouped by stage (``"pretrain"``, ``"theta"``, ...) in
    file order; records of a stage folder's own ``metrics.jsonl`` (older runs) are grouped as
    ``"<folder>/<stage>"``.

    Raises:
        ValueError: when the run has no ``metrics.jsonl`` or a line is not JSON (names file and line).
    """
    run = Path(run_dir)
    files = [run / "metrics.jsonl"] + [run / d / "metrics.jsonl" for d in _STAGE_DIRS]
    files = [f for f in files if f.is_file()]
    if not files:
        raise ValueError(f"{run} has no metrics.jsonl; is it a run directory (asma train --run-dir)?")
    groups: Dict[str, List[dict]] = {}
    for f in files:
        folder = "" if f.parent == run else f.parent.name + "/"
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{f} line {i}: not JSON ({e.msg})") from None
            if "epoch" in rec and "stage" in rec:
                groups.setdefault(f"{folder}{rec['stage']}" if folder else rec["stage"], []).append(rec)
    if not groups:
        raise ValueError(f"{run}: the metrics files hold no per-epoch records")
    return groups


def plot_curves(run_dir, out, title: Optional[str] = None) -> PlotResult:
    """One panel per training stage: every loss term against the epoch (pretraining: the total
    and the four Barlow Twins terms; fine-tuning / distillation: the loss, with training
    accuracy or teacher agreement on a right axis). Writes ``out`` and ``<stem>.json`` (the
    curves) / ``<stem>.csv`` (one row per group, epoch and metric)."""
    png_path(out)
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    groups = read_metrics(run_dir)
    n = len(groups)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    data, table = {}, []
    for ax, (name, recs) in zip(axes.flat, groups.items()):
        epochs = [r["epoch"] for r in recs]
        keys = [k for k in recs[0] if k not in _NOT_CURVES and isinstance(recs[0][k], (int, float))]
        curves = {k: [r.get(k) for r in recs] for k in keys}
        data[name] = {"epoch": epochs, **curves}
        table += [[name, e, k, v] for k in keys for e, v in zip(epochs, curves[k])]
        pct = [k for k in keys if k in ("train_acc", "agreement")]
        for k in keys:
            if k not in pct:
                ax.plot(epochs, curves[k], marker="o", ms=3, lw=2 if k == "loss" else 1, label=k)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel, loss = _panel(name, recs[0])
        ax.set_ylabel(loss)
        ax.set_title(panel)
        if pct:
            tw = ax.twinx()
            for k in pct:
                tw.plot(epochs, curves[k], ls="--", color="tab:gray", label=f"{k} (%)")
            tw.set_ylabel("%")
            tw.legend(loc="upper right", fontsize=7)
        ax.legend(loc="upper left" if pct else "best", fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title or f"Training curves: {Path(run_dir).name}", fontsize=12)
    fig.tight_layout()
    return finish(fig, out, data, (["group", "epoch", "metric", "value"], table))


def confusion_source(run_dir=None, stage: str = "linear", row: Optional[str] = None,
                     eval_json=None) -> Tuple[np.ndarray, List[str], str]:
    """The confusion matrix to draw: from an ``eval_*.json`` of ``asma evaluate``, or from a
    run stage's saved test logits (``<run>/<stage>/logits.safetensors``, result row ``row``,
    default the stage's last row).

    Returns:
        ``(confusion (K, K) int, class names, description)``

    Raises:
        ValueError: naming the file or the row when it is missing.
    """
    if eval_json is not None:
        d = read_json(eval_json)
        if "confusion" not in d:
            raise ValueError(f"{eval_json} has no 'confusion' field; give a file written by 'asma evaluate'")
        return np.array(d["confusion"], dtype=np.int64), list(d.get("per_class", {})), f"{d.get('name', '')}"
    from ..train.evaluate import evaluate_logits
    logits, labels = _stage_logits(run_dir, stage)
    results = Path(run_dir) / stage / "results.json"
    # results.json keeps the stage's row order (the safetensors keys come back sorted)
    names = [r["name"] for r in read_json(results)["results"]] if results.is_file() else sorted(logits)
    names = [n for n in names if n in logits and n != "labels"]
    row = row or names[-1]
    if row not in logits:
        raise ValueError(f"{Path(run_dir) / stage}: no result row {row!r}; rows: {', '.join(names)}")
    res = evaluate_logits(logits[row], labels, class_names(run_dir))
    return res.confusion.numpy(), res.class_names, f"{stage}: {row} (top-1 {res.top1:.1f}%)"


def _stage_logits(run_dir, stage: str):
    from ..io import load_tensors
    path = Path(run_dir) / stage / "logits.safetensors"
    if not path.is_file():
        raise ValueError(f"{path} does not exist; run the {stage!r} stage of {run_dir} first")
    t = load_tensors(path)
    return t, t["labels"]


def class_names(run_dir) -> Optional[List[str]]:
    """Class names of a run's downstream test set (saved with its encoders when there is no
    transfer; loaded from the downstream dataset otherwise)."""
    from ..train.rundir import downstream_data, read_config
    run = Path(run_dir)
    cfg = read_config(run)
    if not cfg.downstream:
        for meta in sorted(run.glob("encoders/*/config.json")):
            return list(read_json(meta).get("class_names") or []) or None
    from ..data.catalog import load_dataset
    return list(load_dataset(downstream_data(cfg))[1].class_names)


def plot_confusion(out, run_dir=None, stage: str = "linear", row: Optional[str] = None, eval_json=None,
                   normalize: bool = True, title: Optional[str] = None) -> PlotResult:
    """The confusion matrix (rows: true class, columns: prediction), in percent of each true
    class when ``normalize`` (cells annotated up to 30 classes). Writes ``out``, ``<stem>.csv``
    (counts) and ``<stem>.json``."""
    png_path(out)
    plt = pyplot()
    conf, names, what = confusion_source(run_dir, stage, row, eval_json)
    K = conf.shape[0]
    names = names if len(names) == K else [f"class_{i}" for i in range(K)]
    totals = conf.sum(1, keepdims=True)
    show = 100.0 * conf / np.maximum(totals, 1) if normalize else conf
    size = max(5.0, 0.42 * K + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(show, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if K <= 30:
        for i in range(K):
            for j in range(K):
                if conf[i, j]:
                    ax.text(j, i, f"{show[i, j]:.0f}" if normalize else str(conf[i, j]), ha="center", va="center",
                            fontsize=7, color="white" if show[i, j] > 0.6 * show.max() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the true class" if normalize else "clips")
    ax.set_title(title or f"Confusion matrix, {what}", fontsize=10)
    data = {"source": what, "class_names": names, "confusion": conf.tolist(), "normalized": normalize}
    return finish(fig, out, data, (["true\\pred", *names], [[n, *r] for n, r in zip(names, conf.tolist())]))


def encoder_difference(run_dir, stage: str = "linear", first: str = "theta", second: str = "phi") -> Dict:
    """Fig. 6's numbers: per-class test accuracy of two encoders' classifiers of a run stage
    (``linear``: rows ``"<name> probe"``; ``finetune``: ``"<name> fine-tuned"``) and
    ``second - first`` (positive: the second, by default :math:`f_\\phi`, is better).

    Raises:
        ValueError: when a row is missing (names the rows there are).
    """
    from ..train.evaluate import evaluate_logits
    logits, labels = _stage_logits(run_dir, stage)
    suffix = "probe" if stage == "linear" else "fine-tuned"
    names = class_names(run_dir)
    acc = {}
    for enc in (first, second):
        key = f"{enc} {suffix}"
        if key not in logits:
            raise ValueError(f"{Path(run_dir) / stage}: no row {key!r}; rows: "
                             f"{', '.join(k for k in logits if k != 'labels')}")
        acc[enc] = evaluate_logits(logits[key], labels, names)
    per = {e: r.per_class for e, r in acc.items()}
    diff = [None if a is None or b is None else b - a for a, b in zip(per[first], per[second])]
    return {"stage": stage, "first": first, "second": second, "class_names": acc[first].class_names,
            "accuracy": per, "difference": diff, "top1": {e: r.top1 for e, r in acc.items()},
            "class_counts": acc[first].confusion.sum(1).tolist()}


def plot_encoder_difference(run_dir, out, stage: str = "linear", first: str = "theta", second: str = "phi",
                            title: Optional[str] = None) -> PlotResult:
    """Fig. 6: bars of the per-class accuracy difference ``second - first`` of a run's two
    encoders, sorted. Writes ``out``, ``<stem>.csv`` (per class: both accuracies, difference,
    clips) and ``<stem>.json``."""
    png_path(out)
    plt = pyplot()
    d = encoder_difference(run_dir, stage, first, second)
    keep = [i for i, v in enumerate(d["difference"]) if v is not None]
    order = sorted(keep, key=lambda i: d["difference"][i])
    vals = np.array([d["difference"][i] for i in order])
    K = len(order)
    fig, ax = plt.subplots(figsize=(max(7, 0.38 * K + 3), 4.8))
    ax.bar(range(K), vals, color=np.where(vals > 0, "tab:orange", "tab:blue"))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(K))
    ax.set_xticklabels([d["class_names"][i] for i in order], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"accuracy({second}) − accuracy({first}) [points]")
    t1 = d["top1"]
    ax.set_title(title or f"Per-class accuracy difference of the {stage} classifiers (> 0: {second} better)\n"
                 f"top-1: {first} {t1[first]:.1f}%, {second} {t1[second]:.1f}%", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    names = d["class_names"]
    table = [[names[i], d["accuracy"][first][i], d["accuracy"][second][i], d["difference"][i], d["class_counts"][i]]
             for i in range(len(names))]
    header = ["class", f"accuracy_{first}", f"accuracy_{second}", "difference", "clips"]
    return finish(fig, out, d, (header, [[("" if v is None else v) for v in r] for r in table]))
